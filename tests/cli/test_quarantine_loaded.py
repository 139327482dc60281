"""`penstock quarantine OBJECT` tells rows loaded anyway (on_invalid: warn) from rows held
back; `penstock run --json` counts the warned rows apart from the quarantined ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import duckdb

from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: warned_cli
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  readings:
    source: landing
    files: "readings/*.csv"
    key: [id]
    load: merge
    on_invalid: warn
    columns:
      id:     {type: integer, required: true}
      status: {type: text, in: [ok, late]}
      amount: {type: integer}
"""
# record 1: loaded with amount NULL; record 2: no key, held back; record 3: loaded as is
BODY = "id,status,amount\n1,ok,2147483648\n,ok,5\n3,bogus,7\n4,ok,1\n"


def test_quarantine_shows_which_rows_were_loaded(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/readings/a.csv": BODY})
    code, out, _ = cli("run", "-p", project, "--json")
    assert code == 0
    (summary,) = json.loads(out)["objects"]
    assert summary["rows_in"] == 4
    assert (summary["rows_loaded"], summary["rows_quarantined"], summary["rows_warned"]) == (
        3,
        1,
        2,
    )

    # status splits the quarantine table: rows held back, rows loaded anyway
    code, out, _ = cli("status", "-p", project, "--json")
    assert code == 0
    (state,) = json.loads(out)["objects"]
    assert (state["rows"], state["rows_quarantined"], state["rows_warned"]) == (3, 1, 2)

    code, out, _ = cli("quarantine", "readings", "-p", project, "--json")
    assert code == 0
    listing = json.loads(out)
    assert listing["total"] == 3
    assert [(r["_row_number"], r["_loaded"], r["_reasons"]) for r in listing["rows"]] == [
        (1, True, ["type:amount"]),
        (2, False, ["required:id"]),
        (3, True, ["in:status"]),
    ]

    code, out, _ = cli("quarantine", "readings", "-p", project)
    assert code == 0
    lines = out.splitlines()
    header = next(line for line in lines if "reasons" in line)
    assert "loaded" in header
    by_reason = {
        reason: line
        for line in lines
        for reason in ("type:amount", "required:id", "in:status")
        if reason in line
    }
    assert "yes" in by_reason["type:amount"] and "2147483648" in by_reason["type:amount"]
    assert "no" in by_reason["required:id"].split()
    assert "yes" in by_reason["in:status"] and "bogus" in by_reason["in:status"]


def test_quarantine_of_an_older_warehouse_reads_its_rows_as_held_back(
    tmp_path: Path, cli: Cli
) -> None:
    project = write_project(tmp_path, PROJECT.replace("on_invalid: warn", "on_invalid: quarantine"))
    (project / "landing/readings").mkdir(parents=True)
    (project / "landing/readings/a.csv").write_text("id,status,amount\n1,bogus,1\n")
    assert cli("run", "-p", project)[0] == 0
    conn = duckdb.connect(str(project / "warehouse.duckdb"))
    try:
        conn.execute("ALTER TABLE quarantine.readings DROP COLUMN _loaded")
    finally:
        conn.close()
    code, out, _ = cli("quarantine", "readings", "-p", project, "--json")
    assert code == 0
    assert [(r["_row_number"], r["_loaded"]) for r in json.loads(out)["rows"]] == [(1, False)]


def test_the_run_summary_table_shows_warned_rows(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/readings/a.csv": BODY})
    code, out, _ = cli("run", "-p", project)
    assert code == 0
    header = next(line for line in out.splitlines() if "quarantined" in line)
    assert "warned" in header
    row = next(line for line in out.splitlines() if line.lstrip("│ ").startswith("readings"))
    # status, batches, rows in, loaded, quarantined, duplicates, warned
    assert row.replace("│", " ").split()[1:8] == ["warning", "1", "4", "3", "1", "0", "2"]
