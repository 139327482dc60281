"""The `reconcile` table check (issue 10, part 1) against the real servers: a batch holds as
many rows as its source counted in the batch's window; a row written inside the window while
it was read is caught, with both counts named."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

import penstock
from penstock.faults import fault_action
from penstock.lake import Lake

from db_sources import BASE, ORDERS, SourceDb, create_orders, db_project, insert_orders
from helpers import log_messages, query

pytestmark = pytest.mark.services

RECONCILED = ORDERS + "  checks:\n    - {reconcile: {severity: SEVERITY}}\n"


def completeness(project: Path) -> list[tuple[str, int, int]]:
    """(batch, rows checked, rows failed) of the completeness dimension in dq_results."""
    with sqlite3.connect(project / ".penstock/metadata.db") as conn:
        return conn.execute(
            "SELECT batch_id, rows_checked, rows_failed FROM dq_results "
            "WHERE dimension = 'completeness' ORDER BY measured_at"
        ).fetchall()


def test_equal_counts_pass_and_a_row_written_during_the_read_is_caught(
    db: SourceDb, tmp_path: Path
) -> None:
    create_orders(db, 20)  # updated_at BASE+1m .. BASE+20m
    project = db_project(tmp_path / "p", db, RECONCILED.replace("SEVERITY", "error"))
    result = penstock.run(project)
    assert result.status == "success"
    ((first,),) = query(project, "SELECT batch_id FROM penstock.loads")
    assert Lake(project / "lake").staged_batch("orders", first).manifest.source_rows == 20
    assert query(project, "SELECT count(*) FROM orders") == [(20,)]
    assert query(project, "SELECT count(*) FROM quarantine.orders") == [(0,)]
    assert completeness(project) == [(first, 20, 0)]

    # the next window (BASE+20m .. BASE+40m) is read; before the source is counted, a row
    # is committed inside it (BASE+25m30s): the count says 22, the batch holds 21
    db.execute(*insert_orders(range(21, 41)))
    late = insert_orders(range(100, 101), BASE + timedelta(minutes=25, seconds=30))
    with fault_action("after_extract", lambda: db.execute(*late)):
        result = penstock.run(project)
    (outcome,) = [o for o in result.outcomes if o.step == "load"]
    assert (outcome.rows_in, outcome.rows_loaded, outcome.rows_quarantined) == (21, 0, 21)
    assert outcome.reason_counts == {"check:reconcile": 21}
    second = outcome.batch_id
    assert Lake(project / "lake").staged_batch("orders", second).manifest.source_rows == 22
    assert query(project, "SELECT count(*) FROM orders") == [(20,)]  # held back whole
    held = f"SELECT count(*), min(_reasons) FROM quarantine.orders WHERE _batch_id = '{second}'"
    assert query(project, held) == [(21, ["check:reconcile"])]
    assert completeness(project)[-1] == (second, 21, 21)
    messages = log_messages(project, result.run_id)
    assert any(
        "fails check:reconcile (the source counts 22 row(s) in the window, the batch holds 21)" in m
        for m in messages
    ), messages
    # a rebuild judges the same two counts (kept in the manifest): no source is asked
    assert penstock.rebuild(project).status == "success"
    assert query(project, "SELECT count(*) FROM quarantine.orders") == [(21,)]


def test_a_warning_reconciliation_loads_and_says_so(db: SourceDb, tmp_path: Path) -> None:
    create_orders(db, 5)
    project = db_project(tmp_path / "p", db, RECONCILED.replace("SEVERITY", "warn"))
    late = insert_orders(range(100, 101), BASE + timedelta(minutes=3, seconds=30))
    with fault_action("after_extract", lambda: db.execute(*late)):
        result = penstock.run(project)
    (outcome,) = [o for o in result.outcomes if o.step == "load"]
    assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == ("warning", 5, 0)
    assert any(
        "fails check:reconcile (the source counts 6 row(s) in the window, the batch holds 5); "
        "severity warn: loaded" in m
        for m in log_messages(project, result.run_id)
    )
    # the score still counts the check failed: every record, in completeness
    assert completeness(project) == [(outcome.batch_id, 5, 5)]


def test_under_on_invalid_fail_the_batch_fails_naming_both_counts(
    db: SourceDb, tmp_path: Path
) -> None:
    create_orders(db, 5)
    strict = RECONCILED.replace("SEVERITY", "error").replace(
        "  cursor: updated_at\n", "  cursor: updated_at\n  on_invalid: fail\n"
    )
    project = db_project(tmp_path / "p", db, strict)
    late = insert_orders(range(100, 101), BASE + timedelta(minutes=3, seconds=30))
    with fault_action("after_extract", lambda: db.execute(*late)):
        result = penstock.run(project)
    assert result.status == "failed"
    (outcome,) = [o for o in result.outcomes if o.step == "load"]
    assert outcome.status == "failed" and outcome.error is not None
    assert (
        "check:reconcile ×5 (the source counts 6 row(s) in the window, the batch holds 5)"
        in outcome.error
    )
    assert query(project, "SELECT count(*) FROM penstock.loads") == [(0,)]
