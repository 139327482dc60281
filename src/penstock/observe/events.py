"""The typed events pipeline steps emit on the bus.

Every event carries the `run_id` it belongs to and `at`, a timezone-aware UTC timestamp
(naive timestamps are refused, aware ones are converted to UTC).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

RunStatus = Literal["success", "failed"]
StepStatus = Literal["success", "warning", "failed", "skipped"]
LogLevel = Literal["debug", "info", "warning", "error"]

LOG_LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error")

OBJECT_STEP = "object"
"""The step that records one object's work in a run: started when the run takes the object
up, finished with the object's outcome (`failed` if one of its steps failed, `warning` if rows
broke its contract, else `success`). It carries no row counts (its batch steps do), and it is
what tells `penstock status` that a run with nothing new to do still processed the object."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh run or step id (uuid4 hex)."""
    return uuid.uuid4().hex


def _check_at(event: _Base) -> None:
    if event.at.tzinfo is None or event.at.utcoffset() is None:
        raise ValueError(f"{type(event).__name__}.at must be timezone-aware, got {event.at!r}")
    if event.at.tzinfo is not UTC:
        object.__setattr__(event, "at", event.at.astimezone(UTC))


@dataclass(frozen=True, kw_only=True, slots=True)
class _Base:
    run_id: str
    at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        _check_at(self)


@dataclass(frozen=True, kw_only=True, slots=True)
class RunStarted(_Base):
    project: str
    project_hash: str
    command: str
    selector: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class RunFinished(_Base):
    status: RunStatus
    error: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StepStarted(_Base):
    step_id: str
    object: str
    batch_id: str | None
    step: str
    attempt: int = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class StepFinished(_Base):
    step_id: str
    object: str
    batch_id: str | None
    step: str
    status: StepStatus
    attempt: int = 1
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    error: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LogRecord(_Base):
    level: LogLevel
    message: str
    object: str | None = None
    batch_id: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class ObjectCounted(_Base):
    """An object's counts in the warehouse when its work in a run ended: rows in its table
    (None: no table yet), batches in the ledger, quarantine rows held back and loaded anyway,
    and its landing files rejected as unreadable (in the lake). The metadata store keeps the
    latest per project and object; `penstock status` shows them without opening the
    warehouse."""

    project: str
    object: str
    table: str
    rows: int | None
    batches_loaded: int
    rows_quarantined: int
    rows_warned: int
    batches_rejected: int = 0


Event: TypeAlias = RunStarted | RunFinished | StepStarted | StepFinished | LogRecord | ObjectCounted
