"""A bounded queue drained by one background thread: how a queued sink gets its events.

The emitting thread only appends to the queue (`put`), so a slow sink never slows the data
path; the sink's own thread takes the events in order and hands them to `deliver` (the bus's
guarded delivery: retries, cooldown, never raising). When the queue is full, `put` drops the
event (the caller counts it), except a precious one, which waits up to `full_wait_s` for room.
`flush` returns once every event queued so far is delivered (or the timeout passed); `close`
flushes, then stops the thread and returns how many events it gave up on.

The thread starts with the first event and is a daemon: a sink stuck in a call (a hung
webhook) cannot keep the process alive after `close` gave up on it. On Linux it runs at a
lower scheduling priority than the run (`SINK_NICENESS`): a sink's work fills the cores the
data path leaves idle instead of taking them from DuckDB's threads (on two cores, every
CPU-second a sink took mid-run was a second added to the run: bench/README.md,
observe_overhead.py). A flush, which waits for the sinks, leaves them the cores anyway.

Niceness does not share the GIL, though: a busy sink thread may hold it for up to the
interpreter's switch interval (5 ms) each time the run lets go of it for a system call. A
shorter interval while sink threads live was tried on 1,000 files x 100 rows (11 alternating
runs each on a shared machine: 5 ms 6.45 s median, 2 ms 6.21 s, 0.5 ms 6.53 s with ~0.3 s
more CPU in the sinks): within the noise, and the interval is the whole process's, which an
application embedding penstock owns, so it is left alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


# how many queued items a sink's thread takes at once (a sink that takes several at once,
# `deliver_many`, gets them in one call; another gets them one by one)
BATCH = 512
# how long a sink's thread waits for more items once the first arrived, unless a flush or
# close is waiting: thousands of small batches' events then go in a few deliveries, not one
# wake-up (and one transaction) of each sink per event
LINGER_S = 0.05
# how much nicer than the run a sink's thread is (Linux: niceness is per thread)
SINK_NICENESS = 10


def lower_thread_priority(step: int = SINK_NICENESS) -> None:
    """Make the calling thread `step` nicer than it is, on Linux (where `setpriority` on a
    thread id applies to that thread alone; elsewhere it would renice the whole process, so
    nothing is done). A refusal (a sandbox) is ignored: the sink then runs at the run's
    priority, as it would anyway."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError):
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + step))


class SinkQueue(Generic[T]):
    def __init__(
        self,
        deliver: Callable[[T], None],
        *,
        name: str,
        size: int,
        deliver_many: Callable[[list[T]], None] | None = None,
    ) -> None:
        """`deliver_many`, when given, takes the items queued at once (up to `BATCH`, in
        order) instead of one `deliver` call each: a sink that writes to a database records
        them in one transaction."""
        if size < 1:
            raise ValueError(f"a sink queue holds at least one event, got size {size}")
        self._deliver = deliver
        self._deliver_many = deliver_many
        self._name = name
        self._size = size
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._pending = 0  # queued plus the one being delivered
        self._put_count = 0  # items ever queued
        self._done_count = 0  # items ever delivered or given up on (in queue order)
        self._current: list[T] = []  # the one being delivered
        self._stopping = False
        self._flushing = 0  # flushes waiting: a lingering drainer delivers at once
        self._thread: threading.Thread | None = None

    def undelivered(self) -> list[T]:
        """The item being delivered, if one, then the queued ones."""
        with self._cond:
            return [*self._current, *self._items]

    def put(self, item: T, *, wait_s: float = 0.0) -> bool:
        """Queue `item`; False (not queued) when the queue is closed, or full for `wait_s`."""
        with self._cond:
            if self._stopping:
                return False
            if len(self._items) >= self._size:
                deadline = time.monotonic() + wait_s
                while len(self._items) >= self._size:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._stopping:
                        return False
                    self._cond.wait(remaining)
            self._items.append(item)
            self._pending += 1
            self._put_count += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._drain, name=f"penstock-sink:{self._name}", daemon=True
                )
                self._thread.start()
            if len(self._items) == 1 or len(self._items) >= BATCH:
                self._cond.notify_all()  # the drainer waits for a first item or a full batch
            return True

    def flush(self, timeout_s: float) -> bool:
        """Wait until every event queued so far is delivered (not those queued meanwhile by
        other threads); False if `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()  # a lingering drainer delivers now
            target = self._put_count
            try:
                while self._done_count < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout_s: float) -> list[T]:
        """Flush (up to `timeout_s`), stop the thread; the items given up on (one still in
        delivery in a thread that did not return, and those it never took)."""
        self.flush(timeout_s)
        with self._cond:
            self._stopping = True
            left = [*self._current, *self._items]
            self._pending -= len(self._items)
            self._done_count += len(self._items)
            self._items.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and not left:
            thread.join(timeout=1.0)
        return left

    def _linger(self) -> None:
        """Wait (holding the condition's lock between waits) up to `LINGER_S` for a full
        batch, unless a flush or close is waiting."""
        until = time.monotonic() + LINGER_S
        while len(self._items) < BATCH and not self._flushing and not self._stopping:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            self._cond.wait(remaining)

    def _drain(self) -> None:
        lower_thread_priority()
        self._drain_items()

    def _drain_items(self) -> None:
        """Take the queued items a batch at a time (after lingering for more): to
        `deliver_many` at once, or to `deliver` one by one (each counted delivered as it
        is), so a sink taking one event at a time is not woken for every event either."""
        while True:
            with self._cond:
                while not self._items and not self._stopping:
                    self._cond.wait()
                if not self._items:
                    return
                self._linger()
                take = min(len(self._items), BATCH)
                items = [self._items.popleft() for _ in range(take)]
                self._current[:] = items
                self._cond.notify_all()  # room for a precious put waiting on a full queue
            if self._deliver_many is None:
                for item in items:
                    self._deliver_one(item)
                continue
            try:
                with contextlib.suppress(Exception):  # deliver guards sink errors already
                    self._deliver_many(items)
            finally:
                with self._cond:
                    self._current.clear()
                    self._pending = max(0, self._pending - len(items))
                    self._done_count += len(items)
                    self._cond.notify_all()

    def _deliver_one(self, item: T) -> None:
        try:
            with contextlib.suppress(Exception):  # deliver guards sink errors already
                self._deliver(item)
        finally:
            with self._cond:
                if self._current:
                    del self._current[0]
                self._pending = max(0, self._pending - 1)
                self._done_count += 1
                self._cond.notify_all()
