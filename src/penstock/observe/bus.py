"""The event bus: steps emit typed events (observe/events.py), sinks subscribed to it handle
them. How a sink is subscribed decides what its failures and its slowness can do to a run:

- **plain** (`subscribe(handler)`): called synchronously, in subscription order; an exception
  propagates to the emitter. For in-process listeners that must see events as they happen
  (the CLI's progress bar, tests).
- **guarded** (`guarded=True`): called synchronously, but it can never fail the run: a failed
  delivery is retried (`DeliveryPolicy.retry_delays`), then the event is dropped (one line on
  stderr when an outage begins; `dropped` counts every event lost) and the sink rests for
  `cooldown_s` (events meanwhile are dropped and counted without trying) before it gets one
  attempt again; a success gives it its retries back.
- **queued** (`queued=True`, guarded as well): events go into the sink's own bounded queue,
  drained by its own thread (observe/queue.py), so a slow sink does not slow the data path
  either. A full queue drops the event (counted, said once on stderr). `flush()` (the runner
  calls it when a run ends) waits for every queued sink to catch up, up to
  `flush_timeout_s`; `close()` (the session calls it) flushes and stops the threads.

A run's start and end (`RunStarted`, `RunFinished`) are precious: always tried with every
retry, never skipped for a cooldown, and they wait for room in a full queue (`full_wait_s`).
What a sink lost is in `dropped` (by sink name). The warehouse ledger stays the truth for what
loaded: the next run reconciles the metadata store from it.

A sink is a callable taking an event, or an object with `handle(event)` and, optionally,
`flush()` (called after the events queued before a bus flush are delivered: push metrics,
sync a file) and `close()` (called once, last). `events=` limits a sink to some event types.
Subscribing is the whole plugin API; observe/sinks.py attaches the built-in sinks and the
project's `hooks:` (observe/hooks.py) to a session's bus.

Steps may emit from several threads at once (a run's workers, engine/parallel.py): a plain or
guarded sink is called by one of them at a time (a lock), so it never sees two events at
once; a queued sink's queue is safe to put into from any thread, and is not held by the lock
(its thread may emit too).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from penstock.errors import first_line
from penstock.observe.events import (
    LOG_LEVELS,
    Event,
    LogLevel,
    LogRecord,
    RunFinished,
    RunStarted,
)
from penstock.observe.queue import SinkQueue
from penstock.observe.redaction import redact_value
from penstock.secrets import redact

Handler = Callable[[Event], None]

RETRY_DELAYS = (0.05, 0.25)  # seconds before the 2nd and 3rd attempt
COOLDOWN_SECONDS = 5.0
PRECIOUS = (RunStarted, RunFinished)


@runtime_checkable
class Sink(Protocol):
    """A sink object: `handle` each event; `flush`, `close` and `handle_many` (several
    queued events at once, in order: a queued sink writing to a database records them in one
    transaction) are optional."""

    def handle(self, event: Event) -> None: ...


@dataclass(frozen=True, kw_only=True)
class DeliveryPolicy:
    """How a guarded or queued sink is retried, rested, queued and waited for."""

    retry_delays: tuple[float, ...] = RETRY_DELAYS
    cooldown_s: float = COOLDOWN_SECONDS
    queue_size: int = 10_000
    full_wait_s: float = 5.0
    flush_timeout_s: float = 30.0


class _Flush:
    """The marker a bus flush queues behind the events: the sink's own `flush` runs there."""


_FLUSH = _Flush()
_FLUSH_END = _Flush()  # the end of a batch of queued items (not a flush)


@dataclass(eq=False)
class _Subscription:
    handler: Handler
    name: str
    guarded: bool
    policy: DeliveryPolicy
    events: tuple[type[Event], ...] | None
    on_flush: Callable[[], None] | None = None
    on_close: Callable[[], None] | None = None
    on_many: Callable[[Sequence[Event]], None] | None = None
    queue: SinkQueue[Event | _Flush] | None = None
    failures: int = 0  # events this sink could not record (delivery failed or resting)
    overflow: int = 0  # events dropped because its queue was full or closed
    degraded: bool = False  # the last delivery failed: one try per event until one succeeds
    resting_until: float = 0.0
    said_full: bool = False
    report: Callable[[str], None] = field(default=lambda _line: None)
    flush_last: bool = False  # its flush reads what the other sinks record: flushed after them

    def wants(self, event: Event) -> bool:
        return self.events is None or isinstance(event, self.events)

    def deliver_many(self, items: list[Event | _Flush]) -> None:
        """Deliver queued items in order: each run of events to the sink's `handle_many` at
        once (one try; if it fails, each event is delivered on its own, with its retries),
        flushes as they come."""
        run: list[Event] = []
        for item in [*items, _FLUSH_END]:
            if isinstance(item, _Flush):
                self._deliver_run(run)
                run = []
                if item is not _FLUSH_END:
                    self.deliver(item)
            else:
                run.append(item)

    def _deliver_run(self, run: list[Event]) -> None:
        resting = time.monotonic() < self.resting_until
        if self.on_many is not None and len(run) > 1 and not self.degraded and not resting:
            try:
                self.on_many(run)
            except Exception:  # a sink may fail in any way: each event on its own, then
                pass
            else:
                return
        for event in run:
            self.deliver(event)

    def deliver(self, item: Event | _Flush) -> None:
        """Deliver one event (guarded: retried, rested, never raising) or run a flush."""
        if isinstance(item, _Flush):
            if self.on_flush is not None:
                try:
                    self.on_flush()
                except Exception as exc:
                    self.report(f"penstock: {self.name} could not flush: {first_line(exc)}")
            return
        if not self.guarded:
            self.handler(item)
            return
        # a run's start and end are few and precious (without its end a run would look
        # abandoned): they are always tried in full; other events rest with the sink
        precious = isinstance(item, PRECIOUS)
        if not precious and time.monotonic() < self.resting_until:
            self.failures += 1
            return
        delays = self.policy.retry_delays
        attempts = 1 if self.degraded and not precious else 1 + len(delays)
        for attempt in range(attempts):
            try:
                self.handler(item)
            except Exception as exc:  # a sink may fail in any way; the run goes on
                if attempt + 1 < attempts:
                    time.sleep(delays[attempt])
                    continue
                self.failures += 1
                already = self.degraded
                self.degraded = True
                self.resting_until = time.monotonic() + self.policy.cooldown_s
                if already:  # said when the outage began; `dropped` counts the rest
                    return
                self.report(
                    f"penstock: {self.name} could not record {type(item).__name__} "
                    f"(tried {attempts}x): {first_line(exc)}; the run goes on, and the next "
                    f"run reconciles loads from the warehouse ledger"
                )
                return
            else:
                self.degraded = False  # recovered: the next blip gets its retries back
                return


class EventBus:
    """Delivers every emitted event to each subscribed sink (see the module docstring)."""

    def __init__(self) -> None:
        self._subscriptions: list[_Subscription] = []
        self._closed = False
        self._delivering = threading.RLock()  # one emitter at a time in the synchronous sinks

    def subscribe(
        self,
        sink: Handler | Sink,
        *,
        name: str = "",
        guarded: bool = False,
        queued: bool = False,
        events: Iterable[type[Event]] | None = None,
        policy: DeliveryPolicy | None = None,
        flush_last: bool = False,
    ) -> None:
        """Subscribe a sink: a callable taking an event, or an object with `handle(event)`
        (and optionally `flush()`, `close()`). `queued` implies `guarded`. `flush_last`: the
        sink's `flush` reads what the other sinks record (the alerts sink evaluates SLOs from
        the metadata store), so `EventBus.flush` flushes it once the others have caught up."""
        handler: Handler = sink.handle if isinstance(sink, Sink) else sink
        sub = _Subscription(
            handler=handler,
            name=name or repr(sink),
            guarded=guarded or queued,
            policy=policy or DeliveryPolicy(),
            events=None if events is None else tuple(events),
            on_flush=_optional_method(sink, "flush"),
            on_close=_optional_method(sink, "close"),
            on_many=_optional_method(sink, "handle_many"),
            report=self._report,
            flush_last=flush_last,
        )
        if queued:
            many = sub.deliver_many if sub.on_many is not None else None
            sub.queue = SinkQueue(
                sub.deliver, name=sub.name, size=sub.policy.queue_size, deliver_many=many
            )
        self._subscriptions.append(sub)

    @property
    def dropped(self) -> dict[str, int]:
        """Events each guarded sink could not record, by sink name (only sinks that lost any)."""
        out = {}
        for sub in self._subscriptions:
            lost = sub.failures + sub.overflow
            if lost:
                out[sub.name] = lost
        return out

    def emit(self, event: Event) -> None:
        for sub in tuple(self._subscriptions):
            if not sub.wants(event):
                continue
            if sub.queue is None:
                with self._delivering:
                    sub.deliver(event)
                continue
            wait = sub.policy.full_wait_s if isinstance(event, PRECIOUS) else 0.0
            if not sub.queue.put(event, wait_s=wait):
                sub.overflow += 1
                if not sub.said_full and not self._closed:
                    sub.said_full = True
                    self._report(
                        f"penstock: {sub.name} is falling behind (its queue of "
                        f"{sub.policy.queue_size} events is full): dropping events it cannot "
                        f"take; the run goes on"
                    )

    def flush(self, timeout_s: float | None = None, *, only: Iterable[str] | None = None) -> bool:
        """Wait until every queued sink has handled the events emitted so far (and run its
        own `flush`); each waits up to its `flush_timeout_s` (or `timeout_s`). Every queue is
        asked first and waited on after, so the sinks' threads finish their work at the same
        time, not one after the other; a `flush_last` sink is asked once the others have
        caught up. False if one did not catch up in time (said on stderr). `only` limits the
        flush to the sinks of those names."""
        names = None if only is None else frozenset(only)
        chosen = [s for s in self._subscriptions if names is None or s.name in names]
        first = self._flush_all([s for s in chosen if not s.flush_last], timeout_s)
        last = self._flush_all([s for s in chosen if s.flush_last], timeout_s)
        return first and last

    def _flush_all(self, subs: list[_Subscription], timeout_s: float | None) -> bool:
        asked: list[tuple[_Subscription, float, float]] = []
        for sub in subs:
            if sub.queue is None:
                if sub.on_flush is not None:
                    sub.deliver(_FLUSH)
                continue
            limit = sub.policy.flush_timeout_s if timeout_s is None else timeout_s
            sub.queue.put(_FLUSH, wait_s=limit)
            asked.append((sub, limit, time.monotonic() + limit))
        caught_up = True
        for sub, limit, deadline in asked:
            assert sub.queue is not None
            if not sub.queue.flush(max(0.0, deadline - time.monotonic())):
                caught_up = False
                behind = _events(sub.queue.undelivered())
                self._report(
                    f"penstock: {sub.name} has not caught up after {limit:g}s "
                    f"({behind} event(s) still queued); the run goes on"
                )
        return caught_up

    def close(self, timeout_s: float | None = None) -> None:
        """Flush every queued sink, stop their threads and close the sinks that have a
        `close`; events a sink still had queued after its timeout are dropped and counted."""
        if self._closed:
            return
        self._closed = True
        for sub in self._subscriptions:
            if sub.queue is not None:
                limit = sub.policy.flush_timeout_s if timeout_s is None else timeout_s
                undelivered = sub.queue.close(limit)
                left = _events(undelivered)
                if left:
                    sub.overflow += left
                    self._report(
                        f"penstock: {sub.name} did not catch up within {limit:g}s: "
                        f"{left} event(s) dropped"
                    )
                if undelivered:
                    continue  # still busy in its thread: do not close it under its feet
            if sub.on_close is not None:
                try:
                    sub.on_close()
                except Exception as exc:
                    self._report(f"penstock: {sub.name} could not close: {first_line(exc)}")

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
        step_id: str | None = None,
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
                step_id=step_id,
                fields={k: redact_value(v) for k, v in fields.items()},
            )
        )


def _events(items: list[Event | _Flush]) -> int:
    return sum(1 for item in items if not isinstance(item, _Flush))


def _optional_method(sink: object, name: str) -> Callable[..., None] | None:
    if not isinstance(sink, Sink):
        return None
    method = getattr(sink, name, None)
    return method if callable(method) else None
