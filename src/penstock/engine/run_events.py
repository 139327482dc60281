"""The runner's typed events (a base of `Runner`): run and step boundaries with durations,
bytes, row counts per reason, the datasets read and written with their schemas, and the
domain events sinks build on (`source_checked`, `batch_staged`, `schema_drift` (sent from
engine/schema_history.py),
`checks_evaluated`, `batch_loaded`). The runner calls these at its emit points; what each
event holds, and the order a run emits them in, is documented in observe/events.py.

Nothing here touches data: events are built from what the steps already computed (manifests,
validation counts, load results), one per step or batch, never per row.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from penstock.catalog import ObjectSpec, Project, RowCountCheck
from penstock.catalog.batch_checks import DuplicateRateCheck, FreshnessCheck, ReconcileCheck
from penstock.engine import datasets
from penstock.engine.results import BatchStatus, RunResult
from penstock.errors import ContractViolation, PenstockError, TransientError, first_line
from penstock.lake import Manifest, StagedBatch
from penstock.memo import per_spec
from penstock.observe import (
    OBJECT_STEP,
    BatchLoaded,
    BatchMeasured,
    BatchStaged,
    CheckResult,
    ChecksEvaluated,
    Dataset,
    EventBus,
    RunFinished,
    RunStarted,
    SourceChecked,
    StepFinished,
    StepRetried,
    StepStarted,
    new_id,
    utcnow,
)
from penstock.observe.names import METADATA_SINK, QUALITY_SINK
from penstock.quality.scores import batch_metrics, batch_scores
from penstock.quality.validate import BatchValidation
from penstock.warehouse import LoadResult

# reasons any batch may carry besides the contract's rules: records the parser could not split
# or decode
_RECORD_RULES = ("malformed", "encoding")


BATCHES_KEPT = 4096  # batches whose datasets a runner keeps (`StepClock.batches`)


@dataclass
class StepClock:
    """When each open step started, and which step each object is at (for log lines)."""

    run_started: float = 0.0
    started: dict[str, tuple[float, datetime]] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)  # object -> step running or just ended
    parent: dict[str, str] = field(default_factory=dict)  # object -> its object step
    measured: bool = False  # a batch_measured was emitted since the last run ended
    # a load step's outputs by (object, with its quarantine table), built once a run
    outputs: dict[tuple[str, bool], tuple[Dataset, ...]] = field(default_factory=dict)
    # a batch's origin and stage datasets by batch id (with the manifest and directory they
    # were built from), up to `BATCHES_KEPT`
    batches: dict[str, tuple[Manifest, Path, Dataset, Dataset]] = field(default_factory=dict)


class RunEvents:
    project: Project
    bus: EventBus
    clock: StepClock
    attempt: int  # the try of the object's work going on (engine/attempts.py)

    # -- runs -----------------------------------------------------------------------------
    def _emit_run_started(self, result: RunResult, command: str, selector: str | None) -> None:
        self.clock.run_started = time.monotonic()
        self.clock.outputs.clear()
        self.clock.batches.clear()
        self.bus.emit(
            RunStarted(
                run_id=result.run_id,
                project=self.project.name,
                project_hash=self.project.project_hash,
                command=command,
                selector=selector,
                objects=tuple(result.selected),
                pid=os.getpid(),
                host=socket.gethostname(),
            )
        )
        # the run is recorded before any work starts (workers reach their first step soon):
        # a run killed from here on is found `running`, then marked abandoned
        self.bus.flush(only=(METADATA_SINK,))

    def _emit_run_finished(self, result: RunResult, error: str | None) -> None:
        loads = result.loads()
        if self.clock.measured:
            # the quality sink judges the batches' metrics on its thread and sends their
            # anomalies: they reach the other sinks before the run's end does (only it is
            # waited for here; a slow hook does not delay the run's end)
            self.clock.measured = False
            self.bus.flush(only=(QUALITY_SINK,))
        self.bus.emit(
            RunFinished(
                run_id=result.run_id,
                status=result.status,
                error=error,
                project=self.project.name,
                command=result.command,
                outcome=result.outcome,
                duration_s=time.monotonic() - self.clock.run_started,
                batches_loaded=sum(1 for o in loads if o.status != "skipped"),
                rows_in=sum(o.rows_in for o in loads),
                rows_loaded=sum(o.rows_loaded for o in loads),
                rows_quarantined=sum(o.rows_quarantined for o in loads),
                rows_duplicate=sum(o.rows_duplicate for o in loads),
                failed_objects=tuple(dict.fromkeys(f.object for f in result.failures)),
            )
        )
        self.bus.flush()  # the run is over: every sink catches up before anyone reads

    # -- steps ----------------------------------------------------------------------------
    def _working_on(self, obj: ObjectSpec, step_id: str) -> None:
        """The step the object's next log lines belong to (several of its steps may be open
        at once: the files of a chunk stage and load together)."""
        self.clock.current[obj.name] = step_id

    def _step_started(
        self,
        result: RunResult,
        obj: ObjectSpec,
        batch_id: str | None,
        step: str,
        *,
        source_file: str | None = None,
        object_step: bool = False,
    ) -> str:
        step_id = new_id()
        at = utcnow()
        self.clock.started[step_id] = (time.monotonic(), at)
        self.clock.current[obj.name] = step_id
        parent = None if object_step else self.clock.parent.get(obj.name)
        if object_step:
            self.clock.parent[obj.name] = step_id
        self.bus.emit(
            StepStarted(
                run_id=result.run_id,
                at=at,
                step_id=step_id,
                object=obj.name,
                batch_id=batch_id,
                step=step,
                attempt=self.attempt,
                source_file=source_file,
                parent_step_id=parent,
            )
        )
        return step_id

    def _retrying(
        self,
        result: RunResult,
        obj: ObjectSpec,
        step_id: str,
        attempt: int,
        error: str,
        delay_s: float,
    ) -> None:
        """The object's try (its object step, `step_id`) failed transiently: try `attempt`
        follows after `delay_s`."""
        self.bus.emit(
            StepRetried(
                run_id=result.run_id,
                step_id=step_id,
                object=obj.name,
                batch_id=None,
                step=OBJECT_STEP,
                attempt=attempt,
                error=error,
                delay_s=delay_s,
            )
        )

    def _step_finished(
        self,
        result: RunResult,
        step_id: str,
        obj: ObjectSpec,
        batch_id: str | None,
        step: str,
        status: BatchStatus,
        error: str | None = None,
        validation: BatchValidation | None = None,
        *,
        batch: StagedBatch | None = None,
        load: LoadResult | None = None,
        source_file: str | None = None,
        bytes_in: int | None = None,
        exc: BaseException | None = None,
        shared: bool = False,
    ) -> None:
        """A step ended: its `StepFinished` and, for a loaded batch, `BatchLoaded` and
        `BatchMeasured`. `shared`: the batch was loaded together with others (micro-batch)."""
        clock, started_at = self.clock.started.pop(step_id, (None, None))
        if bytes_in is None and batch is not None:
            bytes_in = batch.manifest.size_bytes
        duration = None if clock is None else time.monotonic() - clock
        v = validation
        manifest = batch.manifest if batch is not None else None
        inputs: tuple[Dataset, ...] = ()
        outputs: tuple[Dataset, ...] = ()
        if batch is not None and manifest is not None:
            landing, staged = self._batch_datasets(batch)
            if step == "load":
                inputs = (staged, landing)
                outputs = self._load_outputs(obj, v)
            else:
                inputs, outputs = (landing,), (staged,)
        if load is not None and v is not None and batch is not None and status != "failed":
            self._emit_batch_loaded(
                result, step_id, obj, batch, v, load, duration, inputs, shared=shared
            )
        if step == "load" and status == "failed" and v is None and batch is not None:
            self._emit_checks_refused(result, step_id, obj, batch, exc)
        parent = self.clock.parent.get(obj.name)
        if step_id == parent:  # the object's work ended
            del self.clock.parent[obj.name]
            self.clock.current.pop(obj.name, None)
        self.bus.emit(
            StepFinished(
                run_id=result.run_id,
                step_id=step_id,
                object=obj.name,
                batch_id=batch_id,
                step=step,
                status=status,
                attempt=self.attempt,
                error=error,
                error_type=type(exc).__name__ if exc is not None else None,
                retryable=isinstance(exc, TransientError),
                rows_in=v.rows_in if v else 0,
                rows_loaded=v.rows_loaded if v else 0,
                rows_quarantined=v.rows_quarantined if v else 0,
                rows_duplicate=v.rows_duplicate if v else 0,
                rows_invalid=v.rows_invalid if v else 0,
                rows_warned=v.rows_warned if v else 0,
                reason_counts=dict(v.reason_counts) if v else {},
                started_at=started_at,
                duration_s=duration,
                bytes_in=bytes_in,
                source_file=source_file or (manifest.source_file if manifest else None),
                inputs=inputs,
                outputs=outputs,
                parent_step_id=None if step_id == parent else parent,
            )
        )

    def _batch_datasets(self, batch: StagedBatch) -> tuple[Dataset, Dataset]:
        """A batch's origin (its landing file or database relation) and its stage directory
        as datasets: built once for its stage step, its batch_staged event and its load step
        (thousands of small files: three times each was a path resolved and a schema listed
        three times)."""
        known = self.clock.batches.get(batch.batch_id)
        if known is not None and known[0] is batch.manifest and known[1] == batch.directory:
            return known[2], known[3]
        landing = datasets.batch_origin(self.project, batch.manifest)
        staged = datasets.staged_batch(batch)
        if len(self.clock.batches) >= BATCHES_KEPT:
            self.clock.batches.clear()
        self.clock.batches[batch.batch_id] = (batch.manifest, batch.directory, landing, staged)
        return landing, staged

    def _load_outputs(
        self, obj: ObjectSpec, validation: BatchValidation | None
    ) -> tuple[Dataset, ...]:
        quarantined = validation is not None and validation.rows_recorded > 0
        known = self.clock.outputs.get((obj.name, quarantined))
        if known is not None:
            return known
        table = datasets.object_table(self.project, obj)
        outputs = (table, datasets.quarantine_table(self.project, obj)) if quarantined else (table,)
        self.clock.outputs[(obj.name, quarantined)] = outputs
        return outputs

    def _emit_batch_loaded(
        self,
        result: RunResult,
        step_id: str,
        obj: ObjectSpec,
        batch: StagedBatch,
        v: BatchValidation,
        load: LoadResult,
        duration: float | None,
        inputs: tuple[Dataset, ...],
        *,
        shared: bool = False,
    ) -> None:
        self.bus.emit(
            BatchLoaded(
                run_id=result.run_id,
                step_id=step_id,
                object=obj.name,
                batch_id=batch.batch_id,
                source_file=batch.manifest.source_file,
                table=obj.table_name,
                load=obj.load,
                rows_in=v.rows_in,
                rows_loaded=v.rows_loaded,
                rows_quarantined=v.rows_quarantined,
                rows_duplicate=v.rows_duplicate,
                rows_invalid=v.rows_invalid,
                rows_warned=v.rows_warned,
                rows_inserted=load.rows_inserted,
                rows_updated=load.rows_updated,
                rows_unchanged=load.rows_unchanged,
                rows_stale=load.rows_stale,
                skipped=load.skipped,
                kept_previous=load.kept_previous,
                loaded_at=load.loaded_at,
                duration_s=duration,
                reason_counts=dict(v.reason_counts),
                inputs=inputs,
                outputs=self._load_outputs(obj, v),
            )
        )
        if not load.skipped:
            # a batch loaded with others took their time: no duration of its own to watch
            measured = None if shared else duration
            try:
                self._emit_batch_measured(result, obj, batch, v, load, measured)
            except Exception as exc:  # scoring never fails a load that committed
                self.bus.log(
                    result.run_id,
                    "warning",
                    f"{obj.name}: batch {batch.batch_id} not scored: {first_line(exc)}",
                    object=obj.name,
                    batch_id=batch.batch_id,
                )

    def _emit_batch_measured(
        self,
        result: RunResult,
        obj: ObjectSpec,
        batch: StagedBatch,
        v: BatchValidation,
        load: LoadResult,
        duration: float | None,
    ) -> None:
        """The batch's DQ scores and checkpoint metrics (from the validation's counts)."""
        m = batch.manifest
        self.clock.measured = True
        self.bus.emit(
            BatchMeasured(
                run_id=result.run_id,
                object=obj.name,
                batch_id=batch.batch_id,
                source_file=m.source_file,
                batch_time=m.extracted_at,
                rows_in=v.rows_in,
                scores=batch_scores(
                    obj,
                    self.project.quality,
                    rows_in=v.rows_in,
                    rows_invalid=v.rows_invalid,
                    rows_duplicate=v.rows_duplicate,
                    dimension_rows=v.dimension_rows,
                ),
                metrics=batch_metrics(
                    obj,
                    rows_in=v.rows_in,
                    rows_quarantined=v.rows_quarantined,
                    rows_duplicate=v.rows_duplicate,
                    reason_counts=v.reason_counts,
                    null_counts=v.null_counts,
                    duration_s=duration,
                    extracted_at=m.extracted_at,
                    loaded_at=load.loaded_at,
                ),
            )
        )

    # -- what steps found -----------------------------------------------------------------
    def _emit_source_checked(
        self,
        result: RunResult,
        obj: ObjectSpec,
        *,
        source: str,
        kind: str,
        root: object,
        started: float,
        files: int | None = None,
        exc: Exception | None = None,
    ) -> None:
        error = None
        if exc is not None:
            error = exc.message if isinstance(exc, PenstockError) else f"{type(exc).__name__}"
        self.bus.emit(
            SourceChecked(
                run_id=result.run_id,
                object=obj.name,
                source=source,
                source_kind=kind,
                available=exc is None,
                files=files,
                latency_s=time.monotonic() - started,
                error=error,
                dataset=Dataset(namespace="file", name=str(root), role="landing"),
            )
        )

    def _emit_batch_staged(
        self, result: RunResult, step_id: str, obj: ObjectSpec, batch: StagedBatch
    ) -> None:
        m = batch.manifest
        clock = self.clock.started.get(step_id)
        landing, staged = self._batch_datasets(batch)
        self.bus.emit(
            BatchStaged(
                run_id=result.run_id,
                step_id=step_id,
                object=obj.name,
                batch_id=batch.batch_id,
                source=m.source,
                source_file=m.source_file,
                format=m.format,
                bytes=m.size_bytes,
                rows=m.rows,
                rows_malformed=m.rows_malformed,
                content_hash=m.content_hash,
                extracted_at=m.extracted_at,
                duration_s=None if clock is None else time.monotonic() - clock[0],
                input=landing,
                output=staged,
            )
        )

    def _emit_checks(
        self, result: RunResult, obj: ObjectSpec, batch: StagedBatch, v: BatchValidation
    ) -> None:
        step_id = self.clock.current.get(obj.name, "")
        self.bus.emit(
            ChecksEvaluated(
                run_id=result.run_id,
                step_id=step_id,
                object=obj.name,
                batch_id=batch.batch_id,
                source_file=batch.manifest.source_file,
                on_invalid=obj.on_invalid,
                rows_in=v.rows_in,
                rows_invalid=v.rows_invalid,
                rows_quarantined=v.rows_quarantined,
                rows_warned=v.rows_warned,
                checks=check_results(obj, v.reason_counts, [*v.failed_checks, *v.warned_checks]),
                reason_counts=dict(v.reason_counts),
                missing_columns=tuple(v.missing_columns),
                extra_columns=tuple(v.extra_columns),
            )
        )

    def _emit_checks_refused(
        self, result: RunResult, step_id: str, obj: ObjectSpec, batch: StagedBatch, exc: object
    ) -> None:
        """A batch that broke its contract under `on_invalid: fail` stops validation with
        its rows per reason (the error's `reasons`): its checks, without the rows counted."""
        reasons = exc.fields.get("reasons") if isinstance(exc, ContractViolation) else None
        if not isinstance(reasons, dict) or not reasons:
            return
        counts = {str(r): int(n) for r, n in reasons.items()}
        self.bus.emit(
            ChecksEvaluated(
                run_id=result.run_id,
                step_id=step_id,
                object=obj.name,
                batch_id=batch.batch_id,
                source_file=batch.manifest.source_file,
                on_invalid=obj.on_invalid,
                rows_in=batch.manifest.rows_in,
                rows_invalid=None,
                rows_quarantined=0,
                rows_warned=0,
                checks=check_results(obj, counts, [r for r in counts if r == "check:row_count"]),
                reason_counts=counts,
            )
        )


def check_results(
    obj: ObjectSpec, reason_counts: Mapping[str, int], failed_checks: Sequence[str]
) -> tuple[CheckResult, ...]:
    """Every rule of `obj`'s contract as a batch met it (rows per reason, batch checks that
    failed), in contract order, then the record rules (malformed, encoding) and any other
    reason the batch's rows carry."""
    counts = dict(reason_counts)
    rules, met = _contract_rules(obj)
    named = {name for name, *_ in rules}
    extra = [(r, r.split(":", 1)[0], None, None) for r in sorted(counts) if r not in named]
    failed = set(failed_checks)
    out = []
    for n, (name, rule, column, expected) in enumerate((*rules, *extra)):
        rows = counts.get(name, 0)
        if rows == 0 and name not in failed and n < len(met):
            out.append(met[n])  # the same passed result for every batch that met the rule
            continue
        out.append(
            CheckResult(
                name=name,
                rule=rule,
                column=column,
                passed=rows == 0 and name not in failed,
                failed_rows=rows,
                expected=expected,
            )
        )
    return tuple(out)


_Rule = tuple[str, str, str | None, str | None]  # name, rule, column, expected


@per_spec
def _contract_rules(obj: ObjectSpec) -> tuple[tuple[_Rule, ...], tuple[CheckResult, ...]]:
    """Every rule of `obj`'s contract as `check_results` lists them, and each one's result
    when a batch met it, in the same order (once per spec: asked for every batch)."""
    rules: list[_Rule] = []
    for name, spec in obj.columns.items():
        rules.append((f"type:{name}", "type", name, spec.type))
        if obj.is_required(name):
            rules.append((f"required:{name}", "required", name, "a value"))
        if spec.min is not None:
            rules.append((f"min:{name}", "min", name, f">= {spec.min}"))
        if spec.max is not None:
            rules.append((f"max:{name}", "max", name, f"<= {spec.max}"))
        if spec.in_ is not None:
            rules.append((f"in:{name}", "in", name, f"in {list(spec.in_)}"))
        if spec.pattern is not None:
            rules.append((f"pattern:{name}", "pattern", name, spec.pattern))
        if spec.between is not None:
            low, high = spec.between
            rules.append((f"between:{name}", "between", name, f"between {low} and {high}"))
        if spec.length is not None:
            limits = [f">= {spec.length.min}"] if spec.length.min is not None else []
            limits += [f"<= {spec.length.max}"] if spec.length.max is not None else []
            rules.append((f"length:{name}", "length", name, "length " + " and ".join(limits)))
        if spec.references is not None:
            rules.append((f"references:{name}", "references", name, f"in {spec.references}"))
        if spec.unique:
            rules.append((f"unique:{name}", "unique", name, "no other row holds the value"))
    for check in obj.checks:
        if isinstance(check, RowCountCheck):
            bounds = check.row_count
            wanted = [f"at least {bounds.min}"] if bounds.min is not None else []
            wanted += [f"at most {bounds.max}"] if bounds.max is not None else []
            rules.append(("check:row_count", "row_count", None, " and ".join(wanted) + " rows"))
        elif isinstance(check, FreshnessCheck):
            age = check.freshness.max_age or (obj.sla.freshness if obj.sla else None)
            column = check.freshness.column
            rules.append(("check:freshness", "freshness", column, f"newest within {age}"))
        elif isinstance(check, DuplicateRateCheck):
            share = f"{check.duplicate_rate.max:.4%}".rstrip("0").rstrip(".")
            rules.append(
                ("check:duplicate_rate", "duplicate_rate", None, f"at most {share} duplicates")
            )
        elif isinstance(check, ReconcileCheck):
            rules.append(
                ("check:reconcile", "reconcile", None, "as many rows as the source counts")
            )
        else:
            rules.append((f"check:{check.name}", "check", None, check.expression))
    rules += [(rule, rule, None, None) for rule in _RECORD_RULES]
    met = tuple(
        CheckResult(
            name=name, rule=rule, column=column, passed=True, failed_rows=0, expected=expected
        )
        for name, rule, column, expected in rules
    )
    return tuple(rules), met
