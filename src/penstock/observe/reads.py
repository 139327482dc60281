"""Read queries of the metadata store, on an open connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from penstock.observe.events import LOG_LEVELS, OBJECT_STEP
from penstock.observe.records import (
    LogRow,
    ObjectStatus,
    RunSummary,
    StepRow,
    duration,
)
from penstock.observe.schema import job_runs, logs, step_runs

# The outcome of an object in its last run is the worst status among its steps there. A
# skipped step (a file already staged, a batch already loaded) did its job: it reads success.
_SEVERITY = {"abandoned": 5, "failed": 4, "running": 3, "warning": 2, "success": 1}
_AS_OUTCOME = {"skipped": "success"}
_LOADED = ("success", "warning")
_CHUNK = 500


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def runs(conn: sa.Connection, limit: int) -> list[RunSummary]:
    s = step_runs.c
    # an object step records an object's work, not a step of its own: not counted
    real = s.step != OBJECT_STEP
    totals = (
        sa.select(
            s.run_id,
            sa.func.sum(sa.case((real, 1), else_=0)).label("steps"),
            sa.func.sum(sa.case((sa.and_(real, s.status == "failed"), 1), else_=0)).label(
                "failed_steps"
            ),
            sa.func.sum(s.rows_in).label("rows_in"),
            sa.func.sum(s.rows_loaded).label("rows_loaded"),
            sa.func.sum(s.rows_quarantined).label("rows_quarantined"),
            sa.func.sum(s.rows_duplicate).label("rows_duplicate"),
        )
        .group_by(s.run_id)
        .subquery()
    )
    r = job_runs.c
    query = (
        sa.select(job_runs, totals)
        .select_from(job_runs.outerjoin(totals, totals.c.run_id == r.run_id))
        .order_by(r.started_at.desc(), r.run_id.desc())
        .limit(limit)
    )
    out: list[RunSummary] = []
    for row in conn.execute(query).mappings():
        out.append(
            RunSummary(
                run_id=row[r.run_id],
                command=row[r.command],
                selector=row[r.selector],
                status=row[r.status],
                started_at=row[r.started_at],
                ended_at=row[r.ended_at],
                duration_s=duration(row[r.started_at], row[r.ended_at]),
                error=row[r.error],
                steps=_int(row[totals.c.steps]),
                failed_steps=_int(row[totals.c.failed_steps]),
                rows_in=_int(row[totals.c.rows_in]),
                rows_loaded=_int(row[totals.c.rows_loaded]),
                rows_quarantined=_int(row[totals.c.rows_quarantined]),
                rows_duplicate=_int(row[totals.c.rows_duplicate]),
            )
        )
    return out


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
        )
        for row in conn.execute(query)
    ]


def object_status(conn: sa.Connection, objects: Sequence[str]) -> dict[str, ObjectStatus]:
    wanted = list(dict.fromkeys(objects))
    found: dict[str, dict[str, Any]] = {name: {} for name in wanted}
    for i in range(0, len(wanted), _CHUNK):
        _object_status_chunk(conn, wanted[i : i + _CHUNK], found)
    return {name: ObjectStatus(object=name, **found[name]) for name in wanted}


def _object_status_chunk(
    conn: sa.Connection, chunk: list[str], found: dict[str, dict[str, Any]]
) -> None:
    s = step_runs.c
    latest = (
        sa.select(s.object, sa.func.max(s.started_at).label("started_at"))
        .where(s.object.in_(chunk))
        .group_by(s.object)
        .subquery()
    )
    last_steps = sa.select(s.object, s.run_id, s.started_at).join(
        latest, sa.and_(latest.c.object == s.object, latest.c.started_at == s.started_at)
    )
    last_run: dict[str, str] = {}
    for row in conn.execute(last_steps.order_by(s.object, s.step_id)):
        last_run[row.object] = row.run_id
        found[row.object].update(last_run_id=row.run_id, last_run_at=row.started_at)
    if last_run:
        statuses = sa.select(s.object, s.run_id, s.status).where(
            s.object.in_(list(last_run)), s.run_id.in_(set(last_run.values()))
        )
        worst: dict[str, str] = {}
        for row in conn.execute(statuses):
            if last_run.get(row.object) != row.run_id:
                continue
            status = _AS_OUTCOME.get(row.status, row.status)
            current = worst.get(row.object)
            if current is None or _SEVERITY.get(status, 6) > _SEVERITY.get(current, 6):
                worst[row.object] = status
        for name, status in worst.items():
            found[name]["last_status"] = status
    loads = (
        sa.select(
            s.object,
            sa.func.max(s.ended_at).label("last_batch_at"),
            sa.func.count(s.batch_id).label("batches_loaded"),
            sa.func.sum(s.rows_quarantined).label("rows_quarantined_total"),
        )
        .where(s.object.in_(chunk), s.step == "load", s.status.in_(_LOADED))
        .group_by(s.object)
    )
    for row in conn.execute(loads):
        found[row.object].update(
            last_batch_at=row.last_batch_at,
            batches_loaded=_int(row.batches_loaded),
            rows_quarantined_total=_int(row.rows_quarantined_total),
        )
