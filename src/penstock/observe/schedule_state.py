"""The scheduler's memory in the metadata store: per object, the last schedule tick dealt with.

One row per project and object (`schedule_state`, observe/schema.py): the tick (UTC), the run
it started (none when `catchup: none` skipped it) and that run's status. After downtime the
scheduler compares the ticks since with each object's `catchup:` (engine/schedule.py).
Only the active scheduler (it holds the `scheduler` lease) writes these rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from penstock.observe.schema import schedule_state


@dataclass(frozen=True)
class TickState:
    object: str
    last_tick: datetime
    last_run_id: str | None
    last_status: str
    updated_at: datetime


class ScheduleState:
    """The schedule state of one project's objects."""

    def __init__(self, engine: sa.Engine, project: str) -> None:
        self.engine = engine
        self.project = project

    def read(self) -> dict[str, TickState]:
        c = schedule_state.c
        query = sa.select(schedule_state).where(c.project == self.project)
        with self.engine.connect() as conn:
            return {
                r.object: TickState(
                    r.object, r.last_tick, r.last_run_id, r.last_status, r.updated_at
                )
                for r in conn.execute(query)
            }

    def record(
        self,
        objects: Iterable[str],
        tick: datetime,
        *,
        run_id: str | None,
        status: str,
        now: datetime,
    ) -> None:
        """`objects` dealt with `tick` (never moves an object's tick backwards)."""
        c = schedule_state.c
        values = {
            "last_tick": tick,
            "last_run_id": run_id,
            "last_status": status,
            "updated_at": now,
        }
        for name in objects:
            with self.engine.begin() as conn:
                done = conn.execute(
                    schedule_state.update()
                    .where(c.project == self.project, c.object == name, c.last_tick <= tick)
                    .values(**values)
                )
                if done.rowcount:
                    continue
                exists = conn.execute(
                    sa.select(c.object).where(c.project == self.project, c.object == name)
                ).first()
            if exists is None:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(
                            schedule_state.insert().values(
                                project=self.project, object=name, **values
                            )
                        )
                except IntegrityError:  # recorded meanwhile: the newer tick wins
                    self.record([name], tick, run_id=run_id, status=status, now=now)
