"""The store's view of an object's outcome: `object` steps, reconciled loads, retention.

Every run records one `object` step per object it selected; the object's status is the worst
status among its steps in its latest run. Reconciled load steps count there like any other;
object steps are pruned with their runs and are not counted as steps by `runs`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from penstock.observe import (
    OBJECT_STEP,
    EventBus,
    LedgerLoad,
    MetadataStore,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from penstock.observe.retention import RETENTION_KINDS, collect
from penstock.observe.schema import step_runs

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def bus(store: MetadataStore) -> EventBus:
    b = EventBus()
    b.subscribe(store.handle)
    return b


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def started(bus: EventBus, run: str, sid: str, obj: str, step: str, when: float, **kw: Any) -> None:
    bus.emit(
        StepStarted(
            run_id=run, step_id=sid, object=obj, batch_id=kw.get("batch_id"), step=step, at=at(when)
        )
    )


def finished(
    bus: EventBus, run: str, sid: str, obj: str, step: str, when: float, **kw: Any
) -> None:
    bus.emit(StepFinished(run_id=run, step_id=sid, object=obj, step=step, at=at(when), **kw))


def run_started(bus: EventBus, run: str, when: float) -> None:
    bus.emit(
        RunStarted(
            run_id=run, project="p", project_hash="h", command="run", selector=None, at=at(when)
        )
    )


def test_runs_count_batch_steps_not_object_steps(store: MetadataStore, bus: EventBus) -> None:
    run_started(bus, "r", 0)
    started(bus, "r", "o", "orders", OBJECT_STEP, 1)
    started(bus, "r", "l", "orders", "load", 2, batch_id="b")
    finished(bus, "r", "l", "orders", "load", 3, batch_id="b", status="failed", rows_in=4)
    finished(bus, "r", "o", "orders", OBJECT_STEP, 4, batch_id=None, status="failed")
    bus.emit(RunFinished(run_id="r", status="failed", at=at(5)))
    (run,) = store.runs()
    assert (run.steps, run.failed_steps, run.rows_in) == (1, 1, 4)
    assert [s.step for s in store.steps("r")] == [OBJECT_STEP, "load"]
    st = store.object_status(["orders"])["orders"]
    assert (st.last_run_id, st.last_status, st.batches_loaded) == ("r", "failed", 0)


def test_an_object_step_alone_is_the_objects_outcome(store: MetadataStore, bus: EventBus) -> None:
    run_started(bus, "r1", 0)
    started(bus, "r1", "l", "orders", "load", 1, batch_id="b")
    finished(bus, "r1", "l", "orders", "load", 2, batch_id="b", status="warning")
    bus.emit(RunFinished(run_id="r1", status="success", at=at(3)))
    run_started(bus, "r2", 10)
    started(bus, "r2", "o", "orders", OBJECT_STEP, 11)
    assert store.object_status(["orders"])["orders"].last_status == "running"
    finished(bus, "r2", "o", "orders", OBJECT_STEP, 12, batch_id=None, status="success")
    st = store.object_status(["orders"])["orders"]
    assert (st.last_run_id, st.last_status, st.last_run_at) == ("r2", "success", at(11))
    assert (st.last_batch_at, st.batches_loaded) == (at(2), 1)


def test_reconciled_loads_count_in_the_outcome(store: MetadataStore, bus: EventBus) -> None:
    # the store missed the load step's end: the runner's object step says warning
    run_started(bus, "r1", 0)
    started(bus, "r1", "o", "items", OBJECT_STEP, 1)
    started(bus, "r1", "l", "items", "load", 2, batch_id="b1")
    finished(bus, "r1", "o", "items", OBJECT_STEP, 4, batch_id=None, status="warning")
    bus.emit(RunFinished(run_id="r1", status="success", at=at(5)))
    ledger = [LedgerLoad("b1", "items", "r1", at(3), 2, 1, 1, 0)]
    assert store.reconcile_loads("p", "h", ledger) == ["b1"]
    st = store.object_status(["items"])["items"]
    assert (st.last_run_id, st.last_status) == ("r1", "warning")
    assert (st.last_batch_at, st.batches_loaded, st.rows_quarantined_total) == (at(3), 1, 1)

    # the store missed a whole later run: its reconciled load is the object's latest outcome
    ledger.append(LedgerLoad("b2", "items", "r2", at(20), 3, 3, 0, 0))
    assert store.reconcile_loads("p", "h", ledger) == ["b2"]
    st = store.object_status(["items"])["items"]
    assert (st.last_run_id, st.last_status, st.last_batch_at) == ("r2", "success", at(20))
    assert st.batches_loaded == 2


def test_a_killed_run_leaves_the_object_abandoned_not_success(
    store: MetadataStore, bus: EventBus
) -> None:
    run_started(bus, "r", 0)
    started(bus, "r", "o", "items", OBJECT_STEP, 1)
    started(bus, "r", "s", "items", "stage", 2)
    finished(bus, "r", "s", "items", "stage", 3, batch_id="b1", status="success")
    # killed here, after its load committed: the ledger has the batch, the store does not
    assert store.object_status(["items"])["items"].last_status == "running"
    ledger = [LedgerLoad("b1", "items", "r", at(4), 1, 1, 0, 0)]
    assert store.reconcile_loads("p", "h", ledger) == ["b1"]
    assert store.mark_abandoned("p") == ["r"]
    st = store.object_status(["items"])["items"]
    assert (st.last_run_id, st.last_status, st.batches_loaded) == ("r", "abandoned", 1)
    assert store.runs()[0].status == "abandoned"


def test_object_steps_are_pruned_with_their_runs(store: MetadataStore, bus: EventBus) -> None:
    now = T0 + timedelta(days=40)
    for i, run in enumerate(("old", "new")):
        base = i * 39 * 86400.0
        run_started(bus, run, base)
        started(bus, run, f"{run}-o", "items", OBJECT_STEP, base + 1)
        finished(
            bus, run, f"{run}-o", "items", OBJECT_STEP, base + 2, batch_id=None, status="success"
        )
        bus.emit(RunFinished(run_id=run, status="success", at=at(base + 3)))
    periods = {kind: timedelta(days=30) for kind in RETENTION_KINDS}
    rows = collect(store, periods, project="p", now=now).rows
    assert (rows["job_runs"], rows["step_runs"], rows["logs"]) == (1, 1, 0)
    with store.engine.connect() as conn:
        left = list(conn.execute(sa.select(step_runs.c.run_id, step_runs.c.step)))
    assert left == [("new", OBJECT_STEP)]
    assert store.object_status(["items"])["items"].last_run_id == "new"
