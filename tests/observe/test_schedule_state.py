"""The scheduler's tables on SQLite and PostgreSQL: schedule_state keeps one row per object
and never moves a tick backwards; retention keeps both new tables bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from penstock.observe import MetadataStore
from penstock.observe.leases import Holder, LeaseStore
from penstock.observe.retention import collect
from penstock.observe.schedule_state import ScheduleState

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KINDS = ("runs", "logs", "metrics", "dq_results", "lineage", "batch_decisions")
PERIODS = dict.fromkeys(KINDS, 30 * DAY)


def test_one_row_per_object_and_ticks_only_move_forward(store: MetadataStore) -> None:
    state = ScheduleState(store.engine, "p")
    state.record(["a", "b"], NOW, run_id="r1", status="success", now=NOW)
    state.record(["a"], NOW + DAY, run_id="r2", status="failed", now=NOW + DAY)
    state.record(["b"], NOW - DAY, run_id="late", status="success", now=NOW + DAY)  # older
    got = state.read()
    assert {n: (s.last_tick, s.last_run_id, s.last_status) for n, s in got.items()} == {
        "a": (NOW + DAY, "r2", "failed"),
        "b": (NOW, "r1", "success"),
    }
    assert ScheduleState(store.engine, "other").read() == {}
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM schedule_state").scalar_one() == 2


def test_retention_drops_long_expired_leases_and_state_of_removed_objects(
    store: MetadataStore,
) -> None:
    leases = LeaseStore(store.engine, "p")
    dead = Holder("dead", "run", 1, "gone-host")
    live = Holder("live", "schedule", 2, "here")
    assert leases.try_acquire("project", dead, ttl=60, now=NOW - 40 * DAY) is None
    assert leases.try_acquire("scheduler", live, ttl=60, now=NOW) is None
    state = ScheduleState(store.engine, "p")
    state.record(["kept", "removed"], NOW - 40 * DAY, run_id=None, status="skipped", now=NOW)
    report = collect(store, PERIODS, project="p", objects=["kept"], now=NOW)
    assert report.rows["leases"] == 1 and report.rows["schedule_state"] == 1
    assert [row.name for row in leases.all()] == ["scheduler"]
    assert list(state.read()) == ["kept"]
