"""A small synchronous, typed event bus: steps emit, sinks (the metadata store...) handle.

A sink subscribed with `guarded=True` (the metadata store, and any sink that only records)
can never fail or stall the run that emits: a failed delivery is retried a bounded number of
times, then the event is dropped with one line on stderr, and the sink rests for a cooldown
(events in it are dropped and counted without trying) before it gets one attempt again. The
warehouse ledger stays the truth for what loaded; the next run reconciles the store from it.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from penstock.errors import first_line
from penstock.observe.events import (
    LOG_LEVELS,
    Event,
    LogLevel,
    LogRecord,
    RunFinished,
    RunStarted,
)
from penstock.observe.redaction import redact_value
from penstock.secrets import redact

Handler = Callable[[Event], None]

RETRY_DELAYS = (0.05, 0.25)  # seconds before the 2nd and 3rd attempt
COOLDOWN_SECONDS = 5.0


@dataclass
class _Subscription:
    handler: Handler
    guarded: bool
    name: str
    failures: int = 0  # events this sink could not record
    degraded: bool = False  # the last delivery failed: one try per event until one succeeds
    resting_until: float = 0.0


class EventBus:
    """Calls every subscribed handler, in subscription order, for each emitted event.

    Delivery is synchronous. An exception raised by an unguarded handler propagates to the
    emitter (handlers after it do not see that event); a guarded one's never does.
    """

    def __init__(self) -> None:
        self._subscriptions: list[_Subscription] = []

    def subscribe(self, handler: Handler, *, guarded: bool = False, name: str = "") -> None:
        self._subscriptions.append(_Subscription(handler, guarded, name or repr(handler)))

    @property
    def dropped(self) -> dict[str, int]:
        """Events each guarded sink could not record, by sink name (only sinks that lost any)."""
        return {s.name: s.failures for s in self._subscriptions if s.failures}

    def emit(self, event: Event) -> None:
        for sub in tuple(self._subscriptions):
            if sub.guarded:
                self._deliver_guarded(sub, event)
            else:
                sub.handler(event)

    def _deliver_guarded(self, sub: _Subscription, event: Event) -> None:
        # a run's start and end are few and precious (without its end a run would look
        # abandoned): they are always tried in full; other events rest with the sink
        precious = isinstance(event, RunStarted | RunFinished)
        if not precious and time.monotonic() < sub.resting_until:
            sub.failures += 1
            return
        attempts = 1 if sub.degraded and not precious else 1 + len(RETRY_DELAYS)
        for attempt in range(attempts):
            try:
                sub.handler(event)
            except Exception as exc:  # a sink may fail in any way; the run goes on
                if attempt + 1 < attempts:
                    time.sleep(RETRY_DELAYS[attempt])
                    continue
                sub.failures += 1
                sub.degraded = True
                sub.resting_until = time.monotonic() + COOLDOWN_SECONDS
                self._report(
                    f"penstock: {sub.name} could not record {type(event).__name__} "
                    f"(tried {attempts}x): {first_line(exc)}; the run goes on, and the next "
                    f"run reconciles loads from the warehouse ledger"
                )
                return
            else:
                sub.degraded = False  # recovered: the next blip gets its retries again
                return

    def _report(self, line: str) -> None:
        stream = sys.stderr
        with contextlib.suppress(Exception):  # a closed stderr must not fail the run either
            print(redact(line), file=stream, flush=True)

    def log(
        self,
        run_id: str,
        level: LogLevel,
        message: str,
        *,
        object: str | None = None,
        batch_id: str | None = None,
        **fields: Any,
    ) -> None:
        """Build a `LogRecord` (message and string field values redacted) and emit it."""
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r}; expected one of {LOG_LEVELS}")
        self.emit(
            LogRecord(
                run_id=run_id,
                level=level,
                message=redact(message),
                object=object,
                batch_id=batch_id,
                fields={k: redact_value(v) for k, v in fields.items()},
            )
        )
