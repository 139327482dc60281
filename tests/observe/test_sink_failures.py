"""A failing metadata store never fails a committed load: the ledger is the truth.

The store's tables are really broken mid-run (renamed from another connection, or, on
PostgreSQL, its sessions terminated as well), after the first batch loaded. The run still
succeeds with both batches in the ledger; stderr says what the store missed; the next run
records the missed load step from the ledger, marked reconciled.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from penstock import load_project
from penstock.engine import Session
from penstock.observe import (
    Event,
    EventBus,
    LedgerLoad,
    LogRecord,
    MetadataStore,
    StepFinished,
)

from helpers import query, write_project

PROJECT = """
name: sinks
metadata: {metadata}
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  items:
    source: landing
    files: "items/*.csv"
    key: [id]
    load: merge
    micro_batch: {{files: 1}}  # one batch a transaction: the store breaks between the two
    columns:
      id:  {{type: bigint, required: true}}
      qty: {{type: integer, min: 0}}
"""
FILES = {
    "landing/items/a.csv": "id,qty\n1,1\n2,2\n",
    "landing/items/b.csv": "id,qty\n2,20\n3,-3\n",
}


def _run_breaking_store_after_first_load(
    project: Path, break_store: Callable[[], None], capsys: pytest.CaptureFixture[str]
) -> tuple[str, str, dict[str, int]]:
    broken = False

    with Session(load_project(project)) as session:

        def breaker(event: Event) -> None:
            nonlocal broken
            if isinstance(event, StepFinished) and event.step == "load" and not broken:
                broken = True
                session.bus.flush()  # the store is queued: it recorded the first load
                break_store()

        session.bus.subscribe(breaker)
        result = session.runner.run()
        dropped = session.bus.dropped
    assert broken
    assert result.status == "success", [f.error for f in result.failures]
    assert [o.status for o in result.loads()] == ["success", "warning"]
    return result.run_id, capsys.readouterr().err, dropped


def _assert_reconciled(project: Path, store_url: str, run_id: str) -> None:
    ledger = query(project, "SELECT batch_id, run_id FROM penstock.loads ORDER BY loaded_at")
    assert len(ledger) == 2 and {r for _, r in ledger} == {run_id}
    assert query(project, "SELECT id, qty FROM items ORDER BY id") == [(1, 1), (2, 20)]
    # the next run holds the lock, finds the missed load step in the ledger and records it
    with Session(load_project(project)) as session:
        assert session.reconciled_batches == [ledger[1][0]]
        assert session.runner.run().loads() == []
    with MetadataStore(store_url) as store:
        first = next(r for r in store.runs() if r.run_id == run_id)
        assert first.status == "warning"  # its second load quarantined a row
        loads = [s for s in store.steps(run_id) if s.step == "load"]
        by_batch = {s.batch_id: s for s in loads}
        assert set(by_batch) == {b for b, _ in ledger}
        assert not by_batch[ledger[0][0]].reconciled
        late = by_batch[ledger[1][0]]
        assert late.reconciled and late.status == "warning"
        assert (late.rows_in, late.rows_loaded, late.rows_quarantined) == (2, 1, 1)
        assert first.rows_loaded == 3 and first.rows_quarantined == 1
        status = store.object_status(["items"])["items"]
        assert status.batches_loaded == 2
    # and a third session finds nothing more to reconcile
    with Session(load_project(project)) as session:
        assert session.reconciled_batches == []


def test_a_broken_sqlite_store_does_not_fail_a_committed_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "meta.db"
    url = f"sqlite:///{db}"
    project = write_project(tmp_path / "p", PROJECT.format(metadata=url), FILES)

    def rename(old: str, new: str) -> None:
        conn = sqlite3.connect(db)
        try:
            conn.execute(f"ALTER TABLE {old} RENAME TO {new}")
            conn.commit()
        finally:
            conn.close()

    run_id, err, dropped = _run_breaking_store_after_first_load(
        project, lambda: rename("step_runs", "step_runs_away"), capsys
    )
    assert "the metadata store could not record StepStarted" in err
    assert "no such table: step_runs" in err
    assert "the run goes on" in err
    assert dropped["the metadata store"] >= 2
    rename("step_runs_away", "step_runs")
    _assert_reconciled(project, url, run_id)


@pytest.mark.services
def test_a_broken_postgres_store_does_not_fail_a_committed_load(
    tmp_path: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = write_project(tmp_path / "p", PROJECT.format(metadata=pg_url), FILES)

    def admin(sql: str) -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(sql)

    def break_store() -> None:
        admin("ALTER TABLE step_runs RENAME TO step_runs_away")
        admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )

    run_id, err, dropped = _run_breaking_store_after_first_load(project, break_store, capsys)
    assert "the metadata store could not record" in err
    assert dropped["the metadata store"] >= 2
    admin("ALTER TABLE step_runs_away RENAME TO step_runs")
    _assert_reconciled(project, pg_url, run_id)


def test_a_guarded_sink_is_retried_then_rests_and_never_raises() -> None:
    calls: list[str] = []
    fail_times = 2

    def flaky(event: Event) -> None:
        nonlocal fail_times
        calls.append(type(event).__name__)
        if fail_times:
            fail_times -= 1
            raise OSError("store busy")

    bus = EventBus()
    bus.subscribe(flaky, guarded=True, name="flaky")
    bus.emit(LogRecord(run_id="r", level="info", message="m"))
    assert calls == ["LogRecord"] * 3  # two failures, then delivered on the third attempt
    assert bus.dropped == {}

    def broken(_: Event) -> None:
        calls.append("broken")
        raise RuntimeError("gone")

    seen: list[Event] = []
    bus2 = EventBus()
    bus2.subscribe(broken, guarded=True, name="broken")
    bus2.subscribe(seen.append)
    calls.clear()
    for _ in range(4):
        bus2.emit(LogRecord(run_id="r", level="info", message="m"))
    assert len(seen) == 4  # the sinks after it still see every event
    assert calls == ["broken"] * 3  # retried for the first event, then resting
    assert bus2.dropped == {"broken": 4}


def test_a_sink_that_recovers_gets_its_retries_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """One outage must not leave the sink on a single try for the rest of the run."""
    import penstock.observe.bus as bus_module

    clock = [0.0]
    monkeypatch.setattr(bus_module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(bus_module.time, "sleep", lambda _: None)
    outcomes: list[bool] = []  # True: this delivery fails
    calls: list[bool] = []

    def store(_: Event) -> None:
        failed = outcomes.pop(0) if outcomes else False
        calls.append(failed)
        if failed:
            raise OSError("database is locked")

    bus = EventBus()
    bus.subscribe(store, guarded=True, name="store")
    outcomes[:] = [True, True, True]
    bus.emit(LogRecord(run_id="r", level="info", message="m"))  # an outage: 3 tries, dropped
    assert (len(calls), bus.dropped) == (3, {"store": 1})
    clock[0] += bus_module.COOLDOWN_SECONDS + 1
    bus.emit(LogRecord(run_id="r", level="info", message="m"))  # recovered
    calls.clear()
    outcomes[:] = [True]  # a one-off blip later in the run
    bus.emit(LogRecord(run_id="r", level="info", message="m"))
    assert calls == [True, False]  # retried after the blip, as a healthy sink is
    assert bus.dropped == {"store": 1}


def test_an_older_store_gets_the_reconciled_column(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    MetadataStore(f"sqlite:///{db}").close()
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX IF EXISTS ix_step_runs_object_started_at")
    conn.execute("ALTER TABLE step_runs DROP COLUMN reconciled")
    conn.commit()
    assert "reconciled" not in {r[1] for r in conn.execute("PRAGMA table_info(step_runs)")}
    conn.close()
    MetadataStore(f"sqlite:///{db}").close()
    conn = sqlite3.connect(db)
    assert "reconciled" in {r[1] for r in conn.execute("PRAGMA table_info(step_runs)")}
    conn.close()


def test_reconciling_leaves_batches_older_than_retention_alone(tmp_path: Path) -> None:
    """Their steps may have been pruned on purpose: they must not come back."""
    now = datetime.now(UTC)
    old = LedgerLoad("b-old", "items", "r-old", now - timedelta(days=100), 1, 1, 0, 0)
    new = LedgerLoad("b-new", "items", None, now - timedelta(days=1), 2, 1, 1, 0)
    with MetadataStore(f"sqlite:///{tmp_path / 'm.db'}") as store:
        got = store.reconcile_loads("p", "h", [old, new], since=now - timedelta(days=90))
        assert got == ["b-new"]
        (run,) = store.runs()
        # recorded from the ledger: its outcome is its steps' (a row was quarantined)
        assert (run.status, run.reconciled) == ("warning", True)
        assert run.run_id == "reconciled-b-new"
        (step,) = store.steps(run.run_id)
        assert (step.batch_id, step.status, step.reconciled) == ("b-new", "warning", True)
        assert store.reconcile_loads("p", "h", [old, new], since=now - timedelta(days=90)) == []
