"""penstock: metadata-driven DataOps pipelines, declared in YAML, validated, idempotent.

import penstock
result = penstock.run("path/to/project")
"""

from __future__ import annotations

from pathlib import Path

from penstock.catalog import ObjectSpec, Project, load_project
from penstock.engine import BatchOutcome, ObjectSummary, RunResult, Session
from penstock.engine.session import DEFAULT_WAIT_SECONDS
from penstock.errors import (
    ContractViolation,
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

__version__ = "0.1.0"


def run(
    project: str | Path | Project = ".",
    select: str | None = None,
    *,
    wait: float = DEFAULT_WAIT_SECONDS,
) -> RunResult:
    """Run a project (or the selected objects of it) once; return what it did.

    While another process holds the warehouse, wait up to `wait` seconds for it."""
    proj = project if isinstance(project, Project) else load_project(project)
    with Session(proj, wait=wait) as session:
        return session.runner.run(select)


def rebuild(
    project: str | Path | Project = ".",
    select: str | None = None,
    *,
    wait: float = DEFAULT_WAIT_SECONDS,
) -> RunResult:
    """Replay the stage zone into emptied object tables."""
    proj = project if isinstance(project, Project) else load_project(project)
    with Session(proj, wait=wait) as session:
        return session.runner.rebuild(select)


__all__ = [
    "BatchOutcome",
    "ContractViolation",
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
    "load_project",
    "rebuild",
    "run",
]
