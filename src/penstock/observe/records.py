"""Rows returned by the metadata store's read API (JSON-ready through `to_jsonable`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run: `status` is its outcome (`penstock.outcomes`: success, warning, running,
    failed, abandoned)."""

    run_id: str
    command: str
    selector: str | None
    status: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    error: str | None
    steps: int
    failed_steps: int
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    # recorded afterwards from the warehouse ledger (the store had missed the run)
    reconciled: bool = False


@dataclass(frozen=True, slots=True)
class StepRow:
    step_id: str
    run_id: str
    object: str
    batch_id: str | None
    step: str
    status: str
    attempt: int
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    error: str | None
    reconciled: bool = False


@dataclass(frozen=True, slots=True)
class LogRow:
    id: int
    run_id: str
    at: datetime
    level: str
    object: str | None
    batch_id: str | None
    message: str
    fields: dict[str, Any]
    step_id: str | None = None  # the step running (or just ended) when it was logged


@dataclass(frozen=True, slots=True)
class ObjectStatus:
    """Where one object stands.

    `last_status` is the object's outcome in its last run (the latest run with a step of the
    object; every run that selects an object records an `object` step for it): the worst
    status among the object's steps there (`penstock.outcomes`: abandoned > failed >
    upstream_failed > running > warning > success; a skipped step counts as success).
    `last_run_at` is when the object's latest step started. Load counts cover successful load
    steps ('success' or 'warning'); `last_batch_at` is when the latest of them ended.
    """

    object: str
    last_run_id: str | None = None
    last_status: str | None = None
    last_run_at: datetime | None = None
    last_batch_at: datetime | None = None
    batches_loaded: int = 0
    rows_quarantined_total: int = 0


@dataclass(frozen=True, slots=True)
class LedgerLoad:
    """One batch the warehouse ledger says loaded: the truth the store is reconciled with."""

    batch_id: str
    object: str
    run_id: str | None
    loaded_at: datetime
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int


@dataclass(frozen=True, slots=True)
class BatchDecision:
    """A skip or unskip of a staged batch, as `penstock batches skip` recorded it."""

    object: str
    batch_id: str
    action: str
    reason: str | None
    decided_by: str
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class BatchAttempt:
    """The latest load step of a batch the store knows: its status and error."""

    batch_id: str
    run_id: str
    status: str
    error: str | None
    at: datetime


def duration(started: datetime | None, ended: datetime | None) -> float | None:
    if started is None or ended is None:
        return None
    return (ended - started).total_seconds()
