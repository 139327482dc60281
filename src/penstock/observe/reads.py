"""Read queries of the metadata store, on an open connection (SQLAlchemy Core).

Runs and object status are read in plain SQL by observe/status_reads.py (so that `penstock
status` and `runs` need no SQLAlchemy on a SQLite store)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from penstock.observe.names import LOG_LEVELS
from penstock.observe.records import LogRow, StepRow, duration
from penstock.observe.schema import logs, step_runs


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def steps(conn: sa.Connection, run_id: str) -> list[StepRow]:
    s = step_runs.c
    query = sa.select(step_runs).where(s.run_id == run_id).order_by(s.started_at, s.step_id)
    return [
        StepRow(
            step_id=row.step_id,
            run_id=row.run_id,
            object=row.object,
            batch_id=row.batch_id,
            step=row.step,
            status=row.status,
            attempt=row.attempt,
            rows_in=_int(row.rows_in),
            rows_loaded=_int(row.rows_loaded),
            rows_quarantined=_int(row.rows_quarantined),
            rows_duplicate=_int(row.rows_duplicate),
            started_at=row.started_at,
            ended_at=row.ended_at,
            duration_s=duration(row.started_at, row.ended_at),
            error=row.error,
            reconciled=bool(row.reconciled),
        )
        for row in conn.execute(query)
    ]


def log_rows(conn: sa.Connection, run_id: str, level: str | None) -> list[LogRow]:
    c = logs.c
    query = sa.select(logs).where(c.run_id == run_id).order_by(c.id)
    if level is not None:
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r}; expected one of {LOG_LEVELS}")
        query = query.where(c.level.in_(LOG_LEVELS[LOG_LEVELS.index(level) :]))
    return [
        LogRow(
            id=int(row.id),
            run_id=row.run_id,
            at=row.at,
            level=row.level,
            object=row.object,
            batch_id=row.batch_id,
            message=row.message,
            fields=dict(row.fields or {}),
            step_id=row.step_id,
        )
        for row in conn.execute(query)
    ]
