"""What a run did, batch by batch, and the per-object summary the CLI prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from penstock.engine.restage import RestageOutcome

from penstock.engine.globs import NoMatch

BatchStatus = Literal["success", "warning", "failed", "skipped"]


@dataclass
class BatchOutcome:
    object: str
    batch_id: str | None
    source_file: str | None
    step: str
    status: BatchStatus
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_invalid: int = 0
    rows_warned: int = 0  # loaded although they broke the contract (on_invalid warn)
    reason_counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def object_outcome(outcomes: Sequence[BatchOutcome]) -> BatchStatus:
    """One object's outcome in a run from its steps' outcomes: `failed` if one failed,
    `warning` if one warned (rows broke the contract), else `success` (also for none)."""
    statuses = {o.status for o in outcomes}
    if "failed" in statuses:
        return "failed"
    if "warning" in statuses:
        return "warning"
    return "success"


@dataclass
class ObjectSummary:
    object: str
    batches: int = 0
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_invalid: int = 0
    rows_warned: int = 0
    failed: int = 0

    @property
    def dq_pass_rate(self) -> float | None:
        """Share of incoming rows that passed every rule of the contract."""
        if self.rows_in == 0:
            return None
        return (self.rows_in - self.rows_invalid) / self.rows_in


@dataclass
class RunResult:
    run_id: str
    command: str
    status: Literal["success", "failed"] = "success"
    outcomes: list[BatchOutcome] = field(default_factory=list)
    # `rebuild --restage` only: what became of each staged batch (engine/restage.py)
    restage: list[RestageOutcome] | None = None
    no_match: list[NoMatch] = field(default_factory=list)  # objects whose glob matched no file
    nothing_matched: bool = False  # no selected object's glob matched a file

    @property
    def failures(self) -> list[BatchOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def loads(self) -> list[BatchOutcome]:
        return [o for o in self.outcomes if o.step == "load" and o.status != "failed"]

    def summary(self, objects: list[str]) -> list[ObjectSummary]:
        by_name = {name: ObjectSummary(name) for name in objects}
        for outcome in self.outcomes:
            summary = by_name.setdefault(outcome.object, ObjectSummary(outcome.object))
            if outcome.status == "failed":
                summary.failed += 1
            if outcome.step != "load" or outcome.status == "failed":
                continue
            summary.batches += 1
            summary.rows_in += outcome.rows_in
            summary.rows_loaded += outcome.rows_loaded
            summary.rows_quarantined += outcome.rows_quarantined
            summary.rows_duplicate += outcome.rows_duplicate
            summary.rows_invalid += outcome.rows_invalid
            summary.rows_warned += outcome.rows_warned
        return list(by_name.values())
