"""A batch that fails a batch-level check is reported as failing, not as a clean batch."""

from __future__ import annotations

from pathlib import Path

import pytest

import penstock

from helpers import log_messages, query, write_project

YML = """
name: counts
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  airports:
    source: landing
    files: "airports/*.csv"
    load: LOAD
    columns:
      faa: {type: text, required: true}
      alt: {type: integer}
    checks:
      - {row_count: {min: 100}}
"""
ROWS = "faa,alt\n04G,1044\n06A,264\n06C,801\n06N,523\n09J,11\n"


@pytest.mark.parametrize("load", ["append", "replace"])
def test_a_failed_row_count_fails_every_record_in_the_report(tmp_path: Path, load: str) -> None:
    project = write_project(tmp_path, YML.replace("LOAD", load), {"landing/airports/a.csv": ROWS})
    result = penstock.run(project)
    (outcome,) = result.loads()
    assert (outcome.rows_in, outcome.rows_loaded, outcome.rows_quarantined) == (5, 0, 5)
    assert outcome.rows_invalid == 5
    assert outcome.status == "warning"
    (summary,) = result.summary(["airports"])
    assert summary.dq_pass_rate == 0.0
    messages = log_messages(project, result.run_id)
    assert (
        "landing/airports/a.csv: the batch fails check:row_count (5 record(s), row_count wants "
        "at least 100); every record quarantined"
    ) in messages
    assert not any("0 row(s) broke the contract" in m for m in messages)
    assert query(project, "SELECT count(*) FROM quarantine.airports") == [(5,)]
