"""penstock: metadata-driven DataOps pipelines, declared in YAML, validated, idempotent.

import penstock
result = penstock.run("path/to/project")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from penstock.defaults import DEFAULT_WAIT_SECONDS
from penstock.errors import (
    ContractViolation,
    LeaseHeld,
    PenstockError,
    ProjectError,
    RunFailed,
    SourceError,
    TableMismatch,
    TerminalError,
    TransientError,
    UsageError,
    WarehouseError,
    WarehouseLocked,
)
from penstock.lazy import lazy_attributes

if TYPE_CHECKING:
    from penstock.catalog import ObjectSpec, Project, load_project
    from penstock.engine import BatchOutcome, ObjectSummary, RunResult, Session
    from penstock.engine.backfill import BackfillResult

# The engine's names load on first use (PEP 562): `import penstock` (and so the CLI, whose
# package this is) must not pay for DuckDB, pyarrow, SQLAlchemy and pydantic up front.
_LAZY = {
    "BackfillResult": "penstock.engine.backfill",
    "BatchOutcome": "penstock.engine",
    "ObjectSpec": "penstock.catalog",
    "ObjectSummary": "penstock.engine",
    "Project": "penstock.catalog",
    "RunResult": "penstock.engine",
    "Session": "penstock.engine",
    "load_project": "penstock.catalog",
}

__version__ = "0.1.0"


def run(
    project: str | Path | Project = ".",
    select: str | None = None,
    *,
    wait: float = DEFAULT_WAIT_SECONDS,
    executor: str = "local",
    workers: int | None = None,
) -> RunResult:
    """Run a project (or the selected objects of it) once; return what it did.

    While another process holds the warehouse, wait up to `wait` seconds for it. `executor`:
    `local`, `dask` (new files staged on a Dask cluster started on this machine) or a running
    cluster's scheduler address (`tcp://HOST:8786`). `workers`: objects worked on at once
    (default: the core count)."""
    from penstock.catalog import Project, load_project
    from penstock.engine import Session
    from penstock.engine.dask_executor import executor_for

    proj = project if isinstance(project, Project) else load_project(project)
    stager = executor_for(proj, executor)
    try:
        with Session(proj, wait=wait) as session:
            session.runner.stager = stager
            return session.runner.run(select, workers=workers)
    finally:
        if stager is not None:
            stager.close()


def rebuild(
    project: str | Path | Project = ".",
    select: str | None = None,
    *,
    restage: bool = False,
    wait: float = DEFAULT_WAIT_SECONDS,
    workers: int | None = None,
) -> RunResult:
    """Replay the stage zone into emptied object tables; with `restage`, first parse the
    landing files of the staged batches again with the current settings."""
    from penstock.catalog import Project, load_project
    from penstock.engine import Session

    proj = project if isinstance(project, Project) else load_project(project)
    with Session(proj, wait=wait) as session:
        return session.runner.rebuild(select, restage=restage, workers=workers)


def backfill(
    project: str | Path | Project,
    object_name: str,
    *,
    first: str | None = None,
    last: str | None = None,
    partitions: Sequence[str] = (),
    workers: int | None = None,
    force: bool = False,
    wait: float = DEFAULT_WAIT_SECONDS,
) -> BackfillResult:
    """Replace the partitions of `object_name` from `first` to `last` (both included, e.g.
    `2026-01-01`), or those named in `partitions`, each in its own transaction; partitions
    are staged and validated on `workers` threads (default: the core count)."""
    from penstock.catalog import Project, load_project
    from penstock.catalog.partitioning import parse_instant
    from penstock.engine import Session
    from penstock.engine.backfill import Backfill
    from penstock.engine.partition_plan import partition_spec, requested_starts

    proj = project if isinstance(project, Project) else load_project(project)
    obj, spec = partition_spec(proj, object_name)
    try:
        keys = [parse_instant(k) for k in partitions]
        starts = requested_starts(
            spec,
            parse_instant(first) if first else None,
            parse_instant(last) if last else None,
            keys,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with Session(proj, wait=wait, command="backfill") as session:
        return Backfill(session.runner, obj, workers=workers, force=force).run(starts)


if not TYPE_CHECKING:  # hidden from mypy, so that a misspelt `penstock.X` stays an error
    __getattr__, __dir__ = lazy_attributes("penstock", globals(), _LAZY)


__all__ = [
    "BackfillResult",
    "BatchOutcome",
    "ContractViolation",
    "LeaseHeld",
    "ObjectSpec",
    "ObjectSummary",
    "PenstockError",
    "Project",
    "ProjectError",
    "RunFailed",
    "RunResult",
    "Session",
    "SourceError",
    "TableMismatch",
    "TerminalError",
    "TransientError",
    "UsageError",
    "WarehouseError",
    "WarehouseLocked",
    "__version__",
    "backfill",
    "load_project",
    "rebuild",
    "run",
]
