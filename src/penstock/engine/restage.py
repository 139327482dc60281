"""`penstock rebuild --restage`: parse the landing files of the staged batches again with the
objects' current settings (a fixed `csv: {delimiter: ";"}`, say), before the rebuild replays.

Per object, in two phases. First every staged batch whose landing file still holds the batch's
bytes is parsed again into a staging directory: same batch id (under the identity rule it was
staged with), same extraction time, same skip marker. A batch whose file is gone or no longer
holds its bytes keeps its parse, replays as staged and is reported. Then, only when every batch
that loads parsed, each new parse replaces its batch (`Lake.replace_batch`, crash safe batch by
batch) and the object replays. If one fails, nothing of the object changes (its stage zone and
its table stay as they were) and the errors name every failing file, so one command shows
them all. A skipped batch is parsed again too (an unskip then loads the current parse), but one
that fails keeps its old parse without holding the object back: it never loads.

Needs free disk about the size of the object's stage zone (the new parses wait beside the old
ones until every file parsed).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from penstock.catalog import ObjectSpec
from penstock.engine.failures import describe
from penstock.engine.results import BatchOutcome, BatchStatus, RunResult
from penstock.lake import StagedBatch
from penstock.observe import LogLevel
from penstock.sources import FilesSourceReader, source_for
from penstock.sources.base import Source

if TYPE_CHECKING:
    from penstock.engine.runner import Runner

RestageStatus = Literal["restaged", "gone", "changed", "unsupported", "failed", "discarded"]

# why a batch replays as staged, as the report words it
AS_STAGED = {
    "gone": "no longer in the landing zone",
    "changed": "changed since it was staged",
    "unsupported": "its source cannot restage",
}


@dataclass(frozen=True)
class RestageOutcome:
    """What `rebuild --restage` did with one staged batch.

    `restaged`: parsed again, the new parse replaced the old. `gone`, `changed`, `unsupported`:
    kept as staged and replayed so (see AS_STAGED). `failed`: the file cannot be read with the
    current settings (`detail` says why); the batch kept its old parse. `discarded`: parsed,
    but not put in place because another batch of the object failed.
    """

    object: str
    batch_id: str
    source_file: str
    status: RestageStatus
    detail: str | None = None

    @property
    def replayed_as_staged(self) -> bool:
        return self.status in AS_STAGED


def restage_object(runner: Runner, result: RunResult, obj: ObjectSpec) -> bool:
    """Restage `obj`'s staged batches; True when the object should replay now, False when a
    batch failed to parse and the object was left exactly as it was."""
    report = result.restage if result.restage is not None else []
    result.restage = report
    source = source_for(runner.project, obj)
    batches = runner.lake.batches(obj.name)
    if source.cannot_restage is not None or not isinstance(source, FilesSourceReader):
        reason = source.cannot_restage or "its kind cannot read a batch again"
        report += [_outcome(b, "unsupported", reason) for b in batches]
        runner._log(
            result,
            "warning",
            f"{obj.name}: cannot restage ({reason}); its {len(batches)} batch(es) replay as staged",
            obj,
            event="restage",
        )
        return True
    parses: list[tuple[StagedBatch, StagedBatch]] = []  # (batch, its new parse), not in place
    try:
        mine = [_reparse(runner, result, obj, source, b, parses) for b in batches]
        failed = [o for o, b in zip(mine, batches, strict=True) if _holds_back(o, b)]
        if failed:
            parsed = {b.batch_id for b, _ in parses}
            mine = [_outcome_discarded(o) if o.batch_id in parsed else o for o in mine]
            report += mine
            runner._log(
                result,
                "error",
                f"{obj.name}: {len(failed)} file(s) cannot be read with the current settings "
                f"({', '.join(o.source_file for o in failed[:5])}{' …' if len(failed) > 5 else ''}"
                f"); nothing restaged, {obj.table_name} not rebuilt: the stage zone and the "
                f"table are as they were. Fix the settings (or move those files out of the "
                f"landing zone: their batches then replay as staged) and run "
                f"`penstock rebuild --restage --select {obj.name}` again",
                obj,
                event="restage_failed",
                files=[o.source_file for o in failed],
            )
            return False
        while parses:
            batch, parse = parses[0]
            runner.lake.replace_batch(batch, parse)
            parses.pop(0)
    finally:
        for _, parse in parses:  # not put in place: discard
            shutil.rmtree(parse.directory, ignore_errors=True)
    report += mine
    _log_summary(runner, result, obj, mine)
    return True


def _reparse(
    runner: Runner,
    result: RunResult,
    obj: ObjectSpec,
    source: Source,
    batch: StagedBatch,
    parses: list[tuple[StagedBatch, StagedBatch]],
) -> RestageOutcome:
    """Parse one batch's landing file again (into `parses`), as a `restage` step."""
    name = batch.manifest.source_file
    step_id = runner._step_started(result, obj, batch.batch_id, "restage")
    try:
        item = source.locate(obj, batch)
        staged = (
            None
            if item is None
            else source.stage(runner.warehouse.conn, obj, item, runner.lake, restaging=batch)
        )
    except Exception as exc:
        message, fields = describe(exc)
        held = batch.skip is None
        message += f"; batch {batch.batch_id} keeps its previous parse" + (
            "" if held else " (it is skipped: it does not hold the others back)"
        )
        step: BatchStatus = "failed" if held else "warning"
        runner._step_finished(result, step_id, obj, batch.batch_id, "restage", step, message)
        result.outcomes.append(
            BatchOutcome(obj.name, batch.batch_id, name, "restage", step, error=message)
        )
        level: LogLevel = "error" if held else "warning"
        runner._log(result, level, message, obj, **{**fields, "batch_id": batch.batch_id})
        return _outcome(batch, "failed", message)
    if staged is None or staged.status != "restaged" or staged.batch is None:
        kept: RestageStatus = "gone" if staged is None else "changed"
        runner._step_finished(result, step_id, obj, batch.batch_id, "restage", "skipped")
        result.outcomes.append(BatchOutcome(obj.name, batch.batch_id, name, "restage", "skipped"))
        runner._log(
            result,
            "warning",
            f"{name}: {AS_STAGED[kept]}; batch {batch.batch_id} keeps the parse it was staged with",
            obj,
            batch_id=batch.batch_id,
            event=f"restage_{kept}",
        )
        return _outcome(batch, kept)
    parse = staged.batch
    parses.append((batch, parse))
    new, old = parse.manifest, batch.manifest
    runner._step_finished(result, step_id, obj, batch.batch_id, "restage", "success")
    result.outcomes.append(
        BatchOutcome(obj.name, batch.batch_id, name, "restage", "success", rows_in=new.rows_in)
    )
    for warning in new.warnings:
        runner._log(result, "warning", warning, obj, batch_id=batch.batch_id)
    runner._log(
        result,
        "info",
        f"parsed {name} again: {_shape(new.columns, new.rows_in, new.rows_malformed)} "
        f"(was {_shape(old.columns, old.rows_in, old.rows_malformed)})",
        obj,
        batch_id=batch.batch_id,
        event="restage",
        columns=len(new.columns),
        rows=new.rows,
        malformed=new.rows_malformed,
    )
    return _outcome(batch, "restaged")


def _holds_back(outcome: RestageOutcome, batch: StagedBatch) -> bool:
    """A batch that loads and failed to parse keeps the whole object as it was."""
    return outcome.status == "failed" and batch.skip is None


def _shape(columns: tuple[str, ...], records: int, malformed: int) -> str:
    return f"{len(columns)} column(s), {records} record(s), {malformed} malformed"


def _outcome(
    batch: StagedBatch, status: RestageStatus, detail: str | None = None
) -> RestageOutcome:
    m = batch.manifest
    return RestageOutcome(m.object, batch.batch_id, m.source_file, status, detail)


def _outcome_discarded(outcome: RestageOutcome) -> RestageOutcome:
    return RestageOutcome(
        outcome.object,
        outcome.batch_id,
        outcome.source_file,
        "discarded",
        "parsed, but not put in place: another file of the object cannot be read",
    )


def _log_summary(
    runner: Runner, result: RunResult, obj: ObjectSpec, outcomes: list[RestageOutcome]
) -> None:
    restaged = sum(o.status == "restaged" for o in outcomes)
    as_staged = [o for o in outcomes if o.replayed_as_staged]
    runner._log(
        result,
        "info",
        f"{obj.name}: restaged {restaged} of {len(outcomes)} batch(es) with the current settings"
        + (
            f"; {len(as_staged)} replay as staged: "
            + ", ".join(f"{o.source_file} ({AS_STAGED[o.status]})" for o in as_staged[:5])
            + (" …" if len(as_staged) > 5 else "")
            if as_staged
            else ""
        ),
        obj,
        event="restage_summary",
        restaged=restaged,
        as_staged=[o.source_file for o in as_staged],
    )
