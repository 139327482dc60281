"""The session reconciles from the ledger's retention window only, read in SQL.

A load the store missed is still repaired after many later runs; a ledger row older than
the retention window (its store steps may have been pruned) is neither read nor recorded.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from penstock import load_project
from penstock.engine import Session

from helpers import write_project

PROJECT = """
name: window
metadata: sqlite:///{db}
retention_days: 30
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  items:
    source: landing
    files: "items/*.csv"
    key: [id]
    load: merge
    columns:
      id:  {{type: bigint, required: true}}
      qty: {{type: integer}}
"""


def _forget_load_steps(db: Path) -> None:
    """What a sink failure leaves: the store has no load step for any batch."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("DELETE FROM step_runs WHERE step = 'load'")
        conn.commit()
    finally:
        conn.close()


def _age(project: Path, batch_file: str, days: int) -> str:
    conn = duckdb.connect(str(project / "warehouse.duckdb"))
    try:
        rows = conn.execute(
            "SELECT l.batch_id FROM penstock.loads l JOIN items i ON i._batch_id = l.batch_id "
            "WHERE i.id = ?",
            [1 if batch_file == "a" else 2],
        ).fetchall()
        batch_id = str(rows[0][0])
        conn.execute(
            "UPDATE penstock.loads SET loaded_at = loaded_at - to_days(?) WHERE batch_id = ?",
            [days, batch_id],
        )
    finally:
        conn.close()
    return batch_id


def test_reconcile_reads_only_the_retention_window(tmp_path: Path) -> None:
    db = tmp_path / "meta.db"
    project = write_project(
        tmp_path / "p",
        PROJECT.format(db=db),
        {"landing/items/a.csv": "id,qty\n1,1\n", "landing/items/b.csv": "id,qty\n2,2\n"},
    )
    with Session(load_project(project)) as session:
        assert session.runner.run().status == "success"
    old = _age(project, "a", 40)
    recent = _age(project, "b", 0)
    _forget_load_steps(db)
    with Session(load_project(project)) as session:
        since = datetime.now(UTC) - timedelta(days=30)
        assert [row["batch_id"] for row in session.warehouse.ledger(since)] == [recent]
        assert {row["batch_id"] for row in session.warehouse.ledger()} == {old, recent}
        # only the batch inside the window is recorded from the ledger
        assert session.reconciled_batches == [recent]


def test_a_missed_load_is_still_repaired_after_many_runs(tmp_path: Path) -> None:
    db = tmp_path / "meta.db"
    project = write_project(tmp_path / "p", PROJECT.format(db=db), {})
    (project / "landing" / "items").mkdir(parents=True)
    for n in range(1, 13):
        (project / "landing" / "items" / f"f{n:02}.csv").write_text(f"id,qty\n{n},{n}\n")
        with Session(load_project(project)) as session:
            assert len(session.runner.run().loads()) == 1
    conn = sqlite3.connect(db)
    try:
        conn.execute(
            "DELETE FROM step_runs WHERE step = 'load' AND rows_in = 1 AND batch_id = "
            "(SELECT batch_id FROM step_runs WHERE step = 'load' ORDER BY started_at "
            "LIMIT 1 OFFSET 5)"
        )
        conn.commit()
        missing = conn.execute("SELECT COUNT(*) FROM step_runs WHERE step = 'load'").fetchone()
    finally:
        conn.close()
    assert missing == (11,)
    with Session(load_project(project)) as session:
        assert len(session.reconciled_batches) == 1
    with Session(load_project(project)) as session:
        assert session.reconciled_batches == []


def test_an_older_store_gains_the_batch_index(tmp_path: Path) -> None:
    """Reconciling looks batches up in step_runs each run: without an index on batch_id
    that was a scan of every step per 500 batches (0.69 s at 20,000 batches)."""
    from penstock.observe import MetadataStore

    db = tmp_path / "meta.db"
    MetadataStore(f"sqlite:///{db}").close()
    conn = sqlite3.connect(db)
    try:
        conn.execute("DROP INDEX ix_step_runs_batch_id")
        conn.commit()
    finally:
        conn.close()
    MetadataStore(f"sqlite:///{db}").close()
    conn = sqlite3.connect(db)
    try:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT batch_id FROM step_runs WHERE batch_id IN ('a', 'b')"
        ).fetchall()
    finally:
        conn.close()
    assert any("ix_step_runs_batch_id" in str(row) for row in plan), plan


def _batches_by_id(project: Path) -> dict[int, str]:
    conn = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    try:
        rows = conn.execute(
            "SELECT i.id, l.batch_id FROM penstock.loads l JOIN items i ON i._batch_id = l.batch_id"
        ).fetchall()
    finally:
        conn.close()
    return {int(i): str(b) for i, b in rows}


def test_a_session_checks_the_loads_since_the_last_check(tmp_path: Path) -> None:
    """Each session records up to which load time the ledger was complete in the store; the
    next reads the ledger from there less a day, not the whole retention window. A new store
    has no such record: the whole window is checked again."""
    db = tmp_path / "meta.db"
    project = write_project(tmp_path / "p", PROJECT.format(db=db), {})
    (project / "landing" / "items").mkdir(parents=True)
    for n in (1, 2, 3):
        (project / "landing" / "items" / f"f{n}.csv").write_text(f"id,qty\n{n},{n}\n")
        with Session(load_project(project)) as session:
            assert len(session.runner.run().loads()) == 1
    batch = _batches_by_id(project)
    conn = sqlite3.connect(db)
    try:
        (checked,) = conn.execute("SELECT checked_through FROM ledger_checks").fetchone()
    finally:
        conn.close()
    # the third session checked the first two loads: it found them all in the store
    loaded = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    try:
        (second,) = loaded.execute(
            "SELECT strftime(loaded_at, '%Y-%m-%d %H:%M:%S.%f') FROM penstock.loads "
            "WHERE batch_id = ?",
            [batch[2]],
        ).fetchone()
    finally:
        loaded.close()
    assert checked == second
    # the first two loads three days older (before the last check, less its day of margin),
    # and the store has lost every load step
    conn = duckdb.connect(str(project / "warehouse.duckdb"))
    try:
        conn.execute(
            "UPDATE penstock.loads SET loaded_at = loaded_at - INTERVAL 3 DAY "
            "WHERE batch_id IN (?, ?)",
            [batch[1], batch[2]],
        )
    finally:
        conn.close()
    _forget_load_steps(db)
    with Session(load_project(project)) as session:
        assert session.reconciled_batches == [batch[3]]
    db.unlink()  # a new store: the whole retention window is checked
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with Session(load_project(project)) as session:
        assert sorted(session.reconciled_batches) == sorted(batch.values())
