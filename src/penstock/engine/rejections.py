"""Rejected files during a run: recorded once, recognised after, closed when gone.

A landing file that cannot be read at all (the source says `rejected`: a `SourceError` with
`unreadable`) is never staged: its rejection is recorded in the lake (lake/rejected.py) and its
`stage` step fails, so the run that first meets it fails and names it, but the object's other
files still stage and load (a rejected file holds nothing back: it is not a batch). Later runs
recognise it, by its state or by its content, and do not read it again: they only warn (the
object's outcome is `warning`), until its content changes (a new attempt), the object's read
settings change (the file is read again with them), or `penstock batches retry` takes the
rejection back. A rejection whose content no landing file holds any more (the file was removed
or replaced) is closed at the end of a run that read everything it was offered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from penstock.catalog import ObjectSpec
from penstock.engine.failures import describe
from penstock.engine.results import BatchOutcome, RejectedFile, RunResult
from penstock.lake import StagedBatch
from penstock.lake.rejected import Rejection
from penstock.sources.base import Source, StageResult

if TYPE_CHECKING:
    from penstock.engine.runner import Runner

_SHOWN = 5


def retry_command(object_name: str, batch_id: str) -> str:
    return f"penstock batches retry {object_name} {batch_id}"


@dataclass
class ObjectRejections:
    """One object's rejections in one run (`start` them, then report each item)."""

    runner: Runner
    result: RunResult
    obj: ObjectSpec
    records: dict[str, Rejection]
    in_force: dict[str, Rejection]
    met: dict[str, list[str]] = field(default_factory=dict)  # batch id → landing files
    touched: set[str] = field(default_factory=set)  # ids read again or rejected anew

    @classmethod
    def start(
        cls,
        runner: Runner,
        result: RunResult,
        obj: ObjectSpec,
        source: Source,
        staged: Iterable[StagedBatch],
    ) -> ObjectRejections:
        """The object's rejections; those in force (recorded under the current read settings)
        are not read again. A record whose batch is staged is obsolete and removed."""
        settings = source.read_settings(obj)
        staged_ids = {b.batch_id for b in staged}
        records: dict[str, Rejection] = {}
        for r in runner.lake.rejections(obj.name):
            if r.batch_id in staged_ids:  # staged since; the record outlived a killed run
                runner.lake.clear_rejection(r)
            else:
                records[r.batch_id] = r
        in_force = {i: r for i, r in records.items() if r.read_settings == settings}
        for r in records.values():
            if r.batch_id not in in_force:
                runner._log(
                    result,
                    "info",
                    f"{r.source_file} was rejected under other read settings of "
                    f"'{obj.name}'; read again with the current ones",
                    obj,
                    batch_id=r.batch_id,
                    event="rejected_settings_changed",
                )
        return cls(runner, result, obj, records, in_force)

    def meet(self, batch_id: str, source_file: str) -> bool:
        """Note a landing file found holding a rejection in force; False if none."""
        if batch_id not in self.in_force:
            return False
        self.met.setdefault(batch_id, []).append(source_file)
        return True

    def read(self, batch: StagedBatch) -> None:
        """A file was staged (or is a duplicate of a staged batch): a rejection of its content
        under other settings is over."""
        record = self.records.pop(batch.batch_id, None)
        if record is None:
            return
        self.touched.add(batch.batch_id)
        self.runner.lake.clear_rejection(record)
        self.runner._log(
            self.result,
            "info",
            f"{batch.manifest.source_file} (rejected earlier) reads with the current settings",
            self.obj,
            batch_id=batch.batch_id,
            event="rejection_closed",
        )

    def staged_rejected(self, staging: StageResult, step_id: str) -> None:
        """Finish the stage step of an item that cannot be read: just `rejected` (recorded
        now, the step fails), or `still_rejected` (its content was rejected earlier)."""
        if staging.status == "rejected":
            self._reject(staging, step_id)
            return
        rejected, name = staging.rejection, staging.item.display_name
        assert rejected is not None
        self.meet(rejected.batch_id, name)
        batch_id = rejected.batch_id
        self.runner._step_finished(self.result, step_id, self.obj, batch_id, "stage", "warning")
        self.runner._log(
            self.result,
            "info",
            f"{name} holds the content of {rejected.source_file}, rejected earlier "
            f"(batch {batch_id}); not read again",
            self.obj,
            batch_id=batch_id,
            event="still_rejected",
        )

    def _reject(self, staging: StageResult, step_id: str) -> None:
        """Record a file the source could not read at all; fail its stage step."""
        runner, result, obj = self.runner, self.result, self.obj
        assert staging.rejection is not None and staging.error is not None
        rejection = staging.rejection.recorded_by(result.run_id)
        runner.lake.reject(rejection)
        self.records[rejection.batch_id] = rejection
        self.in_force[rejection.batch_id] = rejection  # another file with its content: met
        self.touched.add(rejection.batch_id)
        message, fields = describe(staging.error)  # the reader's words, as before
        batch_id, name = rejection.batch_id, rejection.source_file
        runner._step_finished(result, step_id, obj, batch_id, "stage", "failed", message)
        result.outcomes.append(
            BatchOutcome(obj.name, batch_id, name, "stage", "failed", error=message)
        )
        result.rejected.append(_rejected(rejection, name, new=True))
        fields = {**fields, "batch_id": batch_id, "content_hash": rejection.content_hash}
        runner._log(result, "error", message, obj, event="rejected", **fields)
        rejected = (
            f"{name} cannot be read at all: rejected, not read again until its content or the "
            f"read settings of '{obj.name}' change (or `{retry_command(obj.name, batch_id)}`); "
            f"the object's other files load"
        )
        result.notes.append(f"{obj.name}: {rejected}")
        runner._log(result, "warning", rejected, obj, batch_id=batch_id, event="rejected")

    def finish(self, *, complete: bool) -> None:
        """Warn about the files rejected earlier that this run met (the object's outcome is
        `warning`); close the rejections no landing file holds any more, when the run read
        every file it was offered (`complete`)."""
        runner, result, obj = self.runner, self.result, self.obj
        if self.met:
            shown = [
                _named(self.in_force[batch_id], name)
                for batch_id, names in self.met.items()
                for name in names
            ]
            first = next(iter(self.met))
            runner._log(
                result,
                "warning",
                f"{obj.name}: {len(shown)} file(s) rejected earlier, not read again until their "
                f"content or the read settings of '{obj.name}' change "
                f"(or `{retry_command(obj.name, first)}`): "
                + "; ".join(shown[:_SHOWN])
                + (" …" if len(shown) > _SHOWN else ""),
                obj,
                event="rejected_earlier",
                batches=list(self.met),
            )
            for batch_id, names in self.met.items():
                record = self.in_force[batch_id]
                for name in names:
                    result.outcomes.append(
                        BatchOutcome(obj.name, batch_id, name, "stage", "warning")
                    )
                    result.rejected.append(_rejected(record, name, new=False))
            count = sum(len(n) for n in self.met.values())
            result.notes.append(
                f"{obj.name}: {count} file(s) rejected earlier, not read again "
                f"(reasons: penstock batches {obj.name})"
            )
        if not complete:
            return
        for batch_id, record in self.records.items():
            if batch_id in self.met or batch_id in self.touched:
                continue
            runner.lake.clear_rejection(record)
            runner._log(
                result,
                "info",
                f"{record.source_file} (rejected: {record.reason}) is no longer in the landing "
                f"zone; its rejection is closed",
                obj,
                batch_id=batch_id,
                event="rejection_closed",
            )


def _named(record: Rejection, name: str) -> str:
    """The rejection's reason about the landing file `name` (it names the file it was
    rejected as; `name` may be another file with the same content)."""
    reason = record.reason
    if reason.startswith(record.source_file):
        return name + reason.removeprefix(record.source_file)
    return f"{name}: {reason}"


def _rejected(record: Rejection, source_file: str, *, new: bool) -> RejectedFile:
    reason = _named(record, source_file)
    return RejectedFile(record.object, record.batch_id, source_file, reason, new)
