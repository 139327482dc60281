"""A run of a database or REST object: extract its next window into the stage zone, then load every
pending batch in extraction order (the window just staged last).

The window's watermark is in its batch's manifest (sources/window.py): a run killed after
staging leaves the batch pending, and the next run loads it before the window it extracts
itself, which starts where the pending one ends. A failed extraction leaves nothing staged;
the batches staged before it still load.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from penstock.catalog import ObjectSpec
from penstock.engine import datasets
from penstock.engine.failures import describe
from penstock.engine.loading import load_pending
from penstock.engine.results import BatchOutcome, RunResult
from penstock.errors import PenstockError, TransientError
from penstock.faults import fault_point
from penstock.lake.stage import extraction_order
from penstock.observe import SourceChecked

if TYPE_CHECKING:
    from penstock.engine.runner import Runner
    from penstock.sources import WindowSource


def run_database_object(
    runner: Runner, result: RunResult, obj: ObjectSpec, source: WindowSource
) -> None:
    staged = runner.lake.batches(obj.name)
    what = source.describe(obj)
    step_id = runner._step_started(result, obj, None, "stage", source_file=what)
    started = time.monotonic()
    try:
        runner._check_deadline()
        extracted = source.extract(obj, runner.lake, staged)
    except Exception as exc:
        _checked(runner, result, obj, source, started, exc)
        error = runner._timed(exc)
        message, fields = describe(error)
        runner._step_finished(result, step_id, obj, None, "stage", "failed", message, exc=error)
        result.outcomes.append(
            BatchOutcome(
                obj.name,
                None,
                what,
                "stage",
                "failed",
                error=message,
                retryable=isinstance(error, TransientError),
            )
        )
        runner._log(result, "error", message, obj, **fields)
    else:
        _checked(runner, result, obj, source, started, None)
        batch = extracted.batch
        window = extracted.window.describe()
        served = extracted.served
        if served.failover:
            runner._log(
                result,
                "warning",
                f"{what}: window {window} {served.describe()}",
                obj,
                batch_id=batch.batch_id,
                event="failover",
                server=served.display,
                failover=served.index,
            )
        if extracted.duplicate:
            runner._step_finished(result, step_id, obj, batch.batch_id, "stage", "skipped")
            result.outcomes.append(BatchOutcome(obj.name, batch.batch_id, what, "stage", "skipped"))
            runner._log(
                result,
                "info",
                f"{what}: window {window} holds the rows of batch {batch.batch_id} already; "
                f"nothing new",
                obj,
                batch_id=batch.batch_id,
                event="duplicate",
            )
        else:
            staged.append(batch)
            runner._emit_batch_staged(result, step_id, obj, batch)
            runner._step_finished(
                result, step_id, obj, batch.batch_id, "stage", "success", batch=batch
            )
            runner._log(
                result,
                "info",
                f"staged {what}: window {window}, {batch.manifest.rows} row(s)",
                obj,
                batch_id=batch.batch_id,
                rows=batch.manifest.rows,
                event="window",
            )
            result.outcomes.append(
                BatchOutcome(
                    obj.name,
                    batch.batch_id,
                    batch.manifest.source_file,
                    "stage",
                    "success",
                    rows_in=batch.manifest.rows_in,
                )
            )
            fault_point("after_stage")
    loaded = runner.warehouse.loaded_batches(obj.name)
    pending = sorted(
        (b for b in staged if b.batch_id not in loaded and b.skip is None), key=extraction_order
    )
    replayed = runner.warehouse.original_load_times(obj) if pending else {}
    load_pending(runner, result, obj, pending, replayed)


def _checked(
    runner: Runner,
    result: RunResult,
    obj: ObjectSpec,
    source: WindowSource,
    started: float,
    exc: Exception | None,
) -> None:
    elapsed = time.monotonic() - started
    error = None
    if exc is not None:
        error = exc.message if isinstance(exc, PenstockError) else type(exc).__name__
    runner.bus.emit(
        SourceChecked(
            run_id=result.run_id,
            object=obj.name,
            source=source.name,
            source_kind=source.spec.kind,
            available=exc is None,
            # the first answer's time (a connection, a response); else how long until it failed
            latency_s=source.reached_s if source.reached_s is not None else elapsed,
            error=error,
            dataset=datasets.database_relation(runner.project, source.name, obj.name),
        )
    )
