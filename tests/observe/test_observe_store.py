"""The metadata store, on SQLite and PostgreSQL: events in, rows and read API out."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from penstock.errors import TransientError, UsageError
from penstock.observe import (
    AttributeRow,
    CatalogSnapshot,
    EventBus,
    LogRecord,
    MetadataStore,
    MetadataStoreError,
    MetadataStoreUnavailable,
    ObjectRow,
    ObjectStatus,
    RunFinished,
    RunStarted,
    SourceRow,
    StepFinished,
    StepStarted,
    to_jsonable,
)
from penstock.observe.retention import RETENTION_KINDS, collect
from penstock.observe.schema import job_runs, logs, step_runs
from penstock.observe.store import engine_url
from penstock.secrets import register_secret

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def count(store: MetadataStore, table: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())


def all_rows(store: MetadataStore, table: sa.Table) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


def step(
    bus: EventBus,
    run: str,
    sid: str,
    obj: str,
    name: str,
    start: float | None,
    end: float,
    **finish: Any,
) -> None:
    batch = finish.pop("batch_id", None)
    if start is not None:
        bus.emit(
            StepStarted(run_id=run, step_id=sid, object=obj, batch_id=batch, step=name, at=s(start))
        )
    bus.emit(
        StepFinished(
            run_id=run, step_id=sid, object=obj, batch_id=batch, step=name, at=s(end), **finish
        )
    )


def first_run(bus: EventBus) -> None:
    bus.emit(
        RunStarted(
            run_id="run1",
            project="demo",
            project_hash="h1",
            command="run",
            selector="group:sales",
            at=T0,
        )
    )
    step(bus, "run1", "s1", "orders", "stage", 1, 3, batch_id="b1", status="success", rows_in=100)
    step(
        bus,
        "run1",
        "s2",
        "orders",
        "load",
        4,
        6,
        batch_id="b1",
        status="warning",
        rows_in=100,
        rows_loaded=95,
        rows_quarantined=5,
        rows_duplicate=2,
    )
    step(
        bus,
        "run1",
        "s3",
        "customers",
        "stage",
        5,
        6.5,
        batch_id="c1",
        status="failed",
        rows_in=10,
        error="bad header",
    )
    step(bus, "run1", "s4", "customers", "load", None, 7, status="skipped")
    bus.emit(
        LogRecord(
            run_id="run1",
            level="info",
            message="staged",
            object="orders",
            batch_id="b1",
            at=s(3),
            fields={"n": 100, "tags": ["a", "b"], "nested": {"x": 1.5, "ok": True}, "none": None},
        )
    )
    bus.log("run1", "warning", "5 rows quarantined", object="orders", rows=5)
    bus.log("run1", "error", "customers failed", object="customers")
    bus.emit(RunFinished(run_id="run1", status="failed", error="1 step failed", at=s(10)))


def second_run(bus: EventBus) -> None:
    bus.emit(
        RunStarted(
            run_id="run2",
            project="demo",
            project_hash="h1",
            command="run",
            selector=None,
            at=s(3600),
        )
    )
    step(
        bus,
        "run2",
        "t1",
        "orders",
        "stage",
        3601,
        3602,
        batch_id="b2",
        status="success",
        rows_in=10,
    )
    step(
        bus,
        "run2",
        "t2",
        "orders",
        "load",
        3603,
        3605,
        batch_id="b2",
        status="success",
        rows_in=10,
        rows_loaded=9,
        rows_quarantined=1,
    )
    step(bus, "run2", "t3", "customers", "load", None, 3606, status="skipped")
    step(
        bus,
        "run2",
        "t4",
        "orders",
        "load",
        3607,
        3608,
        batch_id="b3",
        status="failed",
        rows_in=4,
        rows_quarantined=4,
        error="warehouse down",
    )
    bus.emit(RunFinished(run_id="run2", status="failed", at=s(3610)))


@pytest.fixture
def bus(store: MetadataStore) -> EventBus:
    b = EventBus()
    b.subscribe(store.handle)
    return b


def test_full_run_rows(store: MetadataStore, bus: EventBus) -> None:
    first_run(bus)
    assert count(store, "job_runs") == 1
    assert count(store, "step_runs") == 4
    assert count(store, "logs") == 3
    (run,) = all_rows(store, job_runs)
    assert run == {
        "run_id": "run1",
        "project": "demo",
        "project_hash": "h1",
        "command": "run",
        "selector": "group:sales",
        "status": "failed",
        "started_at": T0,
        "ended_at": s(10),
        "error": "1 step failed",
        "pid": None,
        "host": None,
    }
    rows = {r["step_id"]: r for r in all_rows(store, step_runs)}
    assert rows["s2"] == {
        "step_id": "s2",
        "run_id": "run1",
        "object": "orders",
        "batch_id": "b1",
        "step": "load",
        "status": "warning",
        "attempt": 1,
        "rows_in": 100,
        "rows_loaded": 95,
        "rows_quarantined": 5,
        "rows_duplicate": 2,
        "started_at": s(4),
        "ended_at": s(6),
        "error": None,
        "reconciled": None,
        "source_file": None,
        "bytes_in": None,
    }
    assert rows["s3"]["status"] == "failed"
    assert rows["s3"]["error"] == "bad header"
    # A step seen only finishing (skipped) is inserted, starting and ending at the same time.
    assert rows["s4"]["status"] == "skipped"
    assert rows["s4"]["batch_id"] is None
    assert rows["s4"]["started_at"] == rows["s4"]["ended_at"] == s(7)


def test_running_state_before_finish(store: MetadataStore, bus: EventBus) -> None:
    bus.emit(RunStarted(run_id="r", project="p", project_hash="h", command="run", selector=None))
    bus.emit(StepStarted(run_id="r", step_id="x", object="o", batch_id="b", step="load", attempt=2))
    (run,) = store.runs()
    assert (run.status, run.ended_at, run.duration_s, run.steps) == ("running", None, None, 1)
    (st,) = store.steps("r")
    assert (st.status, st.attempt, st.ended_at, st.rows_in) == ("running", 2, None, 0)
    assert store.object_status(["o"])["o"].last_status == "running"


def test_runs_totals_and_order(store: MetadataStore, bus: EventBus) -> None:
    first_run(bus)
    second_run(bus)
    runs = store.runs()
    assert [r.run_id for r in runs] == ["run2", "run1"]
    r1 = runs[1]
    assert (r1.command, r1.selector, r1.status, r1.error) == (
        "run",
        "group:sales",
        "failed",
        "1 step failed",
    )
    assert (r1.started_at, r1.ended_at, r1.duration_s) == (T0, s(10), 10.0)
    assert (r1.steps, r1.failed_steps) == (4, 1)
    assert (r1.rows_in, r1.rows_loaded, r1.rows_quarantined, r1.rows_duplicate) == (210, 95, 5, 2)
    r2 = runs[0]
    assert (r2.steps, r2.failed_steps, r2.rows_in, r2.rows_loaded, r2.rows_quarantined) == (
        4,
        1,
        24,
        9,
        5,
    )
    assert [r.run_id for r in store.runs(limit=1)] == ["run2"]
    assert store.last_run_id() == "run2"
    json.dumps(to_jsonable(runs))


def test_steps_in_start_order(store: MetadataStore, bus: EventBus) -> None:
    first_run(bus)
    got = store.steps("run1")
    assert [x.step_id for x in got] == ["s1", "s2", "s3", "s4"]
    assert [x.duration_s for x in got] == [2.0, 2.0, 1.5, 0.0]
    assert store.steps("nope") == []


def test_logs_and_fields_round_trip(store: MetadataStore, bus: EventBus) -> None:
    first_run(bus)
    got = store.logs("run1")
    assert [(x.level, x.message) for x in got] == [
        ("info", "staged"),
        ("warning", "5 rows quarantined"),
        ("error", "customers failed"),
    ]
    assert got[0].fields == {
        "n": 100,
        "tags": ["a", "b"],
        "nested": {"x": 1.5, "ok": True},
        "none": None,
    }
    assert (got[0].object, got[0].batch_id, got[0].at) == ("orders", "b1", s(3))
    assert got[1].fields == {"rows": 5}
    assert got[2].fields == {}
    assert [x.level for x in store.logs("run1", level="warning")] == ["warning", "error"]
    assert [x.level for x in store.logs("run1", level="error")] == ["error"]
    assert store.logs("other") == []
    with pytest.raises(UsageError):
        store.logs("run1", level="loud")
    json.dumps(to_jsonable(got))


def test_object_status(store: MetadataStore, bus: EventBus) -> None:
    first_run(bus)
    st = store.object_status(["orders", "customers", "never"])
    assert st["orders"] == ObjectStatus(
        object="orders",
        last_run_id="run1",
        last_status="warning",
        last_run_at=s(4),
        last_batch_at=s(6),
        batches_loaded=1,
        rows_quarantined_total=5,
    )
    assert st["customers"] == ObjectStatus(
        object="customers",
        last_run_id="run1",
        last_status="failed",
        last_run_at=s(7),
    )
    assert st["never"] == ObjectStatus(object="never")
    second_run(bus)
    st = store.object_status(["orders", "customers"])
    # run2: orders has success + success + failed steps -> failed; the failed load is not a batch.
    assert st["orders"] == ObjectStatus(
        object="orders",
        last_run_id="run2",
        last_status="failed",
        last_run_at=s(3607),
        last_batch_at=s(3605),
        batches_loaded=2,
        rows_quarantined_total=6,
    )
    # a skipped step did its job (nothing to do): the object's outcome in run2 is success
    assert (st["customers"].last_run_id, st["customers"].last_status) == ("run2", "success")
    assert list(store.object_status([])) == []


def test_worst_status_ranking(store: MetadataStore, bus: EventBus) -> None:
    bus.emit(
        RunStarted(run_id="r", project="p", project_hash="h", command="run", selector=None, at=T0)
    )
    cases = {
        "a": ["skipped", "success"],
        "b": ["success", "warning", "skipped"],
        "c": ["warning", "failed", "success"],
        "d": ["skipped"],
        "e": ["failed", "abandoned", "success"],
        "f": ["running", "warning"],
    }
    for obj, statuses in cases.items():
        for i, status in enumerate(statuses):
            step(bus, "r", f"{obj}{i}", obj, "load", i, i + 0.5, status=status)
    got = {k: v.last_status for k, v in store.object_status(list(cases)).items()}
    assert got == {
        "a": "success",
        "b": "warning",
        "c": "failed",
        "d": "success",
        "e": "abandoned",
        "f": "running",
    }


def snapshot(project_hash: str) -> CatalogSnapshot:
    return CatalogSnapshot(
        project="demo",
        project_hash=project_hash,
        sources=(
            SourceRow("files", "csv", "data-team", "CSV drops"),
            SourceRow("api", "http", None, None),
        ),
        objects=(
            ObjectRow(
                "orders",
                "files",
                "sales",
                "append",
                ("order_id", "line"),
                "ts",
                "quarantine",
                "raw.orders",
                "Orders",
                "sales-team",
            ),
            ObjectRow(
                "customers",
                "api",
                "crm",
                "merge",
                ("id",),
                None,
                "fail",
                "raw.customers",
                None,
                None,
            ),
        ),
        attributes=(
            AttributeRow("orders", "order_id", 1, "int64", True, "id"),
            AttributeRow("orders", "line", 2, "int32", True, None),
            AttributeRow("customers", "id", 1, "string", False, None),
        ),
        groups=("sales", "crm"),
    )


def test_record_catalog_versions(store: MetadataStore) -> None:
    tables = [
        "project_versions",
        "catalog_sources",
        "catalog_objects",
        "catalog_attributes",
        "catalog_groups",
    ]
    assert store.record_catalog(snapshot("h1")) is True
    assert [count(store, t) for t in tables] == [1, 2, 2, 3, 2]
    assert store.record_catalog(snapshot("h1")) is False
    assert [count(store, t) for t in tables] == [1, 2, 2, 3, 2]
    assert store.record_catalog(snapshot("h2")) is True
    assert [count(store, t) for t in tables] == [2, 4, 4, 6, 4]
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT key, load_mode, group_name, table_name FROM catalog_objects "
                "WHERE project_hash = 'h2' AND name = 'orders'"
            )
        ).one()
        first_seen = conn.execute(sa.text("SELECT first_seen FROM project_versions")).all()
    key = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    assert (key, row[1], row[2], row[3]) == (["order_id", "line"], "append", "sales", "raw.orders")
    assert len(first_seen) == 2


def test_prune(store: MetadataStore, bus: EventBus) -> None:
    now = T0 + timedelta(days=40)
    first_run(bus)  # ended T0 + 10s: 40 days old
    bus.emit(
        RunStarted(
            run_id="abandoned",
            project="p",
            project_hash="h",
            command="run",
            selector=None,
            at=s(20),
        )
    )
    step(bus, "abandoned", "a1", "orders", "stage", 21, 22, status="success")
    bus.emit(LogRecord(run_id="orphan", level="info", message="old", at=s(30)))
    recent = now - timedelta(days=1)
    bus.emit(
        RunStarted(
            run_id="new", project="p", project_hash="h", command="run", selector=None, at=recent
        )
    )
    bus.emit(
        StepStarted(
            run_id="new", step_id="n1", object="orders", batch_id=None, step="stage", at=recent
        )
    )
    bus.emit(LogRecord(run_id="new", level="info", message="fresh", at=recent))
    bus.emit(RunFinished(run_id="new", status="success", at=recent + timedelta(minutes=1)))
    # Old log written by a recent run: pruned by age.
    bus.emit(LogRecord(run_id="new", level="info", message="clock skew", at=s(40)))
    # each project's records by its own retention: p's abandoned run and the old logs of p's
    # run and of a run the store does not know; then project demo's old run
    assert prune(store, 30, now=now) == {"job_runs": 1, "step_runs": 1, "logs": 2}
    assert [r.run_id for r in store.runs()] == ["new", "run1"]
    assert prune(store, 30, now=now, project="demo") == {"job_runs": 1, "step_runs": 4, "logs": 3}
    assert [r.run_id for r in store.runs()] == ["new"]
    assert [x.step_id for x in store.steps("new")] == ["n1"]
    assert [x.message for x in store.logs("new")] == ["fresh"]
    assert (count(store, "job_runs"), count(store, "step_runs"), count(store, "logs")) == (1, 1, 1)
    assert prune(store, 30, now=now) == {"job_runs": 0, "step_runs": 0, "logs": 0}
    assert prune(store, 1, now=now + timedelta(days=2)) == {
        "job_runs": 1,
        "step_runs": 1,
        "logs": 1,
    }


def prune(store: MetadataStore, days: int, *, now: datetime, project: str = "p") -> dict[str, int]:
    """Collect a project's records older than `days` (every kind); rows of the run tables."""
    periods = {kind: timedelta(days=days) for kind in RETENTION_KINDS}
    rows = collect(store, periods, project=project, now=now).rows
    return {t: rows[t] for t in ("job_runs", "step_runs", "logs")}


@pytest.mark.usefixtures("no_secrets")
def test_secrets_never_stored(store: MetadataStore, bus: EventBus) -> None:
    secret = "pa55-w0rd-XYZ"
    register_secret(secret)
    bus.emit(
        RunStarted(
            run_id="r", project="p", project_hash="h", command="run", selector=f"tag:{secret}"
        )
    )
    bus.emit(
        StepFinished(
            run_id="r",
            step_id="x",
            object="o",
            batch_id=None,
            step="load",
            status="failed",
            error=f"auth failed for {secret}",
        )
    )
    # Straight into the store, bypassing the bus's own redaction.
    store.handle(
        LogRecord(
            run_id="r",
            level="error",
            message=f"dsn=pg://u:{secret}@h",
            fields={"pw": secret, "list": [f"x{secret}"], "n": {"k": secret}},
        )
    )
    bus.log("r", "info", f"again {secret}", token=secret)
    bus.emit(RunFinished(run_id="r", status="failed", error=f"{secret} rejected"))
    with store.engine.connect() as conn:
        dump = [repr(list(conn.execute(sa.select(t)))) for t in (job_runs, step_runs, logs)]
    assert all(secret not in d for d in dump)
    assert "***" in dump[0] and "***" in dump[1] and "***" in dump[2]
    assert store.logs("r")[0].fields == {"pw": "***", "list": ["x***"], "n": {"k": "***"}}
    assert store.runs()[0].error == "*** rejected"


def test_timestamps_are_utc(store: MetadataStore, bus: EventBus) -> None:
    plus5 = timezone(timedelta(hours=5))
    local = datetime(2024, 5, 1, 17, 0, 0, 123456, tzinfo=plus5)
    bus.emit(
        RunStarted(
            run_id="r", project="p", project_hash="h", command="run", selector=None, at=local
        )
    )
    step(bus, "r", "x", "o", "load", 1, 2, status="success", batch_id="b")
    bus.log("r", "info", "hi")
    (run,) = store.runs()
    values = [
        run.started_at,
        store.steps("r")[0].started_at,
        store.steps("r")[0].ended_at,
        store.logs("r")[0].at,
        store.object_status(["o"])["o"].last_batch_at,
    ]
    for v in values:
        assert v is not None
        assert v.tzinfo is not None
        assert v.utcoffset() == timedelta(0)
    assert run.started_at == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    assert run.started_at.isoformat() == "2024-05-01T12:00:00.123456+00:00"


def test_integrity_errors(store: MetadataStore, bus: EventBus) -> None:
    with pytest.raises(MetadataStoreError, match="never started"):
        bus.emit(RunFinished(run_id="ghost", status="success"))
    with pytest.raises(MetadataStoreError):
        bus.emit(StepStarted(run_id="ghost", step_id="x", object="o", batch_id=None, step="load"))
    bus.emit(RunStarted(run_id="r", project="p", project_hash="h", command="run", selector=None))
    with pytest.raises(MetadataStoreError):
        bus.emit(
            RunStarted(run_id="r", project="p", project_hash="h", command="run", selector=None)
        )
    assert count(store, "job_runs") == 1
    assert count(store, "step_runs") == 0


def test_create_is_idempotent(store_url: str) -> None:
    with MetadataStore(store_url) as a:
        a.handle(
            RunStarted(run_id="r", project="p", project_hash="h", command="run", selector=None)
        )
        a.create()
    with MetadataStore(store_url) as b:
        assert b.last_run_id() == "r"


def test_empty_store(store: MetadataStore) -> None:
    assert store.runs() == []
    assert store.last_run_id() is None
    assert store.object_status(["a"]) == {"a": ObjectStatus(object="a")}


def test_sqlite_pragmas_and_directory(tmp_path: Any) -> None:
    path = tmp_path / "a" / "b" / "metadata.db"
    with MetadataStore(f"sqlite:///{path}") as store, store.engine.connect() as conn:
        assert path.parent.is_dir()
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    assert path.is_file()


def test_engine_url_mapping() -> None:
    assert engine_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert engine_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert engine_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert engine_url("sqlite:////tmp/x.db").drivername == "sqlite"
    with pytest.raises(UsageError):
        engine_url("not a url")


def test_unreachable_server_is_transient() -> None:
    with pytest.raises(MetadataStoreUnavailable) as info:
        MetadataStore("postgresql://someone:topsecretpw@127.0.0.1:1/nothing")
    assert isinstance(info.value, TransientError)
    assert "topsecretpw" not in str(info.value.to_dict())


@pytest.mark.services
def test_postgres_uses_default_schema(pg_url: str) -> None:
    with MetadataStore(pg_url) as store, store.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names(schema="public"))
    assert {
        "project_versions",
        "catalog_sources",
        "catalog_objects",
        "catalog_attributes",
        "catalog_groups",
        "job_runs",
        "step_runs",
        "logs",
    } <= names


def test_an_older_store_gets_the_columns_and_indexes_added_since(tmp_path: Path) -> None:
    """Columns added for issue 11 (job_runs.pid/host, step_runs.source_file/bytes_in,
    logs.step_id) and status's index come back when an older store is opened."""
    db = tmp_path / "old.db"
    MetadataStore(f"sqlite:///{db}").close()
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX ix_step_runs_object_step_status")
    for table, column in (
        ("job_runs", "pid"),
        ("job_runs", "host"),
        ("step_runs", "source_file"),
        ("step_runs", "bytes_in"),
        ("logs", "step_id"),
    ):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.commit()
    conn.close()
    with MetadataStore(f"sqlite:///{db}") as store:
        bus = EventBus()
        bus.subscribe(store.handle)
        bus.emit(
            RunStarted(
                run_id="r", project="p", project_hash="h", command="run", selector=None, pid=7
            )
        )
        bus.emit(LogRecord(run_id="r", level="info", message="m", step_id="s"))
        assert [row.step_id for row in store.logs("r")] == ["s"]
    conn = sqlite3.connect(db)
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(step_runs)")}
    assert "ix_step_runs_object_step_status" in indexes
    assert conn.execute("SELECT pid FROM job_runs").fetchall() == [(7,)]
    conn.close()


def test_log_fields_are_the_redacted_jsonable_fields() -> None:
    """The store's fast path for log fields gives what to_jsonable(redact_value(...)) gives."""
    from datetime import date
    from decimal import Decimal
    from pathlib import PurePosixPath

    from penstock.observe.jsonable import to_jsonable
    from penstock.observe.redaction import redact_value
    from penstock.observe.step_rows import log_fields
    from penstock.secrets import clear_secrets, register_secret

    class Text(str):
        pass

    values: list[Any] = [
        {"rows": 3, "ratio": 0.5, "ok": True, "none": None, "event": "staged"},
        {"reasons": {"min:amount": 2, "required:id": 0}, 7: "int key", 1.5: ("a", 1)},
        {"when": datetime(2026, 1, 2, tzinfo=UTC), "day": date(2026, 1, 2), "n": Decimal("2")},
        {"path": PurePosixPath("/a/b"), "items": ["x-secret-x", {"k": "secret!"}], "s": {2, 1}},
        {"nested": {"deeper": {"token": "my secret value"}}, "sub": Text("secret")},
        {},
    ]
    try:
        for secret in (None, "secret"):
            if secret:
                register_secret(secret)
            for value in values:
                expected = to_jsonable(redact_value(dict(value)))
                assert log_fields(value) == expected
                assert json.dumps(log_fields(value)) == json.dumps(expected)
    finally:
        clear_secrets()
