"""Events, the bus and the JSON helper."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from penstock.observe import (
    Event,
    EventBus,
    LogRecord,
    RunStarted,
    RunSummary,
    StepFinished,
    new_id,
    to_jsonable,
    utcnow,
)
from penstock.secrets import register_secret


def test_new_id_and_utcnow() -> None:
    a, b = new_id(), new_id()
    assert a != b
    assert len(a) == 32
    int(a, 16)
    assert utcnow().tzinfo is UTC


def test_events_are_frozen_keyword_only_and_utc() -> None:
    ev = RunStarted(run_id="r", project="p", project_hash="h", command="run", selector=None)
    assert ev.at.tzinfo is UTC
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.run_id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        RunStarted("r", "p", "h", "run", None)  # type: ignore[call-arg, arg-type]
    paris = timezone(timedelta(hours=2))
    local = datetime(2024, 5, 1, 14, 0, tzinfo=paris)
    moved = StepFinished(
        run_id="r", step_id="s", object="o", batch_id=None, step="load", status="success", at=local
    )
    assert moved.at == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert moved.at.tzinfo is UTC
    assert moved.attempt == 1
    assert moved.rows_in == moved.rows_loaded == moved.rows_quarantined == 0
    with pytest.raises(ValueError, match="timezone-aware"):
        LogRecord(run_id="r", level="info", message="m", at=datetime(2024, 1, 1))


def test_log_record_fields_default_is_not_shared() -> None:
    a = LogRecord(run_id="r", level="info", message="a")
    b = LogRecord(run_id="r", level="info", message="b")
    assert a.fields == {}
    assert a.fields is not b.fields


def test_bus_calls_handlers_in_order_and_propagates() -> None:
    bus = EventBus()
    seen: list[tuple[str, Event]] = []
    bus.subscribe(lambda e: seen.append(("first", e)))
    bus.subscribe(lambda e: seen.append(("second", e)))
    ev = LogRecord(run_id="r", level="info", message="hello")
    bus.emit(ev)
    assert seen == [("first", ev), ("second", ev)]

    def boom(_: Event) -> None:
        raise RuntimeError("sink broke")

    bus.subscribe(boom)
    bus.subscribe(lambda e: seen.append(("after", e)))
    with pytest.raises(RuntimeError, match="sink broke"):
        bus.emit(ev)
    assert [name for name, _ in seen] == ["first", "second", "first", "second"]


@pytest.mark.usefixtures("no_secrets")
def test_bus_log_builds_redacted_record() -> None:
    register_secret("hunter2-secret")
    bus = EventBus()
    got: list[Event] = []
    bus.subscribe(got.append)
    bus.log(
        "run1",
        "warning",
        "login with hunter2-secret failed",
        object="orders",
        batch_id="b1",
        password="hunter2-secret",
        nested={"dsn": "pg://u:hunter2-secret@h"},
        count=3,
    )
    (rec,) = got
    assert isinstance(rec, LogRecord)
    assert rec.run_id == "run1"
    assert rec.level == "warning"
    assert rec.message == "login with *** failed"
    assert rec.object == "orders"
    assert rec.batch_id == "b1"
    assert rec.fields == {"password": "***", "nested": {"dsn": "pg://u:***@h"}, "count": 3}
    with pytest.raises(ValueError, match="unknown log level"):
        bus.log("run1", "fatal", "x")  # type: ignore[arg-type]


def test_to_jsonable() -> None:
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    summary = RunSummary(
        run_id="r",
        command="run",
        selector=None,
        status="success",
        started_at=at,
        ended_at=None,
        duration_s=None,
        error=None,
        steps=1,
        failed_steps=0,
        rows_in=1,
        rows_loaded=1,
        rows_quarantined=0,
        rows_duplicate=0,
    )
    value = {
        "when": at,
        "tuple": (1, Decimal("2"), Decimal("2.5")),
        "path": Path("/x/y"),
        "runs": [summary],
        3: frozenset({"b", "a"}),
    }
    out = to_jsonable(value)
    assert out == {
        "when": "2024-05-01T12:00:00+00:00",
        "tuple": [1, 2, 2.5],
        "path": "/x/y",
        "runs": [{**dataclasses.asdict(summary), "started_at": "2024-05-01T12:00:00+00:00"}],
        "3": ["a", "b"],
    }
    json.dumps(out)
