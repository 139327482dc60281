"""Tries of an object's work: its time limit (`timeout:`) and whether a failed try is retried
(`retry:`, catalog/orchestration.py).

A try that fails with transient errors only (a connection refused, a locked file, a step
timing out: `TransientError`) is tried again, up to the policy's attempts, after a random wait
(full jitter). A terminal error (a bad contract, a SQL error) fails at once. Trying again is
safe because the work is idempotent: a staged batch is not extracted again, a loaded one is
not loaded again. Every try's steps are recorded with their attempt number, so each failed
try stays in `step_runs` with its error.

A try with a time limit has a watchdog: when the limit passes it interrupts the running
DuckDB statement (an open load transaction rolls back) and the try stops at its next
checkpoint (before a chunk is staged or loaded) with `StepTimeout`, itself transient.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import TracebackType

import duckdb

from penstock.engine.results import BatchOutcome
from penstock.errors import StepTimeout


class Deadline:
    """The time limit of one try of an object's work (a context manager: the watchdog runs
    inside the block)."""

    def __init__(self, obj: str, timeout_s: float, conn: duckdb.DuckDBPyConnection) -> None:
        self.obj = obj
        self.timeout_s = timeout_s
        self.conn = conn
        self.expired = False
        self._timer = threading.Timer(timeout_s, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        self.expired = True
        self.conn.interrupt()  # the statement running now, if any, stops

    def check(self) -> None:
        """Raise `StepTimeout` once the limit has passed."""
        if self.expired:
            raise self.error()

    def error(self) -> StepTimeout:
        return StepTimeout(
            f"object '{self.obj}': this try ran past its timeout of {self.timeout_s:g} s and "
            "was stopped (what it had not committed was rolled back)",
            object=self.obj,
            timeout_s=self.timeout_s,
        )

    def translate(self, exc: Exception) -> Exception:
        """The error a try's failure is reported with: a statement the watchdog interrupted
        reads as the timeout, not as DuckDB's interrupt."""
        if self.expired and not isinstance(exc, StepTimeout):
            timeout = self.error()
            timeout.__cause__ = exc
            return timeout
        return exc


def worth_retrying(outcomes: Sequence[BatchOutcome]) -> bool:
    """A try failed, and only with errors that may pass when it is tried again."""
    failed = [o for o in outcomes if o.status == "failed"]
    return bool(failed) and all(o.retryable for o in failed)
