"""Retention: the metadata store stays bounded. `penstock gc`, and every run when it ends (at
most once an hour), delete what is older than the project's `retention:`
(catalog/observability.py).

What each kind covers (all scoped to the project; a store may hold several):

- `runs`: runs that ended before the cutoff (or never ended and started before it: killed;
  a retention is at least a day, longer than a run), with their step_runs and logs; catalog
  versions first seen before the cutoff that no remaining run uses (never the current one);
  object_counts of objects no longer in the project, counted before the cutoff.
- `logs`: log records written before the cutoff (of the project's runs, and of runs the store
  does not know).
- `runs` also drops leases that expired before the cutoff (their holder died without releasing
  them) and the schedule state of objects no longer in the project: both tables hold one row
  per lease or object.
- `batch_decisions`: the skip/unskip audit rows decided before the cutoff (the skip marker in
  the lake, which runs honour, stays).
- `metrics`, `dq_results`, `lineage`: the tables their sinks register here (`register`).

A sink that keeps its own table registers a planner for its kind: `register("metrics",
planner)`, where `planner(ctx)` returns the `Prune` steps (table and condition) that delete
its old rows, built from `ctx.cutoff(kind)`, `ctx.project` and `ctx.old_runs` (a select of the
run ids the `runs` kind deletes, for rows that hang off runs). Conditions are evaluated before
anything is deleted, so `--dry-run` counts exactly what a real collection deletes; a real one
deletes in plan order in one transaction.

A run collects when it ends, but at most once every `COLLECT_EVERY` per project
(`collection_due`): a collection compiles and runs some twenty DELETEs, ~0.02 s of a run in a
fresh process, while a retention is at least a day, so a record outlives its period by an hour
at most. A collection records when it ran and under which periods (`retention_state`); a
changed `retention:` collects at the next run. `penstock gc` always collects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from penstock.observe.events import utcnow
from penstock.observe.schema import (
    batch_decisions,
    catalog_attributes,
    catalog_groups,
    catalog_objects,
    catalog_sources,
    job_runs,
    leases,
    logs,
    object_counts,
    project_versions,
    retention_state,
    schedule_state,
    step_runs,
)

if TYPE_CHECKING:
    from penstock.observe.store import MetadataStore

RETENTION_KINDS = ("runs", "logs", "metrics", "dq_results", "lineage", "batch_decisions")
COLLECT_EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class Prune:
    """Delete the rows of `table` where `condition` holds (a step of a collection)."""

    kind: str
    table: sa.Table
    condition: sa.ColumnElement[bool]


@dataclass(frozen=True)
class PruneContext:
    project: str
    periods: Mapping[str, timedelta]
    now: datetime
    project_hash: str | None = None  # the current catalog version: never deleted
    objects: tuple[str, ...] | None = None  # the project's objects (None: unknown)

    def cutoff(self, kind: str) -> datetime:
        return self.now - self.periods[kind]

    @property
    def old_runs(self) -> sa.Select[tuple[str]]:
        """The project's runs the `runs` kind deletes."""
        r, cutoff = job_runs.c, self.cutoff("runs")
        ended = sa.or_(r.ended_at < cutoff, sa.and_(r.ended_at.is_(None), r.started_at < cutoff))
        return sa.select(r.run_id).where(r.project == self.project, ended)


Planner = Callable[[PruneContext], Sequence[Prune]]


@dataclass
class GcReport:
    """What a collection deleted (or, `dry_run`, would delete): rows per table, and the
    cutoff of each kind."""

    project: str
    dry_run: bool
    now: datetime
    periods: dict[str, timedelta]
    cutoffs: dict[str, datetime]
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _runs(ctx: PruneContext) -> list[Prune]:
    old = ctx.old_runs
    steps = [
        Prune("runs", step_runs, step_runs.c.run_id.in_(old)),
        Prune("runs", logs, logs.c.run_id.in_(old)),
    ]
    # catalog versions: old, not the current one, and no run that stays uses them
    v, r = project_versions.c, job_runs.c
    staying = sa.select(r.project_hash).where(r.project == ctx.project, r.run_id.not_in(old))
    version = sa.and_(
        v.project == ctx.project, v.first_seen < ctx.cutoff("runs"), v.project_hash.not_in(staying)
    )
    if ctx.project_hash is not None:
        version = sa.and_(version, v.project_hash != ctx.project_hash)
    versions = sa.select(v.project_hash).where(version)
    for table in (catalog_attributes, catalog_objects, catalog_sources, catalog_groups):
        steps.append(Prune("runs", table, table.c.project_hash.in_(versions)))
    steps.append(Prune("runs", project_versions, version))
    if ctx.objects is not None:
        c = object_counts.c
        steps.append(
            Prune(
                "runs",
                object_counts,
                sa.and_(
                    c.project == ctx.project,
                    c.object.not_in(ctx.objects) if ctx.objects else sa.true(),
                    c.counted_at < ctx.cutoff("runs"),
                ),
            )
        )
    steps.append(Prune("runs", job_runs, job_runs.c.run_id.in_(old)))
    return steps


def _orchestration(ctx: PruneContext) -> list[Prune]:
    """Leases and schedule state hold one row per lease and per object already: drop the
    leases that expired before the cutoff (a holder that died without releasing them) and
    the schedule state of objects no longer in the project."""
    lease, state = leases.c, schedule_state.c
    steps = [
        Prune(
            "runs",
            leases,
            sa.and_(lease.project == ctx.project, lease.expires_at < ctx.cutoff("runs")),
        )
    ]
    if ctx.objects is not None:
        gone = state.object.not_in(ctx.objects) if ctx.objects else sa.true()
        steps.append(Prune("runs", schedule_state, sa.and_(state.project == ctx.project, gone)))
    return steps


def _logs(ctx: PruneContext) -> list[Prune]:
    c, r = logs.c, job_runs.c
    mine = sa.select(r.run_id).where(r.project == ctx.project)
    known = sa.select(r.run_id)
    return [
        Prune(
            "logs",
            logs,
            sa.and_(
                c.at < ctx.cutoff("logs"),
                sa.or_(c.run_id.in_(mine), c.run_id.not_in(known)),
                c.run_id.not_in(ctx.old_runs),  # counted with their runs
            ),
        )
    ]


def _batch_decisions(ctx: PruneContext) -> list[Prune]:
    d = batch_decisions.c
    cutoff = ctx.cutoff("batch_decisions")
    return [
        Prune(
            "batch_decisions",
            batch_decisions,
            sa.and_(d.project == ctx.project, d.decided_at < cutoff),
        )
    ]


# The `logs` kind runs first: its condition leaves out the logs of old runs, which the `runs`
# kind deletes with them (conditions are all evaluated on the store as it was).
PLANNERS: dict[str, list[Planner]] = {
    "logs": [_logs],
    "batch_decisions": [_batch_decisions],
    "metrics": [],
    "dq_results": [],
    "lineage": [],
    "runs": [_runs, _orchestration],
}


def register(kind: str, planner: Planner) -> None:
    """Add a sink's table to a retention kind (see the module docstring)."""
    if kind not in PLANNERS:
        raise ValueError(f"unknown retention kind {kind!r}; expected one of {RETENTION_KINDS}")
    if planner not in PLANNERS[kind]:
        PLANNERS[kind].append(planner)


def collect(
    store: MetadataStore,
    periods: Mapping[str, timedelta],
    *,
    project: str,
    project_hash: str | None = None,
    objects: Sequence[str] | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
) -> GcReport:
    """Delete (or, `dry_run`, count) the project's records older than their kind's period."""
    from penstock.observe.sinks import import_sinks

    import_sinks()  # the sinks' own tables join their kinds when their modules load
    missing = [kind for kind in RETENTION_KINDS if kind not in periods]
    if missing:
        raise ValueError(f"no retention period for {', '.join(missing)}")
    ctx = PruneContext(
        project=project,
        periods=dict(periods),
        now=now or utcnow(),
        project_hash=project_hash,
        objects=None if objects is None else tuple(objects),
    )
    report = GcReport(
        project=project,
        dry_run=dry_run,
        now=ctx.now,
        periods={k: ctx.periods[k] for k in RETENTION_KINDS},
        cutoffs={k: ctx.cutoff(k) for k in RETENTION_KINDS},
    )
    plan = [step for planners in PLANNERS.values() for p in planners for step in p(ctx)]
    for step in plan:
        report.rows.setdefault(step.table.name, 0)
    with store.writing("collect old records") as conn:
        for step in plan:
            if dry_run:
                count = sa.select(sa.func.count()).select_from(step.table).where(step.condition)
                found = int(conn.execute(count).scalar_one())
            else:
                found = int(conn.execute(step.table.delete().where(step.condition)).rowcount)
            report.rows[step.table.name] += found
        if not dry_run:
            state = retention_state.c
            conn.execute(retention_state.delete().where(state.project == project))
            conn.execute(
                retention_state.insert().values(
                    project=project, periods=_periods_key(ctx.periods), collected_at=ctx.now
                )
            )
    return report


def collection_due(
    store: MetadataStore,
    periods: Mapping[str, timedelta],
    *,
    project: str,
    now: datetime | None = None,
) -> bool:
    """Whether a run should `collect` now: not if the project's records were collected under
    the same periods less than `COLLECT_EVERY` ago."""
    now = now or utcnow()
    state = retention_state.c
    with store.writing("read when retention last ran") as conn:
        last = conn.execute(
            sa.select(state.periods, state.collected_at).where(state.project == project)
        ).first()
    return not (
        last is not None
        and last.periods == _periods_key(periods)
        and timedelta(0) <= now - last.collected_at < COLLECT_EVERY
    )


def _periods_key(periods: Mapping[str, timedelta]) -> str:
    """The periods as exact text: microseconds per kind."""
    micro = timedelta(microseconds=1)
    return ",".join(f"{kind}={periods[kind] // micro}" for kind in RETENTION_KINDS)
