"""merge: an identical row is unchanged (and keeps its batch); a tie on order_by with other
content is a correction the later batch wins; only an older order_by is stale."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import penstock

from helpers import query, write_project

YML = """
name: merge_counts
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  flights:
    source: landing
    files: "flights/*.csv"
    key: [id]
    order_by: ts
    load: merge
    columns:
      id:  {type: integer, required: true}
      dep: {type: text}
      ts:  {type: timestamp}
"""


def drop(project: Path, name: str, body: str) -> penstock.RunResult:
    path = project / "landing" / "flights" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id,dep,ts\n" + body)
    return penstock.run(project)


FIRST = "1,OSL,2024-01-01 10:00\n2,BER,2024-01-01 10:00\n3,ROM,2024-01-01 10:00\n"


def counts(project: Path) -> list[tuple[int, ...]]:
    return query(
        project,
        "SELECT rows_inserted, rows_updated, rows_unchanged, rows_stale FROM penstock.loads "
        "ORDER BY source_file",
    )


def test_an_identical_row_is_unchanged_and_keeps_its_batch(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML)
    drop(project, "01.csv", FIRST)
    before = query(project, "SELECT id, _batch_id, _loaded_at FROM flights ORDER BY id")
    # an edited copy of the file: one real change, one new row
    drop(project, "02.csv", FIRST.replace("BER", "BRU") + "4,CPH,2024-01-01 10:00\n")
    assert counts(project)[-1] == (1, 1, 2, 0)
    after = query(project, "SELECT id, _batch_id, _loaded_at FROM flights ORDER BY id")
    assert [after[0], after[2]] == [before[0], before[2]]  # untouched rows keep batch and time
    assert after[1][1] != before[1][1]
    assert query(project, "SELECT dep FROM flights ORDER BY id") == [
        ("OSL",),
        ("BRU",),
        ("ROM",),
        ("CPH",),
    ]


def test_a_tie_on_order_by_is_a_correction_and_only_older_is_stale(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML)
    drop(project, "01.csv", FIRST)
    drop(project, "02.csv", "1,OSX,2024-01-01 10:00\n2,BXX,2023-12-31 10:00\n")
    assert counts(project)[-1] == (0, 1, 0, 1)
    assert query(project, "SELECT dep FROM flights ORDER BY id") == [
        ("OSX",),
        ("BER",),
        ("ROM",),
    ]


def test_the_run_log_reports_unchanged(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML)
    drop(project, "01.csv", FIRST)
    reordered = "".join(reversed(FIRST.splitlines(keepends=True)))  # same rows, new file
    result = drop(project, "02.csv", reordered)
    (load,) = result.loads()
    assert load.status == "success"
    assert counts(project)[-1] == (0, 0, 3, 0)
    conn = sqlite3.connect(project / ".penstock" / "metadata.db")
    try:
        (message,) = conn.execute(
            "SELECT message FROM logs WHERE run_id = ? AND message LIKE 'loaded %'",
            [result.run_id],
        ).fetchone()
    finally:
        conn.close()
    assert "0 inserted, 0 updated, 3 unchanged, 0 older than stored" in message
