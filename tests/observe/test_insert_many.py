"""`insert_many` stores exactly what SQLAlchemy's executemany stores (each column type's own
conversion: aware timestamps as UTC, booleans, JSON, a JSON None as 'null', NULLs), on SQLite
where it takes its own path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from penstock.observe.insert_many import insert_many
from penstock.observe.schema import dq_metrics, lineage, metadata, step_runs

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
EAST = timezone(timedelta(hours=5, minutes=30))


def _metric(n: int) -> dict[str, Any]:
    return {
        "project": "shop",
        "object": "orders",
        "batch_id": f"b{n}",
        "source_file": f"orders_{n}.csv",
        "batch_time": (AT + timedelta(minutes=n)).astimezone(EAST),  # stored as UTC
        "run_id": "r",
        "metric": "quarantine_rate",
        "value": n / 7,
        "anomalous": n % 2 == 0,
        "measured_at": AT,
    }


def _lineage(n: int) -> dict[str, Any]:
    return {
        "project": "shop",
        "run_id": "r",
        "step_id": f"s{n}",
        "object": "orders",
        "job": "orders.load",
        "step": "load",
        "status": "success",
        "direction": "output",
        "namespace": "duckdb",
        "name": "main.orders",
        "role": "table",
        "fields": [["order_id", "BIGINT"]],
        "column_lineage": None if n % 2 else {"order_id": [["file", "x", "order_id", "T"]]},
        "at": AT,
    }


# two schemas' `fields`, each one list its rows share (as the lineage recorder's rows do), and
# column lineage as tuples: each object converted once per insert, into what a fresh list is
SHARED_FIELDS = ([("order_id", "BIGINT")], [("order_id", "BIGINT"), ("amount", "DOUBLE")])


def _shared_lineage(n: int) -> dict[str, Any]:
    row = _lineage(n)
    row["fields"] = SHARED_FIELDS[n % 3 == 0]
    if row["column_lineage"] is not None:
        row["column_lineage"] = {"order_id": [("file", f"x{n}", "order_id", "T")]}
    return row


def _step(n: int) -> dict[str, Any]:
    return {
        "step_id": f"s{n}",
        "run_id": "r",
        "object": "orders",
        "batch_id": None if n % 2 else f"b{n}",
        "step": "load",
        "status": "running",
        "attempt": 1,
        "source_file": None,
        "rows_in": n,
        "rows_loaded": 0,
        "rows_quarantined": 0,
        "rows_duplicate": 0,
        "started_at": AT,
        "ended_at": None,
        "error": None,
        "bytes_in": None,
    }


@pytest.mark.parametrize(
    ("table", "row"),
    [(dq_metrics, _metric), (lineage, _lineage), (lineage, _shared_lineage), (step_runs, _step)],
)
def test_the_rows_stored_are_sqlalchemys(table: sa.Table, row: Any) -> None:
    rows = [row(n) for n in range(5)]
    stored = []
    for way in ("sqlalchemy", "insert_many"):
        engine = sa.create_engine("sqlite://")
        metadata.create_all(engine, tables=[table])
        with engine.begin() as conn:
            if way == "sqlalchemy":
                conn.execute(table.insert(), rows)
            else:
                insert_many(conn, table, rows)
        with engine.connect() as conn:
            raw = conn.exec_driver_sql(f"SELECT * FROM {table.name} ORDER BY 1").fetchall()
            typed = conn.execute(
                sa.select(table).order_by(table.c[table.primary_key.columns.keys()[0]])
            ).fetchall()
        stored.append((raw, typed))
    assert stored[0] == stored[1]
    assert len(stored[1][0]) == 5


def test_a_column_left_out_gets_its_default() -> None:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine, tables=[dq_metrics])
    rows = [_metric(1), _metric(2)]
    for row in rows:
        del row["anomalous"]  # the column's default (False) is SQLAlchemy's to add
    with engine.begin() as conn:
        insert_many(conn, dq_metrics, rows)
    with engine.connect() as conn:
        got = conn.execute(
            sa.select(dq_metrics.c.batch_id, dq_metrics.c.anomalous).order_by(dq_metrics.c.id)
        ).fetchall()
    assert [tuple(r) for r in got] == [("b1", False), ("b2", False)]


def test_update_many_changes_what_sqlalchemys_executemany_changes() -> None:
    """The store's finishes of many steps (step_rows._FINISH_MANY): the same rows stored, the
    same count of rows changed (a step the store never saw changes none)."""
    from penstock.observe.insert_many import update_many
    from penstock.observe.step_rows import _FINISH_MANY

    finishes = [
        {
            "b_step_id": f"s{n}",
            "b_batch_id": f"b{n}",
            "b_status": "success",
            "b_attempt": 1,
            "b_rows_in": n,
            "b_rows_loaded": n,
            "b_rows_quarantined": 0,
            "b_rows_duplicate": 0,
            "b_ended_at": (AT + timedelta(seconds=n)).astimezone(EAST),
            "b_error": None if n % 2 else "boom",
            "b_source_file": None if n % 3 else f"orders_{n}.csv",  # None keeps the stored
            "b_bytes_in": None if n == 4 else n * 10,
        }
        for n in range(7)  # s5 and s6 were never started
    ]
    stored = []
    for way in ("sqlalchemy", "update_many"):
        engine = sa.create_engine("sqlite://")
        metadata.create_all(engine, tables=[step_runs])
        with engine.begin() as conn:
            insert_many(
                conn, step_runs, [{**_step(n), "source_file": "kept.csv"} for n in range(5)]
            )
            if way == "sqlalchemy":
                changed = conn.execute(_FINISH_MANY, finishes).rowcount
            else:
                changed = update_many(conn, _FINISH_MANY, finishes)
        with engine.connect() as conn:
            raw = conn.exec_driver_sql("SELECT * FROM step_runs ORDER BY step_id").fetchall()
        stored.append((changed, raw))
    assert stored[0] == stored[1]
    assert stored[1][0] == 5


def test_times_are_bound_as_the_text_sqlite3_adapter_wrote() -> None:
    """UTCDateTime hands SQLite the text the driver's default adapter made of a naive UTC
    datetime (`isoformat(" ")`, microseconds only when there are some), converted once per
    value: the stored text is what it was, without the adapter Python 3.12 deprecates."""
    from sqlalchemy.dialects import sqlite

    from penstock.observe.schema import UTCDateTime

    bind = UTCDateTime().bind_processor(sqlite.dialect())
    assert bind is not None
    at = datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)
    assert bind(at) == "2026-01-02 03:04:05.120000"
    assert bind(at.replace(microsecond=0)) == "2026-01-02 03:04:05"
    plus_two = at.astimezone(timezone(timedelta(hours=2)))
    assert bind(plus_two) == "2026-01-02 03:04:05.120000"  # stored as UTC
    assert bind(None) is None
