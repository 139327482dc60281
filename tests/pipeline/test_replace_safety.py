"""A replace never empties a table because a batch failed or a file came empty."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import penstock

from helpers import query, write_project

YML = """
name: snapshots
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  stock:
    source: landing
    files: "stock/*.csv"
    load: replace
    columns:
      sku: {type: text, required: true}
      qty: {type: integer, min: 0}
    checks:
      - {row_count: {min: 3}}
"""


def drop(project: Path, name: str, body: str) -> None:
    path = project / "landing" / "stock" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("sku,qty\n" + body)


def warnings(project: Path, run_id: str) -> list[tuple[str | None, str]]:
    conn = sqlite3.connect(project / ".penstock" / "metadata.db")
    try:
        rows = conn.execute(
            "SELECT batch_id, message FROM logs WHERE run_id = ? AND level = 'warning' ORDER BY id",
            [run_id],
        ).fetchall()
    finally:
        conn.close()
    return [(r[0], r[1]) for r in rows]


def first_snapshot(tmp_path: Path) -> Path:
    project = write_project(tmp_path, YML)
    drop(project, "01.csv", "a,1\nb,2\nc,3\n")
    assert penstock.run(project).status == "success"
    return project


TABLE = "SELECT sku, qty FROM stock ORDER BY sku"
KEPT = [("a", 1), ("b", 2), ("c", 3)]


def test_a_batch_failing_a_batch_check_keeps_the_previous_snapshot(tmp_path: Path) -> None:
    project = first_snapshot(tmp_path)
    batch_before = query(project, "SELECT DISTINCT _batch_id FROM stock")
    drop(project, "02.csv", "z,9\n")
    result = penstock.run(project)
    (load,) = result.loads()
    assert load.status == "warning"
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (1, 0, 1)
    assert query(project, TABLE) == KEPT
    assert query(project, "SELECT DISTINCT _batch_id FROM stock") == batch_before
    # the batch is done (in the ledger) and its row is in quarantine
    assert query(project, "SELECT count(*) FROM penstock.loads") == [(2,)]
    assert query(project, "SELECT sku, _reasons FROM quarantine.stock") == [
        ("z", ["check:row_count"])
    ]
    said = [m for b, m in warnings(project, result.run_id) if b == load.batch_id]
    assert any("keeps the previous snapshot" in m and load.batch_id in m for m in said), said


def test_a_batch_whose_rows_all_fail_keeps_the_previous_snapshot(tmp_path: Path) -> None:
    project = first_snapshot(tmp_path)
    drop(project, "02.csv", "x,-1\ny,-2\nz,oops\n")
    result = penstock.run(project)
    (load,) = result.loads()
    assert load.status == "warning"
    assert (load.rows_loaded, load.rows_quarantined) == (0, 3)
    assert query(project, TABLE) == KEPT


def test_an_empty_snapshot_keeps_the_previous_table(tmp_path: Path) -> None:
    project = write_project(
        tmp_path, YML.replace("    checks:\n      - {row_count: {min: 3}}\n", "")
    )
    drop(project, "01.csv", "a,1\nb,2\nc,3\n")
    penstock.run(project)
    drop(project, "02.csv", "")  # header only
    result = penstock.run(project)
    (load,) = result.loads()
    assert load.status == "warning"
    assert (load.rows_in, load.rows_loaded) == (0, 0)
    assert query(project, TABLE) == KEPT
    said = [m for b, m in warnings(project, result.run_id) if b == load.batch_id]
    assert any("keeps the previous snapshot" in m for m in said), said


def test_a_partly_valid_snapshot_still_replaces(tmp_path: Path) -> None:
    project = first_snapshot(tmp_path)
    drop(project, "02.csv", "x,1\ny,2\nz,-3\n")
    (load,) = penstock.run(project).loads()
    assert load.status == "warning"
    assert query(project, TABLE) == [("x", 1), ("y", 2)]


def test_rebuild_gives_the_same_snapshot(tmp_path: Path) -> None:
    project = first_snapshot(tmp_path)
    drop(project, "02.csv", "z,9\n")
    penstock.run(project)
    before = query(project, "SELECT * FROM stock ORDER BY sku")
    assert penstock.rebuild(project).status == "success"
    assert query(project, "SELECT * FROM stock ORDER BY sku") == before
