"""Reconciling the store with the warehouse ledger: a load the store missed (a sink failure)
is recorded from its ledger row, marked `reconciled`."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from penstock.observe.events import new_id
from penstock.observe.records import LedgerLoad
from penstock.observe.schema import job_runs, step_runs


def record_reconciled(
    conn: sa.Connection, project: str, project_hash: str, entry: LedgerLoad
) -> None:
    """Record one load the store missed, from its ledger row: its run (as `reconciled`, if the
    store missed that too), and its load step, correcting a step of that run still shown as
    running or failed instead of adding a second one."""
    s, r = step_runs.c, job_runs.c
    run_id = entry.run_id or f"reconciled-{entry.batch_id}"[:64]
    if conn.execute(sa.select(r.run_id).where(r.run_id == run_id)).first() is None:
        conn.execute(
            job_runs.insert().values(
                run_id=run_id,
                project=project,
                project_hash=project_hash,
                command="run",
                status="reconciled",
                started_at=entry.loaded_at,
                ended_at=entry.loaded_at,
                error="the metadata store missed this run; recorded from the warehouse ledger",
            )
        )
    values: dict[str, Any] = {
        "status": "warning" if entry.rows_quarantined else "success",
        "rows_in": entry.rows_in,
        "rows_loaded": entry.rows_loaded,
        "rows_quarantined": entry.rows_quarantined,
        "rows_duplicate": entry.rows_duplicate,
        "ended_at": entry.loaded_at,
        "error": None,
        "reconciled": True,
    }
    updated = conn.execute(
        step_runs.update()
        .where(s.run_id == run_id, s.batch_id == entry.batch_id, s.step == "load")
        .values(**values)
    ).rowcount
    if not updated:
        conn.execute(
            step_runs.insert().values(
                step_id=new_id(),
                run_id=run_id,
                object=entry.object,
                batch_id=entry.batch_id,
                step="load",
                attempt=1,
                started_at=entry.loaded_at,
                **values,
            )
        )
