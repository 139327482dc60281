"""What a run did, batch by batch, and the per-object summary the CLI prints.

Outcome words (`success`, `warning`, `failed`) are those of `penstock.outcomes`, shared with
`penstock status` and `penstock runs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from penstock.engine.restage import RestageOutcome

from penstock.engine.globs import NoMatch
from penstock.outcomes import Outcome, worst

BatchStatus = Literal["success", "warning", "failed", "skipped", "upstream_failed"]


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
    retryable: bool = False  # failed with an error that may pass when tried again


@dataclass(frozen=True)
class RejectedFile:
    """A landing file a run met that cannot be read at all (engine/rejections.py): `new` when
    this run rejected it (its stage step failed), else it was rejected earlier and not read."""

    object: str
    batch_id: str
    source_file: str
    reason: str
    new: bool


def object_outcome(outcomes: Sequence[BatchOutcome]) -> BatchStatus:
    """One object's outcome in a run from its steps' outcomes: `failed` if one failed,
    `warning` if one warned (rows broke the contract), else `success` (also for none);
    `upstream_failed` when it was not run because an object upstream of it failed."""
    outcome = worst(o.status for o in outcomes)
    if outcome == "running" or outcome == "abandoned":
        raise ValueError(f"a finished step cannot be {outcome!r}")  # steps end in the others
    return outcome


@dataclass
class ObjectSummary:
    """One object in a run: its outcome, the first error, and the rows of its loaded batches.

    `status` is `failed` if one of its steps failed, `warning` if rows broke its contract,
    `upstream_failed` if it was not run because an object upstream of it failed, else
    `success` (also when there was nothing new); `error` is the first failed step's error (or
    what held it back).
    Row counts cover the batches that loaded (a failed batch loads nothing).
    """

    object: str
    status: Outcome = "success"
    error: str | None = None
    batches: int = 0
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_invalid: int = 0
    rows_warned: int = 0
    failed: int = 0

    @property
    def rows_passed(self) -> int:
        """Rows read that broke no rule of the contract."""
        return self.rows_in - self.rows_invalid

    @property
    def dq_pass_rate(self) -> float | None:
        """The DQ pass rate: rows that broke no rule of the contract / rows read (`rows in`).

        Over the object's loaded batches in this run. A row breaks the contract when a column
        rule or a check fails it, when it is malformed, or when a batch check (`row_count`)
        fails its batch; a duplicate breaks nothing, and a row `on_invalid: warn` loads anyway
        still broke it. None when no row was read."""
        if self.rows_in == 0:
            return None
        return self.rows_passed / self.rows_in


@dataclass
class RunResult:
    """What a run did. `status` is what the run ended as (`success` or `failed`, as recorded);
    `outcome` adds `warning` when rows broke a contract, the word `runs` and `status` show.
    `notes` are lines for the person who ran it, printed under the run summary."""

    run_id: str
    command: str
    status: Literal["success", "failed"] = "success"
    selected: list[str] = field(default_factory=list)  # the objects selected, in run order
    outcomes: list[BatchOutcome] = field(default_factory=list)
    # `rebuild --restage` only: what became of each staged batch (engine/restage.py)
    restage: list[RestageOutcome] | None = None
    no_match: list[NoMatch] = field(default_factory=list)  # objects whose glob matched no file
    rejected: list[RejectedFile] = field(default_factory=list)  # files that cannot be read
    nothing_matched: bool = False  # no selected object's glob matched a file
    notes: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        if self.status == "failed":
            return "failed"
        return worst(o.status for o in self.outcomes)

    @property
    def failures(self) -> list[BatchOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    def loads(self) -> list[BatchOutcome]:
        return [o for o in self.outcomes if o.step == "load" and o.status != "failed"]

    def summary(self, objects: list[str]) -> list[ObjectSummary]:
        """One summary per name in `objects` (the objects the run selected), in that order,
        then any other object the run has outcomes for."""
        by_name = {name: ObjectSummary(name) for name in objects}
        for outcome in self.outcomes:
            summary = by_name.setdefault(outcome.object, ObjectSummary(outcome.object))
            summary.status = worst((summary.status, outcome.status))
            if outcome.status == "failed":
                summary.failed += 1
            if outcome.status in ("failed", "upstream_failed") and summary.error is None:
                summary.error = outcome.error
            if outcome.step == "build" and outcome.status != "failed":  # a consume model
                summary.rows_loaded += outcome.rows_loaded
                summary.rows_warned += outcome.rows_warned
                continue
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
