"""Loading an object's pending batches in micro-batches (chunks).

Pending batches load in extraction order. Consecutive batches are validated together and
loaded in one transaction, as many as fit the object's micro-batch target (rows, bytes, files:
`MicroBatch`), so a landing zone of thousands of small files costs a handful of statements per
chunk, not per file. Each batch keeps its identity: its own load step (events and log lines),
its own ledger row and row accounting, its quarantine rows in the lake (a file per chunk,
every row with its batch id), and the same results as if it had
loaded alone. A chunk that cannot load whole (a batch breaks `on_invalid: fail`, does not bind
or compile, the load fails) is loaded again one batch at a time, so that exactly the batches
before the failing one load and the failing one reports its own error; later batches wait.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from penstock.catalog import MicroBatch, ObjectSpec
from penstock.engine.failures import describe, skip_command, skip_hint
from penstock.engine.results import BatchOutcome, BatchStatus, RunResult
from penstock.errors import TableMismatch, TransientError
from penstock.faults import fault_point
from penstock.lake import StagedBatch
from penstock.lake.purges import purged_batches
from penstock.lake.read import SEQ
from penstock.lake.stage import extraction_order
from penstock.quality.drift import evolve
from penstock.quality.validate import (
    BatchValidation,
    ChunkRead,
    ChunkValidation,
    finish_chunk,
    validate_chunk,
)
from penstock.sources.base import SourceItem
from penstock.warehouse import LoadResult

if TYPE_CHECKING:
    from penstock.engine.runner import Runner

T = TypeVar("T")


def chunks(batches: Sequence[StagedBatch], target: MicroBatch) -> Iterator[list[StagedBatch]]:
    """Consecutive batches, as many per chunk as fit the target (a batch larger than the
    target is a chunk of its own)."""
    return _fitting(batches, target, lambda b: (b.manifest.rows_in, b.manifest.size_bytes))


def item_chunks(items: Sequence[SourceItem], target: MicroBatch) -> Iterator[list[SourceItem]]:
    """Consecutive landing files to stage together: by bytes and files (their records are
    not counted before they are read)."""
    return _fitting(items, target, lambda i: (0, i.size_bytes))


def _fitting(
    units: Sequence[T], target: MicroBatch, size: Callable[[T], tuple[int, int]]
) -> Iterator[list[T]]:
    chunk: list[T] = []
    rows = total = 0
    for unit in units:
        unit_rows, unit_bytes = size(unit)
        if chunk and (
            len(chunk) >= target.files
            or rows + unit_rows > target.rows
            or total + unit_bytes > target.bytes
        ):
            yield chunk
            chunk, rows, total = [], 0, 0
        chunk.append(unit)
        rows += unit_rows
        total += unit_bytes
    if chunk:
        yield chunk


def load_pending(
    runner: Runner,
    result: RunResult,
    obj: ObjectSpec,
    batches: list[StagedBatch],
    loaded_at: Mapping[str, datetime],
    staged: Sequence[StagedBatch] = (),
) -> None:
    """Load `batches` (in order; skipped ones are logged and passed) chunk by chunk; after a
    failed batch the later ones wait. `staged`: every batch of the object in the stage zone
    (for `schema_drift: {new_columns: evolve}`, see `_contract`)."""
    history = sorted(staged, key=extraction_order)
    to_load = [b for b in batches if b.skip is None]
    _plan_note(runner, result, obj, len(to_load), len(batches) - len(to_load))
    for batch in batches:
        if (skip := batch.skip) is not None:
            runner._log(
                result,
                "info",
                f"{obj.name}: batch {batch.batch_id} ({batch.manifest.source_file}) is "
                f"skipped, not loaded: {skip.reason} (by {skip.by} at {skip.at:%Y-%m-%d %H:%M})",
                obj,
                batch_id=batch.batch_id,
                event="skipped",
            )
    loaded: set[str] = set()
    for chunk in chunks(to_load, obj.chunking):
        outcomes = _load_chunk(runner, result, obj, chunk, loaded_at, history=history)
        result.outcomes.extend(outcomes)
        loaded |= {o.batch_id for o in outcomes if o.batch_id and o.status != "failed"}
        failed = next((o for o in outcomes if o.status == "failed"), None)
        if failed is not None and failed.batch_id is not None:
            _wait_note(runner, result, obj, failed.batch_id)
            break
    _release_again(runner, result, obj, loaded)


def _release_again(runner: Runner, result: RunResult, obj: ObjectSpec, loaded: set[str]) -> None:
    """Batches a release took rows from (lake/releases.py), loaded again (a rebuild): the
    same rows are released again, with the same corrections."""
    if not loaded:
        return
    from penstock.lake.releases import read_releases

    if not any(loaded & set(r.rows) for r in read_releases(runner.lake.root, obj.name)):
        return
    # Imported only here: the release machinery loads pyarrow (~0.1 s of every run otherwise).
    from penstock.engine.quarantine_release import replay_releases

    try:
        released = replay_releases(runner.warehouse, runner.lake, obj, loaded)
    except Exception as exc:
        message, fields = describe(exc)
        runner._log(
            result,
            "error",
            f"{obj.name}: recorded releases not applied again: {message}; "
            f"`penstock quarantine release {obj.name}` applies them",
            obj,
            **fields,
        )
        return
    if released:
        runner._log(
            result,
            "info",
            f"{obj.name}: {released} quarantined row(s) released again, as recorded in "
            f"{runner.lake.root.name}/releases/{obj.name}.json",
            obj,
            event="released",
            rows=released,
        )


def _contract(
    obj: ObjectSpec, chunk: Sequence[StagedBatch], history: Sequence[StagedBatch]
) -> ObjectSpec:
    """The contract `chunk` loads under: the object's, plus (`new_columns: evolve`) every new
    column of the stage zone's batches up to the chunk's last, in extraction order. Taken from
    the stage zone, not the chunk alone, so a batch loaded alone in a run and the same batch in
    a rebuild's larger chunk load the same columns (an evolved column the batch lacks: NULL)."""
    if obj.schema_drift.new_columns != "evolve":
        return obj
    last = max(extraction_order(b) for b in chunk)
    ids = {b.batch_id for b in history}
    earlier = [b for b in history if extraction_order(b) <= last]
    return evolve(obj, [*earlier, *(b for b in chunk if b.batch_id not in ids)])


def load_read_chunk(
    runner: Runner,
    result: RunResult,
    obj: ObjectSpec,
    chunk: list[StagedBatch],
    reading: ChunkRead,
) -> bool:
    """Load a chunk of new batches whose rows were read while they were staged
    (engine/fused.py); False when one of them failed (the later batches wait)."""
    _plan_note(runner, result, obj, len(chunk), 0)
    outcomes = _load_chunk(runner, result, obj, chunk, {}, reading=reading)
    result.outcomes.extend(outcomes)
    failed = next((o for o in outcomes if o.status == "failed"), None)
    if failed is not None and failed.batch_id is not None:
        _wait_note(runner, result, obj, failed.batch_id)
        return False
    return True


def _plan_note(
    runner: Runner, result: RunResult, obj: ObjectSpec, pending: int, skipped: int
) -> None:
    runner._log(
        result,
        "info",
        f"{obj.name}: {pending} batch(es) to load" + (f", {skipped} skipped" if skipped else ""),
        obj,
        event="load_plan",
        pending=pending,
    )


def _wait_note(runner: Runner, result: RunResult, obj: ObjectSpec, batch_id: str) -> None:
    runner._log(
        result,
        "warning",
        f"{obj.name}: later batches wait until batch {batch_id} loads or is "
        f"skipped ({skip_command(obj.name, batch_id)})",
        obj,
        batch_id=batch_id,
    )


def _load_chunk(
    runner: Runner,
    result: RunResult,
    obj: ObjectSpec,
    chunk: list[StagedBatch],
    loaded_at: Mapping[str, datetime],
    step_ids: list[str] | None = None,
    reading: ChunkRead | None = None,
    history: Sequence[StagedBatch] = (),
) -> list[BatchOutcome]:
    """Validate and load `chunk` in one transaction (`reading`: its rows, read already while
    it was staged); its outcomes, one per batch (up to the first failed one when the chunk had
    to be split)."""
    if step_ids is None:
        step_ids = [
            runner._step_started(
                result, obj, b.batch_id, "load", source_file=b.manifest.source_file
            )
            for b in chunk
        ]
    conn = runner.warehouse.conn
    validation: ChunkValidation | None = None
    now = datetime.now(UTC)
    try:
        runner._check_deadline()
        contract = _contract(obj, chunk, history)
        validation = (
            finish_chunk(conn, reading, chunk)
            if reading is not None
            else validate_chunk(conn, contract, chunk)
        )
        results = validation.results
        for batch, v, step_id in zip(chunk, results, step_ids, strict=True):
            runner._working_on(obj, step_id)
            runner._report_validation(result, contract, batch, v)
        purged = _leave_out_purged(runner, obj, chunk, validation)
        held = [
            (seq, batch.batch_id)
            for seq, (batch, v) in enumerate(zip(chunk, results, strict=True), 1)
            if v.rows_recorded and batch.batch_id not in purged
        ]
        if len(held) == 1:
            seq, batch_id = held[0]
            target = runner.lake.quarantine_path(obj.name, batch_id)
            runner.warehouse.write_quarantine_file(validation, [seq], target)
        elif held:  # one file for the chunk (a file per batch cost more than its rows)
            target = runner.lake.quarantine_chunk_path(obj.name, [b for _, b in held])
            runner.warehouse.write_quarantine_file(validation, [s for s, _ in held], target)
        with runner.write_lock:  # one load at a time, whichever worker (engine/parallel.py)
            fault_point("before_load_commit")
            runner._check_deadline()  # a try past its time commits nothing more
            loads = runner.warehouse.load_chunk(
                contract,
                validation,
                run_id=result.run_id,
                loaded_at=[loaded_at.get(b.batch_id) or now for b in chunk],
            )
    except Exception as exc:
        if validation is not None:
            validation.drop(conn)
            validation = None
        if len(chunk) > 1:  # find the batch at fault: one at a time, in order
            return _one_by_one(runner, result, obj, chunk, loaded_at, step_ids, history)
        return [_failed(runner, result, obj, chunk[0], step_ids[0], exc)]
    finally:
        if validation is not None:
            validation.drop(conn)
    fault_point("after_load")
    shared = len(chunk) > 1
    return [
        _loaded(runner, result, obj, batch, step_id, v, load, shared=shared)
        for batch, step_id, v, load in zip(chunk, step_ids, results, loads, strict=True)
    ]


def _leave_out_purged(
    runner: Runner, obj: ObjectSpec, chunk: Sequence[StagedBatch], validation: ChunkValidation
) -> frozenset[str]:
    """The chunk's batches whose quarantined rows were purged (lake/purges.py): loaded again
    (a rebuild), they keep their accounting but record no quarantine rows."""
    purged = purged_batches(runner.lake.root, obj.name)
    seqs = [str(s) for s, b in enumerate(chunk, 1) if b.batch_id in purged]
    if seqs:
        runner.warehouse.conn.execute(
            f"DELETE FROM {validation.quarantine_table} WHERE {SEQ} IN ({', '.join(seqs)})"
        )
    return purged


def _one_by_one(
    runner: Runner,
    result: RunResult,
    obj: ObjectSpec,
    chunk: list[StagedBatch],
    loaded_at: Mapping[str, datetime],
    step_ids: list[str],
    history: Sequence[StagedBatch],
) -> list[BatchOutcome]:
    outcomes: list[BatchOutcome] = []
    for batch, step_id in zip(chunk, step_ids, strict=True):
        (outcome,) = _load_chunk(
            runner, result, obj, [batch], loaded_at, [step_id], history=history
        )
        outcomes.append(outcome)
        if outcome.status == "failed":
            break
    # the batches after a failed one never started loading: their steps end skipped
    for batch, step_id in zip(chunk[len(outcomes) :], step_ids[len(outcomes) :], strict=True):
        runner._step_finished(result, step_id, obj, batch.batch_id, "load", "skipped")
    return outcomes


def _failed(
    runner: Runner,
    result: RunResult,
    obj: ObjectSpec,
    batch: StagedBatch,
    step_id: str,
    exc: Exception,
) -> BatchOutcome:
    runner._working_on(obj, step_id)
    exc = runner._timed(exc)
    message, fields = describe(exc)
    if not isinstance(exc, TransientError | TableMismatch):
        message = f"{message}; {skip_hint(obj.name, batch.batch_id)}"
    runner._step_finished(
        result, step_id, obj, batch.batch_id, "load", "failed", message, exc=exc, batch=batch
    )
    runner._log(result, "error", message, obj, **{**fields, "batch_id": batch.batch_id})
    return BatchOutcome(
        obj.name,
        batch.batch_id,
        batch.manifest.source_file,
        "load",
        "failed",
        rows_in=batch.manifest.rows_in,
        error=message,
        retryable=isinstance(exc, TransientError),
    )


def _loaded(
    runner: Runner,
    result: RunResult,
    obj: ObjectSpec,
    batch: StagedBatch,
    step_id: str,
    validation: BatchValidation,
    load: LoadResult,
    *,
    shared: bool = False,
) -> BatchOutcome:
    """A batch's load step finished: its events, its log line, its outcome. `shared`: it was
    loaded in one transaction with other batches (its step's duration is theirs too)."""
    runner._working_on(obj, step_id)
    status = _load_status(validation, load)
    if load.kept_previous:
        runner._log(
            result,
            "warning",
            f"batch {batch.batch_id} ({batch.manifest.source_file}) has no valid row to "
            f"load; {obj.table_name} keeps the previous snapshot",
            obj,
            batch_id=batch.batch_id,
        )
    runner._step_finished(
        result,
        step_id,
        obj,
        batch.batch_id,
        "load",
        status,
        validation=validation,
        batch=batch,
        load=load,
        shared=shared,
    )
    runner._log(
        result,
        "info",
        f"loaded {batch.manifest.source_file} into {obj.table_name} ({obj.load}): "
        f"{load.rows_inserted} inserted, {load.rows_updated} updated, "
        f"{load.rows_unchanged} unchanged, {load.rows_stale} older than stored",
        obj,
        batch_id=batch.batch_id,
        inserted=load.rows_inserted,
        updated=load.rows_updated,
        unchanged=load.rows_unchanged,
        stale=load.rows_stale,
    )
    return BatchOutcome(
        obj.name,
        batch.batch_id,
        batch.manifest.source_file,
        "load",
        status,
        rows_in=validation.rows_in,
        rows_loaded=validation.rows_loaded,
        rows_quarantined=validation.rows_quarantined,
        rows_duplicate=validation.rows_duplicate,
        rows_invalid=validation.rows_invalid,
        rows_warned=validation.rows_warned,
        reason_counts=dict(validation.reason_counts),
    )


def _load_status(validation: BatchValidation, load: LoadResult) -> BatchStatus:
    if load.skipped:
        return "skipped"
    if (
        validation.rows_invalid
        or validation.failed_checks
        or validation.warned_checks
        or validation.missing_columns
        or load.kept_previous
    ):
        return "warning"
    return "success"
