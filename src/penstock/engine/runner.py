"""The runner: for each selected object, stage new files, then load pending batches.

Objects run in the plan's order (engine/plan.py: their dependencies first, else declaration
order), one after the other (engine/run_order.py) or, with several workers, each as soon as
its upstream is done (engine/parallel.py); an object downstream of one that failed in the run
is not run (`upstream_failed`).

Steps report only through the event bus. A batch is pending while the lake has it and the
warehouse ledger does not; so a run killed anywhere is repaired by the next one. Within an
object, batches load in extraction order, and a failed batch stops the later ones of the same
object (their order matters for merge and SCD2); other objects go on.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from penstock.catalog import ObjectSpec, Project
from penstock.defaults import default_workers
from penstock.engine.attempts import Deadline, worth_retrying
from penstock.engine.failures import describe
from penstock.engine.fused import stage_reading
from penstock.engine.loading import item_chunks, load_pending, load_read_chunk
from penstock.engine.model_run import drop_models, run_models, views_over
from penstock.engine.parallel import Work, run_parallel
from penstock.engine.plan import Plan
from penstock.engine.rejections import ObjectRejections
from penstock.engine.restage import restage_object
from penstock.engine.results import BatchOutcome, BatchStatus, RunResult, object_outcome
from penstock.engine.run_events import StepClock
from penstock.engine.run_notes import RunNotes
from penstock.engine.run_order import planned, run_in_order
from penstock.engine.schema_history import SchemaHistory
from penstock.errors import TransientError, first_line
from penstock.faults import fault_point
from penstock.lake import Lake, StagedBatch
from penstock.lake.stage import extraction_order, known_files
from penstock.observe import OBJECT_STEP, EventBus, ObjectCounted, new_id
from penstock.observe.names import METADATA_SINK
from penstock.quality.validate import ChunkRead
from penstock.sources import FilesSourceReader, source_for
from penstock.sources.base import SourceItem, StageResult
from penstock.warehouse import Warehouse

if TYPE_CHECKING:
    from penstock.engine.dask_executor import DaskStager


class Runner(RunNotes):
    def __init__(self, project: Project, bus: EventBus, warehouse: Warehouse, lake: Lake) -> None:
        self.project = project
        self.bus = bus
        self.warehouse = warehouse
        self.lake = lake
        self.clock = StepClock()  # step timings for the events (engine/run_events.py)
        self.attempt = 1  # the try of the object's work going on (its steps carry it)
        self.deadline: Deadline | None = None  # that try's time limit
        # stages new files on Dask workers (`--executor`, engine/dask_executor.py); None: here
        self.stager: DaskStager | None = None
        # loads take it: one at a time into the warehouse, whichever worker (engine/parallel.py)
        self.write_lock = threading.RLock()

    # -- commands -----------------------------------------------------------------------
    def run(
        self, selector: str | None = None, *, command: str = "run", workers: int | None = None
    ) -> RunResult:
        """Extract, stage, validate and load every selected object, in the plan's order
        (`command`: how the run is recorded; `resume` for `run --resume`), independent ones
        on up to `workers` threads (default: the core count; engine/parallel.py); the models
        after them, in plan order (engine/model_run.py)."""
        plan, objects, models = planned(self.project, selector)
        result = self._start(command, selector, objects, models)
        with self._finishing(result):
            self._run_units(result, plan, objects, Runner._run_object, workers)
            run_models(self, result, plan, models)
        result.nothing_matched = bool(objects) and len(result.no_match) == len(objects)
        return self._finish(result)

    def rebuild(
        self, selector: str | None = None, *, restage: bool = False, workers: int | None = None
    ) -> RunResult:
        """Empty the object tables and replay every staged batch in extraction order; with
        `restage`, first parse each batch's landing file again with the current settings
        (engine/restage.py)."""
        plan, objects, models = planned(self.project, selector)
        # views over the objects replayed are dropped first (PostgreSQL will not drop a table a
        # view reads) and built again after them
        views = views_over(self.project, plan, [o.name for o in objects])
        models = [n for n in plan.order() if n in models or n in views]
        result = self._start("rebuild", selector, objects, models)
        if restage:
            result.restage = []
        with self._finishing(result):
            drop_models(self, views)
            replay = partial(_replay, restage=restage)
            self._run_units(result, plan, objects, replay, workers)
            run_models(self, result, plan, models, rebuild=True)
        return self._finish(result)

    def _run_units(
        self,
        result: RunResult,
        plan: Plan,
        objects: list[ObjectSpec],
        work: Work,
        workers: int | None,
    ) -> None:
        """Each object's `work`, one after the other or on worker threads."""
        count = default_workers() if workers is None else max(1, workers)
        if count == 1 or len(objects) < 2 or self.stager is not None:
            run_in_order(self, result, plan, objects, work)
            return
        run_parallel(self, result, plan, objects, work, min(count, len(objects)))

    # -- run plumbing -------------------------------------------------------------------
    def _start(
        self,
        command: str,
        selector: str | None,
        objects: list[ObjectSpec],
        models: list[str] = [],  # noqa: B006 (read only)
    ) -> RunResult:
        selected = [o.name for o in objects] + models
        result = RunResult(run_id=new_id(), command=command, selected=selected)
        self._emit_run_started(result, command, selector)
        return result

    def _finish(self, result: RunResult, interrupted: str | None = None) -> RunResult:
        failures = result.failures
        result.status = "failed" if failures or interrupted else "success"
        errors = [f"{f.object}: {f.error}" for f in failures[:5]]
        if interrupted:
            errors.insert(0, f"interrupted: {interrupted}")
        error = "; ".join(errors) or None
        self._emit_run_finished(result, error)  # and flushes the bus's queued sinks
        return result

    @contextmanager
    def _finishing(self, result: RunResult) -> Iterator[None]:
        """Whatever escapes the run (Ctrl-C, SystemExit), it ends recorded as failed."""
        try:
            yield
        except BaseException as exc:
            self._finish(result, interrupted=f"{type(exc).__name__}: {first_line(exc)}")
            raise

    def _guard(self, result: RunResult, obj: ObjectSpec, work: Callable[[], None]) -> BatchStatus:
        """Run one object's work; any error fails that object only, recorded as a step. A
        try that failed with transient errors only is tried again as the object's `retry:`
        allows (engine/attempts.py); each try has the object's `timeout:`.

        Each try is recorded as an `object` step: running while it goes on, finished with
        the object's outcome in this run, even when there was nothing to do. A process
        killed meanwhile leaves it running (the next run marks it abandoned); an interrupt
        finishes it failed.
        """
        policy = self.project.retry_policy(obj.name)
        attempt = 1
        while True:
            first = len(result.outcomes)
            outcome, error, object_step = self._try(result, obj, work, attempt)
            mine = result.outcomes[first:]
            if attempt >= policy.attempts or not worth_retrying(mine):
                self._count(result, obj)
                self._step_finished(result, object_step, obj, None, OBJECT_STEP, outcome, error)
                if any(o.step == "load" and o.status in ("success", "warning") for o in mine):
                    # what it committed is recorded before the next object starts, so a
                    # later kill resumes without it; an object with nothing new costs nothing
                    self.bus.flush(only=(METADATA_SINK,))
                self.attempt = 1
                return outcome
            # the failed steps stay recorded; what this try did complete stays done
            result.outcomes[first:] = [o for o in mine if o.status != "failed"]
            delay = policy.delay(attempt)
            assert error is not None
            self._step_finished(result, object_step, obj, None, OBJECT_STEP, "failed", error)
            self._retrying(result, obj, object_step, attempt + 1, error, delay)
            self._log(
                result,
                "warning",
                f"{obj.name}: try {attempt} failed ({error}); trying again in {delay:.1f} s",
                obj,
                event="retry",
                attempt=attempt + 1,
                delay_s=round(delay, 3),
            )
            time.sleep(delay)
            attempt += 1

    def _try(
        self, result: RunResult, obj: ObjectSpec, work: Callable[[], None], attempt: int
    ) -> tuple[BatchStatus, str | None, str]:
        """One try of the object's work: its outcome, first error and object step."""
        first = len(result.outcomes)
        self.attempt = attempt
        object_step = self._step_started(result, obj, None, OBJECT_STEP, object_step=True)
        timeout = self.project.timeout_seconds(obj.name)
        deadline = Deadline(obj.name, timeout, self.warehouse.conn) if timeout else None
        self.deadline = deadline
        try:
            with deadline or nullcontext():
                work()
        except Exception as exc:
            exc = self._timed(exc)
            message, fields = describe(exc)
            step_id = self._step_started(result, obj, None, "extract")
            self._step_finished(result, step_id, obj, None, "extract", "failed", message, exc=exc)
            result.outcomes.append(
                BatchOutcome(
                    obj.name,
                    None,
                    None,
                    "extract",
                    "failed",
                    error=message,
                    retryable=isinstance(exc, TransientError),
                )
            )
            self._log(result, "error", message, obj, **fields)
        except BaseException as exc:
            interrupted = f"interrupted: {type(exc).__name__}: {first_line(exc)}"
            self._step_finished(result, object_step, obj, None, OBJECT_STEP, "failed", interrupted)
            raise
        finally:
            self.deadline = None
        mine = result.outcomes[first:]
        error = next((o.error for o in mine if o.status == "failed"), None)
        return object_outcome(mine), error, object_step

    def _check_deadline(self) -> None:
        """Stop the object's try here if it ran past its timeout (`StepTimeout`)."""
        if self.deadline is not None:
            self.deadline.check()

    def _timed(self, exc: Exception) -> Exception:
        """How a try's error is reported: as its timeout when the watchdog stopped it."""
        return exc if self.deadline is None else self.deadline.translate(exc)

    def _count(self, result: RunResult, obj: ObjectSpec) -> None:
        """Record the object's counts in the warehouse as its work ends (`penstock status`
        shows them without opening the warehouse). Counting never fails the object."""
        try:
            counted = ObjectCounted(
                run_id=result.run_id,
                project=self.project.name,
                object=obj.name,
                table=obj.table_name,
                rows=self.warehouse.table_rows(obj),
                batches_loaded=self.warehouse.loaded_batch_count(obj.name),
                rows_quarantined=self.warehouse.quarantine_count(obj, loaded=False),
                rows_warned=self.warehouse.quarantine_count(obj, loaded=True),
                batches_rejected=self.lake.rejected_count(obj.name),
            )
        except Exception as exc:
            message, fields = describe(exc)
            self._log(
                result, "warning", f"{obj.name}: not counted for status: {message}", obj, **fields
            )
            return
        self.bus.emit(counted)

    # -- one object ---------------------------------------------------------------------
    def _run_object(self, result: RunResult, obj: ObjectSpec) -> None:
        source = source_for(self.project, obj)
        if not isinstance(source, FilesSourceReader):
            from penstock.engine.database_run import run_database_object

            run_database_object(self, result, obj, source)
            return
        staged = self.lake.batches(obj.name)  # every manifest is read once per run
        rejections = ObjectRejections.start(self, result, obj, source, staged)
        index = self.lake.read_file_index(obj.name)
        checking = time.monotonic()
        check = partial(
            self._emit_source_checked,
            result,
            obj,
            source=source.name,
            kind=source.spec.kind,
            root=source.root,
            started=checking,
        )
        try:
            found = source.discover(obj, known_files(staged, index, rejections.in_force.values()))
        except Exception as exc:
            check(exc=exc)
            raise
        check(files=len(found.new) + len(found.unchanged) + len(found.unsettled))
        total = len(found.new) + len(found.unchanged) + len(found.unsettled)
        if total == 0:
            self._note_no_match(result, obj, source)
        met = sum(rejections.meet(s.batch_id, s.source_file) for s in found.unchanged)
        self._log(
            result,
            "info",
            f"{obj.name}: {total} file(s), {len(found.new)} new or changed"
            + (f", {len(found.unsettled)} still settling" if found.unsettled else "")
            + (f", {met} rejected earlier" if met else ""),
            obj,
            event="plan",
            files=total,
            new=len(found.new),
        )
        if found.unsettled:
            self._log(
                result,
                "warning",
                f"{obj.name}: {len(found.unsettled)} file(s) younger than settle time "
                f"({source.spec.settle}), left for the next run: {', '.join(found.unsettled[:5])}"
                + (" …" if len(found.unsettled) > 5 else ""),
                obj,
                event="unsettled",
                unsettled=found.unsettled,
            )
            # under the summary too: a run that loaded nothing should say why
            result.notes.append(
                f"{obj.name}: {len(found.unsettled)} file(s) written less than "
                f"{source.spec.settle} ago wait for the next run (the source's settle: time; "
                "0s suits writers that rename complete files into place)"
            )
        seen = list(found.unchanged)
        complete = not found.unsettled  # every file offered was read (or is known)
        loaded = self.warehouse.loaded_batches(obj.name)
        # new files load as soon as they are staged, read once for both (engine/fused.py),
        # unless earlier batches wait to load first
        # (not for an object whose new columns evolve: its chunks are planned over the stage
        # zone, engine/loading.py)
        fuse = obj.schema_drift.new_columns != "evolve" and not any(
            b.batch_id not in loaded and b.skip is None for b in staged
        )
        history: SchemaHistory | None = None  # schema versions, once a batch is staged
        noted = blocked = False
        for items in item_chunks(found.new, obj.chunking):
            stagings, reading = self._stage_items(
                result, obj, source, items, rejections, fuse=fuse and not blocked
            )
            new: list[StagedBatch] = []
            for staging in stagings:
                if staging.status in ("changed", "failed"):
                    complete = False
                    continue
                if staging.seen is not None:
                    seen.append(staging.seen)
                if staging.batch is not None:
                    rejections.read(staging.batch)
                if staging.status == "staged" and staging.batch is not None:
                    if obj.load == "replace":  # elsewhere equal content is the same batch id
                        self._note_repeat(result, obj, staging.batch, staged)
                    if history is None:
                        history = SchemaHistory.of(obj, self.project.name, staged)
                    for event in history.observe(result.run_id, staging.batch):
                        self.bus.emit(event)
                    staged.append(staging.batch)
                    new.append(staging.batch)
            if reading is not None:
                self._log(
                    result,
                    "debug",
                    f"{obj.name}: {len(new)} new file(s) read once, for staging and validation",
                    obj,
                    event="shared_read",
                    batches=len(new),
                )
                if not noted:
                    self._note_added_columns(
                        result, obj, [b for b in staged if b.batch_id in loaded]
                    )
                    noted = True
                blocked = not load_read_chunk(self, result, obj, new, reading)
        if blocked:  # a batch failed: the later ones wait (the run said so)
            rejections.finish(complete=complete)
            self.lake.write_file_index(obj.name, seen, staged)
            return
        rejections.finish(complete=complete)
        self.lake.write_file_index(obj.name, seen, staged)
        if found.new:  # this run staged and loaded: ask the ledger again
            loaded = self.warehouse.loaded_batches(obj.name)
        # a skipped batch never loads: it is not pending (the run said so when it was skipped)
        pending = sorted(
            (b for b in staged if b.batch_id not in loaded and b.skip is None),
            key=extraction_order,
        )
        if pending and not noted:
            self._note_added_columns(result, obj, [b for b in staged if b.batch_id in loaded])
        # a rebuild killed halfway left batches to load again: they keep their first load time
        replayed = self.warehouse.original_load_times(obj) if pending else {}
        load_pending(self, result, obj, pending, replayed, staged)

    def _replay_object(self, result: RunResult, obj: ObjectSpec, restage: bool = False) -> None:
        if restage and not restage_object(self, result, obj):
            return  # a file failed to parse: the object is left as it was (logged)
        with self.write_lock:
            loaded_at = self.warehouse.reset_object(obj)
        fault_point("after_reset")
        self._log(result, "info", f"{obj.name}: replaying the stage zone", obj)
        staged = self.lake.batches(obj.name)
        # the metadata store gets every schema version again (it keeps the first it saw)
        for event in SchemaHistory.of(obj, self.project.name, staged).replayed(result.run_id):
            self.bus.emit(event)
        # the replay writes the lake's quarantine files anew: the older ones then go (those
        # of a chunk the replay splits differently would otherwise hold its rows twice)
        before = {p: _identity(p) for p in self.lake.quarantine_files(obj.name)}
        load_pending(self, result, obj, staged, loaded_at, staged)
        for path, identity in before.items():
            with contextlib.suppress(FileNotFoundError):
                if _identity(path) == identity:  # not written again by the replay
                    path.unlink()

    def _stage_items(
        self,
        result: RunResult,
        obj: ObjectSpec,
        source: FilesSourceReader,
        items: list[SourceItem],
        rejections: ObjectRejections,
        *,
        fuse: bool = False,
    ) -> tuple[list[StageResult], ChunkRead | None]:
        """Stage `items` together (one stage step each); an item that could not be read is
        recorded as a failed step (one that cannot be read at all as rejected). With `fuse`,
        the read of new CSV files serves their validation too: it comes back with them."""
        step_ids = [
            self._step_started(result, obj, None, "stage", source_file=item.display_name)
            for item in items
        ]
        conn = self.warehouse.conn
        reading: ChunkRead | None = None
        try:
            self._check_deadline()
            if self.stager is not None:
                stagings = self.stager.stage(obj, source, items, self.lake)
            elif fuse:
                stagings, reading = stage_reading(conn, obj, source, items, self.lake)
            else:
                stagings = source.stage_many(conn, obj, items, self.lake)
        except Exception as exc:  # the machine's, not one file's: every item failed
            stagings = [StageResult("failed", item, error=exc) for item in items]
        for step_id, staging in zip(step_ids, stagings, strict=True):
            self._staged(result, obj, staging, step_id, rejections)
        return stagings, reading

    def _staged(
        self,
        result: RunResult,
        obj: ObjectSpec,
        staging: StageResult,
        step_id: str,
        rejections: ObjectRejections,
    ) -> None:
        """Record what staging one item did: its step, log lines and outcome."""
        item = staging.item
        self._working_on(obj, step_id)
        if staging.status == "failed":
            assert staging.error is not None
            error = self._timed(staging.error)
            message, fields = describe(error)
            self._step_finished(
                result,
                step_id,
                obj,
                None,
                "stage",
                "failed",
                message,
                exc=error,
                bytes_in=item.size_bytes,
            )
            result.outcomes.append(
                BatchOutcome(
                    obj.name,
                    None,
                    item.display_name,
                    "stage",
                    "failed",
                    error=message,
                    retryable=isinstance(error, TransientError),
                )
            )
            self._log(result, "error", message, obj, **fields)
            return
        if staging.rejection is not None:  # cannot be read at all, now or before
            rejections.staged_rejected(staging, step_id)
            return
        batch = staging.batch
        batch_id = batch.batch_id if batch is not None else None
        if staging.status != "staged" or batch is None:
            if staging.status == "changed":
                message = (
                    f"{item.display_name} changed while it was being read (still being written?); "
                    f"nothing staged, left for the next run"
                )
            elif batch is not None and batch.manifest.source_file == item.display_name:
                message = (
                    f"{item.display_name} is unchanged since batch {batch_id}; not staged again"
                )
            else:
                earlier = batch.manifest.source_file if batch is not None else "an earlier file"
                message = (
                    f"{item.display_name} has the same content as {earlier} (batch {batch_id}); "
                    f"staged once"
                )
            self._step_finished(result, step_id, obj, batch_id, "stage", "skipped")
            result.outcomes.append(
                BatchOutcome(obj.name, batch_id, item.display_name, "stage", "skipped")
            )
            self._log(result, "info", message, obj, batch_id=batch_id, event=staging.status)
            return
        for warning in batch.manifest.warnings:
            self._log(result, "warning", warning, obj, batch_id=batch.batch_id)
        self._emit_batch_staged(result, step_id, obj, batch)
        self._step_finished(result, step_id, obj, batch.batch_id, "stage", "success", batch=batch)
        self._log(
            result,
            "info",
            f"staged {item.display_name}: {batch.manifest.rows_in} record(s), "
            f"{batch.manifest.rows_malformed} malformed",
            obj,
            batch_id=batch.batch_id,
            rows=batch.manifest.rows,
            malformed=batch.manifest.rows_malformed,
        )
        result.outcomes.append(
            BatchOutcome(
                obj.name,
                batch.batch_id,
                item.display_name,
                "stage",
                "success",
                rows_in=batch.manifest.rows_in,
            )
        )
        fault_point("after_stage")


def _replay(runner: Runner, result: RunResult, obj: ObjectSpec, *, restage: bool) -> None:
    runner._replay_object(result, obj, restage)


def _identity(path: Path) -> tuple[int, int]:
    """A file's inode and mtime: a file written again (renamed into place) differs."""
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns
