"""The outcome words that `run`'s summary, `status` and `runs` share, and how they combine.

A module with no imports of its own, so every layer (engine, metadata store reads, CLI) can
use it without loading the others.

Words, from best to worst:

- `success`: done, and every row kept its contract (also: there was nothing new to do);
- `warning`: done, but rows broke the contract (quarantined, or loaded anyway under
  `on_invalid: warn`), a contract column was missing from a file, or a replace kept the
  previous snapshot;
- `running`: still at it;
- `upstream_failed`: not run, because an object it depends on (engine/plan.py) failed earlier
  in the same run (that failure makes the run exit 1);
- `failed`: a step failed (the run exits 1);
- `abandoned`: its process ended mid-way (killed); the next command holding the warehouse lock
  marks it so.

The metadata store keeps the words it always kept (nothing is migrated): a step may also be
`skipped` (a file already staged, a batch already loaded: it did its job) and reads as
`success`; a run is stored as `success` or `failed` when it ends, and `reconciled` when it was
recorded afterwards from the warehouse ledger. A run's outcome is read from its stored status
and its steps: a stored `success` (or `reconciled`) with a `warning` step reads `warning`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Outcome = Literal["success", "warning", "running", "upstream_failed", "failed", "abandoned"]

OUTCOMES: tuple[Outcome, ...] = (
    "success",
    "warning",
    "running",
    "upstream_failed",
    "failed",
    "abandoned",
)
"""Every outcome word, from best to worst."""

_RANK = {word: rank for rank, word in enumerate(OUTCOMES)}
# stored words that are not outcomes of their own
_AS_OUTCOME: dict[str, Outcome] = {"skipped": "success", "reconciled": "success"}


def as_outcome(stored: str) -> Outcome:
    """The outcome word for a status as the engine or the store records it."""
    if stored in _RANK:
        return OUTCOMES[_RANK[stored]]
    if stored in _AS_OUTCOME:
        return _AS_OUTCOME[stored]
    raise ValueError(f"unknown status {stored!r}; expected one of {OUTCOMES} or skipped")


def worst(statuses: Iterable[str]) -> Outcome:
    """The worst outcome among `statuses` (stored words accepted); `success` for none."""
    found: Outcome = "success"
    for status in statuses:
        outcome = as_outcome(status)
        if _RANK[outcome] > _RANK[found]:
            found = outcome
    return found


def run_outcome(stored: str, *, warned: bool) -> Outcome:
    """A run's outcome from its stored status and whether one of its steps warned."""
    outcome = as_outcome(stored)
    return "warning" if outcome == "success" and warned else outcome
