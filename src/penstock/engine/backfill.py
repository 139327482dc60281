"""`penstock backfill OBJECT --from DATE --to DATE`: each partition as its own idempotent unit.

A partition (catalog/partitioning.py, engine/partition_plan.py) is extracted, validated and
loaded on its own: its files staged (or its window read from the database), validated
together, then loaded in one warehouse transaction that first deletes what the partition held
(warehouse/partition_ledger.py) and records it in `penstock.partitions`. So a backfill run
again replaces each partition exactly: no duplicate, no gap; a partition whose batches are
those it already holds is `unchanged` and not written (`--force` writes it again). A
partition that fails leaves the warehouse as it was and the others go on: back-filling it
again (alone with `--partition KEY`, or the whole range) redoes only it.

Partitions run on `workers` threads. Each thread stages and validates on its own DuckDB
connection (a cursor of the warehouse's); loads take one lock, so one partition loads at a
time into the warehouse (DuckDB has one writer). A source's `max_connections` caps how many
partitions read from it at once. Events reach the bus under one lock, so the sinks see one
step at a time; every partition is a `partition` step (its key as `source_file`) in
step_runs, and `penstock partitions OBJECT` reads their latest statuses back.

The batches a partition held before and no longer holds are marked skipped in the lake
(`lake/skip.py`), so neither `penstock run` nor `penstock rebuild` loads them again. The
batches it is about to load are marked skipped too, until its load commits: a backfill that
fails, or a process killed in between, leaves them held, so a plain `penstock run` cannot
append them without the partition's rows being replaced; back-filling it again takes them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import duckdb

from penstock.catalog import ObjectSpec
from penstock.catalog.columns import ExpressionCheck
from penstock.defaults import default_workers
from penstock.engine.failures import describe
from penstock.engine.loading import _contract, _loaded
from penstock.engine.partition_plan import PartitionPlan, PartitionWork, plan_partitions
from penstock.engine.results import BatchOutcome, BatchStatus, RunResult, object_outcome
from penstock.errors import SourceError, TransientError
from penstock.faults import fault_point
from penstock.lake import StagedBatch
from penstock.lake.skip import SkipMarker
from penstock.observe import OBJECT_STEP, utcnow
from penstock.quality.privacy_sql import install_key
from penstock.quality.validate import validate_chunk
from penstock.sources import FilesSourceReader, source_for
from penstock.sources.database import DatabaseSourceReader
from penstock.sql import ident

if TYPE_CHECKING:
    from penstock.engine.runner import Runner

PartitionStatus = Literal["success", "warning", "failed", "unchanged", "empty"]
PARTITION_STEP = "partition"
_STEP_STATUS: dict[PartitionStatus, BatchStatus] = {
    "success": "success",
    "warning": "warning",
    "failed": "failed",
    "unchanged": "skipped",
    "empty": "success",
}


@dataclass
class PartitionOutcome:
    """What the backfill did to one partition."""

    key: str
    status: PartitionStatus = "success"
    batches: list[str] = field(default_factory=list)
    files: int = 0
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    replaced: int = 0  # batches it held before and holds no more
    error: str | None = None


@dataclass
class BackfillResult:
    run: RunResult
    object: str
    grain: str
    workers: int
    partitions: list[PartitionOutcome]
    unmatched: list[str]  # files of the object whose path dates into no partition

    @property
    def failed(self) -> list[PartitionOutcome]:
        return [p for p in self.partitions if p.status == "failed"]


class _Failed(Exception):
    """A partition's step failed; already recorded (its message is the partition's error)."""


class Backfill:
    def __init__(
        self,
        runner: Runner,
        obj: ObjectSpec,
        *,
        workers: int | None = None,
        force: bool = False,
        on_partition: Callable[[PartitionOutcome], None] | None = None,
        on_plan: Callable[[PartitionPlan], None] | None = None,
    ) -> None:
        self.runner = runner
        self.obj = obj
        self.workers = max(1, workers or default_workers())
        self.force = force
        self.on_partition = on_partition
        self.on_plan = on_plan
        self.source = source_for(runner.project, obj)
        cap = getattr(self.source.spec, "max_connections", None)
        self.source_slots = threading.BoundedSemaphore(cap) if cap else None
        self.events = threading.RLock()  # one emitter at a time: the bus, the result
        self.loading = runner.write_lock  # one load at a time into the warehouse
        self.local = threading.local()
        self.cursors: list[duckdb.DuckDBPyConnection] = []
        self.loaded_at: dict[str, datetime] = {}  # the object's loaded batches: first load time
        self.history: list[StagedBatch] = []  # its stage zone (for new_columns: evolve)

    # -- the run ------------------------------------------------------------------------------
    def run(self, starts: Sequence[datetime]) -> BackfillResult:
        runner, obj = self.runner, self.obj
        result = runner._start("backfill", obj.name, [obj])
        outcomes: list[PartitionOutcome] = []
        plan = PartitionPlan(obj.name, "day", [], [])
        with runner._finishing(result):
            object_step = runner._step_started(result, obj, None, OBJECT_STEP, object_step=True)
            error = None
            try:
                plan = plan_partitions(runner.project, obj, self.source, runner.warehouse, starts)
                self._say_plan(result, plan)
                if self.on_plan is not None:
                    self.on_plan(plan)
                self.loaded_at = {
                    str(r["batch_id"]): r["loaded_at"]
                    for r in runner.warehouse.ledger()
                    if r["object"] == obj.name
                }
                self.history = runner.lake.batches(obj.name)
                outcomes = self._run_partitions(result, plan.partitions)
            except Exception as exc:
                error, fields = describe(exc)
                runner._log(result, "error", error, obj, **fields)
                result.outcomes.append(
                    BatchOutcome(obj.name, None, None, "extract", "failed", error=error)
                )
            finally:
                for cursor in self.cursors:
                    cursor.close()
            status = object_outcome(result.outcomes[:])
            failed = [p for p in outcomes if p.status == "failed"]
            if failed and error is None:
                error = f"{len(failed)} partition(s) failed: " + ", ".join(p.key for p in failed)
            runner._count(result, obj)
            runner._step_finished(result, object_step, obj, None, OBJECT_STEP, status, error)
        outcomes.sort(key=lambda p: p.key)
        run = runner._finish(result)
        return BackfillResult(run, obj.name, plan.grain, self.workers, outcomes, plan.unmatched)

    def _say_plan(self, result: RunResult, plan: PartitionPlan) -> None:
        files = sum(len(p.items) for p in plan.partitions)
        self.runner._log(
            result,
            "info",
            f"{self.obj.name}: backfill of {len(plan.partitions)} {plan.grain} partition(s)"
            + (f", {files} file(s)" if isinstance(self.source, FilesSourceReader) else "")
            + f" on {self.workers} worker(s)",
            self.obj,
            event="backfill_plan",
            partitions=len(plan.partitions),
            files=files,
        )
        if plan.unmatched:
            shown = ", ".join(plan.unmatched[:5]) + (" …" if len(plan.unmatched) > 5 else "")
            self.runner._log(
                result,
                "warning",
                f"{self.obj.name}: {len(plan.unmatched)} file(s) match files: but not the "
                f"partition_by path, so belong to no partition: {shown}",
                self.obj,
                event="unpartitioned",
                files=plan.unmatched,
            )

    def _run_partitions(
        self, result: RunResult, works: Sequence[PartitionWork]
    ) -> list[PartitionOutcome]:
        outcomes: list[PartitionOutcome] = []
        if self.workers == 1:
            for work in works:
                outcomes.append(self._partition(result, work))
                if self.on_partition is not None:
                    self.on_partition(outcomes[-1])
            return outcomes
        with ThreadPoolExecutor(self.workers, thread_name_prefix="penstock-partition") as pool:
            futures = [pool.submit(self._partition, result, work) for work in works]
            for future in as_completed(futures):
                outcomes.append(future.result())
                if self.on_partition is not None:
                    self.on_partition(outcomes[-1])
        return outcomes

    # -- one partition ------------------------------------------------------------------------
    def _partition(self, result: RunResult, work: PartitionWork) -> PartitionOutcome:
        runner, obj = self.runner, self.obj
        outcome = PartitionOutcome(work.key, files=len(work.items))
        with self.events:
            step_id = runner._step_started(result, obj, None, PARTITION_STEP, source_file=work.key)
        try:
            if work.unsettled:
                raise SourceError(
                    f"partition {work.key}: {len(work.unsettled)} file(s) still being written "
                    f"({', '.join(work.unsettled[:3])}); back-fill it again once they settle",
                    object=obj.name,
                )
            cursor = self._cursor()
            with self.source_slots or nullcontext():
                batches = self._extract(result, work, cursor)
            outcome.batches = [b.batch_id for b in batches]
            if not batches:
                self._empty(result, work, outcome)
            elif (
                not self.force
                and work.recorded == outcome.batches
                and all(b in self.loaded_at for b in outcome.batches)
            ):
                outcome.status = "unchanged"
                self._release(batches)
            else:
                self._load(result, work, batches, cursor, outcome)
                self._release(batches)
                self._supersede(result, work, outcome)
        except Exception as exc:
            outcome.status = "failed"
            self._hold(result, work, outcome)
            if isinstance(exc, _Failed):
                outcome.error = str(exc)
            else:
                message, fields = describe(exc)
                outcome.error = message
                with self.events:
                    runner._log(result, "error", message, obj, partition=work.key, **fields)
                    result.outcomes.append(
                        BatchOutcome(
                            obj.name,
                            None,
                            work.key,
                            PARTITION_STEP,
                            "failed",
                            error=message,
                            retryable=isinstance(exc, TransientError),
                        )
                    )
        with self.events:
            runner._log(
                result,
                "error" if outcome.status == "failed" else "info",
                f"{obj.name}: partition {work.key} {outcome.status}"
                + (f": {outcome.error}" if outcome.error else "")
                + (f", {outcome.rows_loaded} row(s) loaded" if outcome.status != "failed" else ""),
                obj,
                event="partition",
                partition=work.key,
                status=outcome.status,
            )
            runner._step_finished(
                result,
                step_id,
                obj,
                None,
                PARTITION_STEP,
                _STEP_STATUS[outcome.status],
                outcome.error,
                source_file=work.key,
            )
        return outcome

    def _hold(self, result: RunResult, work: PartitionWork, outcome: PartitionOutcome) -> None:
        """A partition failed: the batches it staged that never loaded are marked skipped, so
        a plain `penstock run` does not load them without replacing the partition (back-filling
        it again takes them back)."""
        lake = self.runner.lake
        marker = SkipMarker(
            reason=f"the backfill of partition {work.key} failed (run {result.run_id}): "
            f"back-fill it again (penstock backfill {self.obj.name} --partition {work.key})",
            by="penstock backfill",
            at=utcnow(),
        )
        for batch_id in outcome.batches:
            if batch_id in self.loaded_at:
                continue
            batch = lake.staged_batch(self.obj.name, batch_id)
            if batch is not None:
                lake.skip_batch(batch, marker)

    def _held(self, result: RunResult, work: PartitionWork, batch: StagedBatch) -> StagedBatch:
        """A batch the partition is about to load, marked skipped until its load commits: a
        process killed in between leaves it held, so a plain `penstock run` cannot load it
        without replacing the partition (back-filling it again takes it back)."""
        marker = SkipMarker(
            reason=f"the backfill of partition {work.key} did not finish (run {result.run_id}): "
            f"back-fill it again (penstock backfill {self.obj.name} --partition {work.key})",
            by="penstock backfill",
            at=utcnow(),
        )
        return self.runner.lake.skip_batch(batch, marker)

    def _release(self, batches: Sequence[StagedBatch]) -> None:
        """The partition's batches loaded (or were loaded already): no longer held."""
        for batch in batches:
            self.runner.lake.unskip_batch(batch)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's own connection to the warehouse's DuckDB (for staging, validation
        and, under the load lock, its load)."""
        cursor: duckdb.DuckDBPyConnection | None = getattr(self.local, "cursor", None)
        if cursor is None:
            cursor = self.runner.warehouse.conn.cursor()
            cursor.execute("SET TimeZone = 'UTC'")
            cursor.execute("SET enable_progress_bar = false")
            install_key(cursor, self.runner.project.privacy.key)
            self.local.cursor = cursor
            with self.events:
                self.cursors.append(cursor)
        return cursor

    def _extract(
        self, result: RunResult, work: PartitionWork, cursor: duckdb.DuckDBPyConnection
    ) -> list[StagedBatch]:
        if isinstance(self.source, DatabaseSourceReader):
            return self._extract_window(result, work)
        assert isinstance(self.source, FilesSourceReader)
        runner, obj, lake = self.runner, self.obj, self.runner.lake
        if not work.items:
            return []
        with self.events:
            step_ids = [
                runner._step_started(result, obj, None, "stage", source_file=i.display_name)
                for i in work.items
            ]
        try:
            stagings = self.source.stage_many(cursor, obj, work.items, lake)
        except Exception as exc:
            message, _ = describe(exc)
            with self.events:
                for step_id in step_ids:
                    runner._step_finished(result, step_id, obj, None, "stage", "failed", message)
            raise
        batches: dict[str, StagedBatch] = {}
        problem: str | None = None
        with self.events:
            for step_id, staging in zip(step_ids, stagings, strict=True):
                batch = staging.batch
                if staging.status in ("staged", "duplicate") and batch is not None:
                    batch = self._held(result, work, batch)
                    if staging.status == "staged":
                        runner._emit_batch_staged(result, step_id, obj, batch)
                        runner._step_finished(
                            result, step_id, obj, batch.batch_id, "stage", "success", batch=batch
                        )
                    else:
                        runner._step_finished(
                            result, step_id, obj, batch.batch_id, "stage", "skipped"
                        )
                    batches.setdefault(batch.batch_id, batch)
                    continue
                error = staging.error
                message = (
                    describe(error)[0]
                    if isinstance(error, Exception)
                    else f"{staging.item.display_name} could not be staged ({staging.status})"
                )
                runner._step_finished(result, step_id, obj, None, "stage", "failed", message)
                result.outcomes.append(
                    BatchOutcome(
                        obj.name,
                        None,
                        staging.item.display_name,
                        "stage",
                        "failed",
                        error=message,
                        retryable=isinstance(error, TransientError),
                    )
                )
                runner._log(result, "error", message, obj, partition=work.key)
                problem = problem or message
        if problem is not None:
            raise _Failed(problem)
        return list(batches.values())

    def _extract_window(self, result: RunResult, work: PartitionWork) -> list[StagedBatch]:
        runner, obj = self.runner, self.obj
        assert isinstance(self.source, DatabaseSourceReader)
        what = f"{self.source.describe(obj)} [{work.key}]"
        with self.events:
            step_id = runner._step_started(result, obj, None, "stage", source_file=what)
        try:
            extracted = self.source.extract_partition(obj, runner.lake, work.start, work.end)
        except Exception as exc:
            message, _ = describe(exc)
            with self.events:
                runner._step_finished(result, step_id, obj, None, "stage", "failed", message)
            raise
        batch = self._held(result, work, extracted.batch)
        with self.events:
            if extracted.duplicate:
                runner._step_finished(result, step_id, obj, batch.batch_id, "stage", "skipped")
            else:
                runner._emit_batch_staged(result, step_id, obj, batch)
                runner._step_finished(
                    result, step_id, obj, batch.batch_id, "stage", "success", batch=batch
                )
        return [batch]

    def _empty(self, result: RunResult, work: PartitionWork, outcome: PartitionOutcome) -> None:
        """No file for the partition: its rows go (it is recorded empty), unless it was
        recorded empty already."""
        if work.recorded == [] and not work.replacing.batch_ids and not self.force:
            outcome.status = "unchanged"
            return
        with self.loading:
            self.runner.warehouse.clear_partition(self.obj, work.replacing, result.run_id)
        outcome.status = "empty"
        outcome.replaced = len(work.replacing.batch_ids)
        self._supersede(result, work, outcome)

    def _load(
        self,
        result: RunResult,
        work: PartitionWork,
        batches: list[StagedBatch],
        cursor: duckdb.DuckDBPyConnection,
        outcome: PartitionOutcome,
    ) -> None:
        """Validate the partition's batches on this thread's connection, then load them
        (under the load lock) replacing the partition, in one transaction."""
        runner, obj, warehouse = self.runner, self.obj, self.runner.warehouse
        with self.events:
            step_ids = [
                runner._step_started(
                    result, obj, b.batch_id, "load", source_file=b.manifest.source_file
                )
                for b in batches
            ]
        validation = None
        now = datetime.now(UTC)
        try:
            contract = self._in_partition(_contract(obj, batches, self.history), work)
            validation = validate_chunk(cursor, contract, batches)
            with self.events:
                for batch, v, step_id in zip(batches, validation.results, step_ids, strict=True):
                    runner._working_on(obj, step_id)
                    runner._report_validation(result, contract, batch, v)
            with self.loading, self._borrowed(cursor):
                seqs = [s for s, v in enumerate(validation.results, 1) if v.rows_recorded]
                if seqs:
                    ids = [batches[s - 1].batch_id for s in seqs]
                    target = (
                        runner.lake.quarantine_path(obj.name, ids[0])
                        if len(ids) == 1
                        else runner.lake.quarantine_chunk_path(obj.name, ids)
                    )
                    warehouse.write_quarantine_file(validation, seqs, target)
                fault_point("before_load_commit")
                loads = warehouse.load_chunk(
                    contract,
                    validation,
                    run_id=result.run_id,
                    loaded_at=[self.loaded_at.get(b.batch_id) or now for b in batches],
                    replacing=work.replacing,
                )
        except Exception as exc:
            message, fields = describe(exc)
            with self.events:
                first = batches[0]
                runner._step_finished(
                    result, step_ids[0], obj, first.batch_id, "load", "failed", message, exc=exc
                )
                runner._log(result, "error", message, obj, partition=work.key, **fields)
                result.outcomes.append(
                    BatchOutcome(
                        obj.name,
                        first.batch_id,
                        first.manifest.source_file,
                        "load",
                        "failed",
                        rows_in=first.manifest.rows_in,
                        error=message,
                        retryable=isinstance(exc, TransientError),
                    )
                )
                for batch, step_id in zip(batches[1:], step_ids[1:], strict=True):
                    runner._step_finished(result, step_id, obj, batch.batch_id, "load", "skipped")
            raise _Failed(message) from exc
        finally:
            if validation is not None:
                validation.drop(cursor)
        fault_point("after_load")
        with self.events:
            done = [
                _loaded(runner, result, obj, batch, step_id, v, load, shared=len(batches) > 1)
                for batch, step_id, v, load in zip(
                    batches, step_ids, validation.results, loads, strict=True
                )
            ]
            result.outcomes.extend(done)
        outcome.status = "warning" if any(o.status == "warning" for o in done) else "success"
        outcome.rows_in = sum(o.rows_in for o in done)
        outcome.rows_loaded = sum(o.rows_loaded for o in done)
        outcome.rows_quarantined = sum(o.rows_quarantined for o in done)

    def _in_partition(self, contract: ObjectSpec, work: PartitionWork) -> ObjectSpec:
        """A files object with a partition column: a row of the partition's files whose
        column falls outside the partition breaks the check `in_partition` (quarantined,
        never loaded into another partition's range, so partitions replace independently)."""
        spec = contract.partition_by
        if spec is None or spec.column is None or not isinstance(self.source, FilesSourceReader):
            return contract
        within = f"{ident(spec.column)} IS NULL OR {work.replacing.within()}"
        check = ExpressionCheck(name="in_partition", expression=within)
        return contract.model_copy(update={"checks": [*contract.checks, check]})

    @contextmanager
    def _borrowed(self, cursor: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """The warehouse works on `cursor` meanwhile (the load lock is held): the chunk's
        temp tables live in that connection."""
        warehouse = self.runner.warehouse
        own = warehouse.conn
        warehouse.conn = cursor
        try:
            yield
        finally:
            warehouse.conn = own

    def _supersede(self, result: RunResult, work: PartitionWork, outcome: PartitionOutcome) -> None:
        """Mark the batches the partition held before and holds no more skipped in the lake:
        no later run or rebuild loads them again."""
        lake = self.runner.lake
        gone = [b for b in work.replacing.batch_ids if b not in outcome.batches]
        marker = SkipMarker(
            reason=f"replaced by the backfill of partition {work.key} (run {result.run_id})",
            by="penstock backfill",
            at=utcnow(),
        )
        for batch_id in gone:
            batch = lake.staged_batch(self.obj.name, batch_id)
            if batch is not None and batch.skip is None:
                lake.skip_batch(batch, marker)
        outcome.replaced = len(gone)
