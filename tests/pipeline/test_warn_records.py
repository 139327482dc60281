"""`on_invalid: warn` loads a row that breaks the contract AND records a copy of it in
`quarantine.<object>` (raw values as text, reasons, record number) with `_loaded = true`;
rows held back (every other quarantine path) carry `_loaded = false`. The ledger counts the
warned rows apart: rows_in = rows_loaded + rows_quarantined + rows_duplicate still holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

import penstock

from helpers import log_messages, query, write_project

YML = """
name: warned
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  readings:
    source: landing
    files: "readings/*.csv"
    EXTRA
    columns:
      id:     {type: integer, required: true}
      status: {type: text, in: [ok, late]}
      amount: {type: integer}
      day:    {type: date}
"""
WARN = "load: append\n    on_invalid: warn"
QUARANTINE = "load: append\n    on_invalid: quarantine"
MERGE_WARN = "key: [id]\n    load: merge\n    on_invalid: warn"

# record 1: a type failure (1.5 is not an integer); record 2: an `in:` failure; record 3 clean
BODY = "id,status,amount,day\n1,ok,1.5,2024-01-01\n2,bogus,5,2024-01-02\n3,ok,7,2024-01-03\n"
QUARANTINE_ROWS = (
    "SELECT id, status, amount, day, _reasons, _row_number, _loaded "
    "FROM quarantine.readings ORDER BY _batch_id, _row_number"
)
LEDGER = (
    "SELECT rows_in, rows_loaded, rows_quarantined, rows_duplicate, rows_warned "
    "FROM penstock.loads ORDER BY loaded_at, batch_id"
)


def project_with(tmp_path: Path, extra: str, files: dict[str, str]) -> Path:
    return write_project(tmp_path, YML.replace("EXTRA", extra), files)


def test_warn_loads_every_row_and_records_the_failing_ones(tmp_path: Path) -> None:
    project = project_with(tmp_path, WARN, {"landing/readings/01.csv": BODY})
    result = penstock.run(project)
    (load,) = result.loads()
    assert load.status == "warning"
    # every row loaded; the value that failed its type loads as NULL
    assert query(project, "SELECT id, status, amount, day::VARCHAR FROM readings ORDER BY id") == [
        (1, "ok", None, "2024-01-01"),
        (2, "bogus", 5, "2024-01-02"),
        (3, "ok", 7, "2024-01-03"),
    ]
    # ... and the failing rows are recorded with their raw text, reasons and record number
    assert query(project, QUARANTINE_ROWS) == [
        ("1", "ok", "1.5", "2024-01-01", ["type:amount"], 1, True),
        ("2", "bogus", "5", "2024-01-02", ["in:status"], 2, True),
    ]
    batch_ids = query(project, "SELECT DISTINCT _batch_id FROM quarantine.readings")
    assert batch_ids == [(load.batch_id,)]
    # the ledger: nothing held back, two rows loaded with violations; accounting holds
    assert query(project, LEDGER) == [(3, 3, 0, 0, 2)]
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined, load.rows_duplicate) == (
        3,
        3,
        0,
        0,
    )
    assert load.rows_warned == 2
    assert load.rows_in == load.rows_loaded + load.rows_quarantined + load.rows_duplicate
    (summary,) = result.summary(["readings"])
    assert (summary.rows_warned, summary.rows_quarantined) == (2, 0)
    # the log says where the rows are recorded
    assert (
        "landing/readings/01.csv: 2 row(s) broke the contract (2 loaded anyway and recorded "
        "in quarantine.readings)" in log_messages(project, result.run_id)
    )


def test_warn_writes_the_recorded_rows_to_the_lake_quarantine_file(tmp_path: Path) -> None:
    project = project_with(tmp_path, WARN, {"landing/readings/01.csv": BODY})
    (load,) = penstock.run(project).loads()
    path = project / "lake" / "quarantine" / "readings" / f"{load.batch_id}.parquet"
    assert path.exists()
    rows = duckdb.sql(
        f"SELECT amount, status, _reasons, _row_number, _loaded, _batch_id "
        f"FROM read_parquet('{path}') ORDER BY _row_number"
    ).fetchall()
    assert rows == [
        ("1.5", "ok", ["type:amount"], 1, True, load.batch_id),
        ("5", "bogus", ["in:status"], 2, True, load.batch_id),
    ]


def test_quarantine_mode_marks_the_same_rows_as_held_back(tmp_path: Path) -> None:
    project = project_with(tmp_path, QUARANTINE, {"landing/readings/01.csv": BODY})
    (load,) = penstock.run(project).loads()
    assert query(project, "SELECT id FROM readings") == [(3,)]
    assert query(project, QUARANTINE_ROWS) == [
        ("1", "ok", "1.5", "2024-01-01", ["type:amount"], 1, False),
        ("2", "bogus", "5", "2024-01-02", ["in:status"], 2, False),
    ]
    assert query(project, LEDGER) == [(3, 1, 2, 0, 0)]
    assert (load.rows_quarantined, load.rows_warned) == (2, 0)


def test_warn_merge_holds_back_a_row_without_its_key(tmp_path: Path) -> None:
    body = "id,status,amount,day\n1,ok,1.5,2024-01-01\n,ok,5,2024-01-02\n3,late,7,2024-01-03\n"
    project = project_with(tmp_path, MERGE_WARN, {"landing/readings/01.csv": body})
    (load,) = penstock.run(project).loads()
    assert query(project, "SELECT id, amount FROM readings ORDER BY id") == [(1, None), (3, 7)]
    assert query(project, QUARANTINE_ROWS) == [
        ("1", "ok", "1.5", "2024-01-01", ["type:amount"], 1, True),
        (None, "ok", "5", "2024-01-02", ["required:id"], 2, False),
    ]
    assert query(project, LEDGER) == [(3, 2, 1, 0, 1)]
    assert (load.rows_loaded, load.rows_quarantined, load.rows_warned) == (2, 1, 1)


def test_warn_counts_a_superseded_failing_row_as_a_duplicate(tmp_path: Path) -> None:
    """A failing row that a later row of its key supersedes went on to load (`_loaded` true,
    counted in rows_warned) and collapsed like any duplicate (rows_duplicate)."""
    body = "id,status,amount,day\n1,ok,1.5,2024-01-01\n1,ok,5,2024-01-02\n"
    project = project_with(tmp_path, MERGE_WARN, {"landing/readings/01.csv": body})
    (load,) = penstock.run(project).loads()
    assert query(project, "SELECT id, amount FROM readings") == [(1, 5)]
    assert query(project, "SELECT _row_number, _loaded FROM quarantine.readings") == [(1, True)]
    assert query(project, LEDGER) == [(2, 1, 0, 1, 1)]
    assert load.rows_in == load.rows_loaded + load.rows_quarantined + load.rows_duplicate


def test_warn_keeps_a_malformed_record_held_back(tmp_path: Path) -> None:
    body = "id,status,amount,day\n1,ok,1.5,2024-01-01\n2,ok\n"
    project = project_with(tmp_path, WARN, {"landing/readings/01.csv": body})
    (load,) = penstock.run(project).loads()
    recorded = query(
        project, "SELECT _row_number, _reasons, _loaded FROM quarantine.readings ORDER BY 1"
    )
    assert recorded == [(1, ["type:amount"], True), (2, ["malformed"], False)]
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined, load.rows_warned) == (
        2,
        1,
        1,
        1,
    )


def state(project: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "readings": query(project, "SELECT * FROM readings ORDER BY ALL"),
        "quarantine": query(project, "SELECT * FROM quarantine.readings ORDER BY ALL"),
        "ledger": query(project, "SELECT * EXCLUDE (run_id) FROM penstock.loads ORDER BY ALL"),
    }


def test_rebuild_gives_the_identical_quarantine_table_under_warn(tmp_path: Path) -> None:
    project = project_with(tmp_path, WARN, {"landing/readings/01.csv": BODY})
    assert penstock.run(project).status == "success"
    (project / "landing" / "readings" / "02.csv").write_text(
        "id,status,amount,day\n4,late,2147483648,2013-02-30\n5,ok,NA,2024-01-05\n"
    )
    assert penstock.run(project).status == "success"
    before = state(project)
    assert query(project, "SELECT count(*) FILTER (_loaded) FROM quarantine.readings") == [(4,)]
    assert penstock.rebuild(project).status == "success"
    assert state(project) == before


def test_an_older_warehouse_gains_the_new_columns(tmp_path: Path) -> None:
    """A warehouse written before `_loaded` and `rows_warned` existed keeps working: its
    quarantined rows read as held back, its ledger rows as 0 warned."""
    project = project_with(tmp_path, QUARANTINE, {"landing/readings/01.csv": BODY})
    assert penstock.run(project).status == "success"
    conn = duckdb.connect(str(project / "warehouse.duckdb"))
    try:
        conn.execute("ALTER TABLE quarantine.readings DROP COLUMN _loaded")
        conn.execute("ALTER TABLE penstock.loads DROP COLUMN rows_warned")
    finally:
        conn.close()
    yml = (project / "penstock.yml").read_text().replace(QUARANTINE, WARN)
    (project / "penstock.yml").write_text(yml)
    (project / "landing" / "readings" / "02.csv").write_text(
        "id,status,amount,day\n4,bogus,1,2024-01-04\n"
    )
    result = penstock.run(project)
    assert result.status == "success"
    assert query(project, LEDGER) == [(3, 1, 2, 0, 0), (1, 1, 0, 0, 1)]
    assert query(project, "SELECT id, _loaded FROM quarantine.readings ORDER BY id") == [
        ("1", False),
        ("2", False),
        ("4", True),
    ]
