"""`penstock batches`: an object's batches and where each stands; skip one, or undo it; retry
a rejected file.

A staged batch is `loaded` when the warehouse ledger has it, `skipped` when the lake holds a
skip marker beside it, `failed` when its last load attempt failed, else `pending`. Skipping
takes the warehouse lock (no run is loading meanwhile), writes the lake marker that run and
rebuild honour, and records the decision in the metadata store for audit.

A `rejected` batch is a landing file that cannot be read at all (lake/rejected.py): never
staged, listed after the staged batches with its reason. Retrying one removes its record, so
the next run reads the file again; the decision is recorded like a skip.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import NoReturn

from penstock.catalog import ObjectSpec, Project
from penstock.defaults import DEFAULT_WAIT_SECONDS
from penstock.engine.session import Session
from penstock.engine.status import open_for_reading
from penstock.errors import UsageError
from penstock.lake import Lake, StagedBatch
from penstock.lake.rejected import Rejection
from penstock.lake.skip import SkipMarker
from penstock.observe import BatchAttempt, BatchDecision, MetadataStore, utcnow


@dataclass(frozen=True)
class BatchState:
    """One batch. A `rejected` one was never staged: `extracted_at` is when it was read and
    rejected, `rows` and `rows_malformed` are None, `reason` says why; `read_again` when the
    object's read settings changed since (the next run reads the file again)."""

    batch_id: str
    status: str  # loaded | skipped | failed | pending | rejected
    source_file: str
    extracted_at: datetime
    rows: int | None
    rows_malformed: int | None
    error: str | None = None
    failed_run_id: str | None = None
    skip_reason: str | None = None
    skipped_by: str | None = None
    skipped_at: datetime | None = None
    reason: str | None = None
    content_hash: str | None = None
    rejected_run_id: str | None = None
    read_again: bool = False


@dataclass(frozen=True)
class ObjectBatches:
    object: str
    batches: list[BatchState]
    notes: list[str] = field(default_factory=list)


def _object(project: Project, name: str) -> ObjectSpec:
    if name not in project.objects:
        known = ", ".join(sorted(project.objects))
        raise UsageError(f"unknown object '{name}' (objects: {known})")
    return project.objects[name]


def list_batches(project: Project, object_name: str) -> ObjectBatches:
    """Every staged batch of an object, in extraction (= load) order, with its status; then
    its rejected files, oldest first."""
    from penstock.sources import source_for

    obj = _object(project, object_name)
    lake = Lake(project.lake_path)
    staged = lake.batches(obj.name)
    settings = source_for(project, obj).read_settings(obj)
    rejected = [_rejected_state(r, settings) for r in lake.rejections(obj.name)]
    notes: list[str] = []
    with MetadataStore(project.metadata_url) as store:
        attempts = store.batch_attempts(obj.name)
    warehouse = open_for_reading(project, notes)
    if warehouse is not None:
        try:
            loaded = warehouse.loaded_batches(obj.name)
        finally:
            warehouse.close()
    else:
        # no ledger to read: the store's successful load steps stand in for it
        loaded = {b for b, a in attempts.items() if a.status in ("success", "warning")}
        if staged and project.warehouse_path is not None and project.warehouse_path.exists():
            notes.append("loaded batches are taken from the metadata store")
    return ObjectBatches(
        obj.name, [*(_state(b, loaded, attempts) for b in staged), *rejected], notes
    )


def _rejected_state(rejection: Rejection, settings: str | None) -> BatchState:
    return BatchState(
        batch_id=rejection.batch_id,
        status="rejected",
        source_file=rejection.source_file,
        extracted_at=rejection.rejected_at,
        rows=None,
        rows_malformed=None,
        reason=rejection.reason,
        content_hash=rejection.content_hash,
        rejected_run_id=rejection.run_id,
        read_again=settings is not None and rejection.read_settings != settings,
    )


def _state(
    batch: StagedBatch, loaded: set[str], attempts: Mapping[str, BatchAttempt]
) -> BatchState:
    m = batch.manifest
    skip = batch.skip
    attempt = attempts.get(batch.batch_id)
    failed = attempt is not None and attempt.status == "failed"
    if batch.batch_id in loaded:
        status = "loaded"
    elif skip is not None:
        status = "skipped"
    elif failed:
        status = "failed"
    else:
        status = "pending"
    return BatchState(
        batch_id=batch.batch_id,
        status=status,
        source_file=m.source_file,
        extracted_at=m.extracted_at,
        rows=m.rows_in,
        rows_malformed=m.rows_malformed,
        error=attempt.error if attempt is not None and status == "failed" else None,
        failed_run_id=attempt.run_id if attempt is not None and status == "failed" else None,
        skip_reason=skip.reason if skip else None,
        skipped_by=skip.by if skip else None,
        skipped_at=skip.at if skip else None,
    )


def resolve_batch(batches: list[StagedBatch], object_name: str, prefix: str) -> StagedBatch:
    """The one staged batch whose id starts with `prefix` (with or without `<object>-`)."""
    if not prefix:
        raise UsageError("give a batch id (or a unique prefix of it)")
    found = [
        b
        for b in batches
        if b.batch_id.startswith(prefix) or b.batch_id.startswith(f"{object_name}-{prefix}")
    ]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(
            f"object '{object_name}' has no staged batch whose id starts with '{prefix}' "
            f"(list them: penstock batches {object_name})"
        )
    ids = ", ".join(b.batch_id for b in found[:5])
    raise UsageError(f"more than one batch of '{object_name}' starts with '{prefix}': {ids}")


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or "unknown"


def skip_batch(
    project: Project,
    object_name: str,
    prefix: str,
    reason: str,
    *,
    wait: float = DEFAULT_WAIT_SECONDS,
) -> BatchState:
    """Skip a staged batch that is not loaded: run and rebuild will never load it."""
    obj = _object(project, object_name)
    if not reason.strip():
        raise UsageError("say why the batch is skipped: --reason TEXT")
    with Session(project, record_catalog=False, wait=wait) as session:
        batch = resolve_batch(session.lake.batches(obj.name), obj.name, prefix)
        if batch.batch_id in session.warehouse.loaded_batches(obj.name):
            raise UsageError(
                f"batch {batch.batch_id} ({batch.manifest.source_file}) of '{obj.name}' is "
                f"already loaded: only a batch not yet loaded can be skipped. To correct its "
                f"rows, deliver a file with the corrected rows (load: merge or scd2 takes the "
                f"later version), or delete them in the warehouse table"
            )
        if batch.skip is None:
            marker = SkipMarker(reason=reason.strip(), by=_who(), at=utcnow())
            batch = session.lake.skip_batch(batch, marker)
            session.store.record_batch_decision(
                project.name,
                BatchDecision(
                    obj.name, batch.batch_id, "skip", marker.reason, marker.by, marker.at
                ),
            )
        attempts = session.store.batch_attempts(obj.name)
    return _state(batch, set(), attempts)


def unskip_batch(
    project: Project, object_name: str, prefix: str, *, wait: float = DEFAULT_WAIT_SECONDS
) -> BatchState:
    """Take a skip back: the batch loads in its place on the next run."""
    obj = _object(project, object_name)
    with Session(project, record_catalog=False, wait=wait) as session:
        batch = resolve_batch(session.lake.batches(obj.name), obj.name, prefix)
        if batch.skip is None:
            raise UsageError(f"batch {batch.batch_id} of '{obj.name}' is not skipped")
        batch = session.lake.unskip_batch(batch)
        session.store.record_batch_decision(
            project.name,
            BatchDecision(obj.name, batch.batch_id, "unskip", None, _who(), utcnow()),
        )
        attempts = session.store.batch_attempts(obj.name)
    return _state(batch, set(), attempts)


def retry_batch(
    project: Project, object_name: str, prefix: str, *, wait: float = DEFAULT_WAIT_SECONDS
) -> BatchState:
    """Take a rejection back: the next run reads the file again (and rejects it again if its
    bytes still cannot be read with the object's settings). Returns the batch as it was."""
    obj = _object(project, object_name)
    with Session(project, record_catalog=False, wait=wait) as session:
        rejections = session.lake.rejections(obj.name)
        found = [r for r in rejections if _matches(r.batch_id, obj.name, prefix)]
        if not found:
            _refuse_retry(session, obj.name, prefix)
        if len(found) > 1:
            ids = ", ".join(r.batch_id for r in found[:5])
            raise UsageError(
                f"more than one rejected batch of '{obj.name}' starts with '{prefix}': {ids}"
            )
        (rejection,) = found
        session.lake.clear_rejection(rejection)
        session.store.record_batch_decision(
            project.name,
            BatchDecision(
                obj.name, rejection.batch_id, "retry", rejection.reason, _who(), utcnow()
            ),
        )
        session.store.count_rejected(project.name, obj.name, len(rejections) - 1)
    # what it was rejected for; the next run reads it
    return replace(_rejected_state(rejection, None), status="pending")


def _refuse_retry(session: Session, object_name: str, prefix: str) -> NoReturn:
    """No rejected batch starts with `prefix`: say what it is instead."""
    if not prefix:
        raise UsageError("give a batch id (or a unique prefix of it)")
    staged = [
        b for b in session.lake.batches(object_name) if _matches(b.batch_id, object_name, prefix)
    ]
    if len(staged) != 1:
        raise UsageError(
            f"object '{object_name}' has no rejected batch whose id starts with '{prefix}' "
            f"(list them: penstock batches {object_name})"
        )
    loaded = session.warehouse.loaded_batches(object_name)
    state = _state(staged[0], loaded, session.store.batch_attempts(object_name))
    raise UsageError(
        f"batch {state.batch_id} ({state.source_file}) of '{object_name}' is {state.status}, "
        f"not rejected: only a rejected file can be retried"
        + (" (a failed batch is tried again by every run)" if state.status == "failed" else "")
    )


def _matches(batch_id: str, object_name: str, prefix: str) -> bool:
    return bool(prefix) and (
        batch_id.startswith(prefix) or batch_id.startswith(f"{object_name}-{prefix}")
    )
