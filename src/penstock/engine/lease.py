"""A held lease: acquired (waiting a bounded time), renewed by a heartbeat, released on exit.

The rows and their atomic writes are observe/leases.py's. Names:

- `project` (`PROJECT_LEASE`): held by every session that writes the warehouse (`run`,
  `rebuild`, `batches skip|unskip|retry`, the scheduler's runs) from before it opens the
  warehouse until it closed it. DuckDB is single-writer, so the project is the unit of work
  today; when objects run in parallel they will take `object:<name>` leases
  (`object_lease`) instead, the same way.
- `scheduler` (`SCHEDULER_LEASE`): held by the one active `penstock schedule` of a project;
  another stands by and takes over when it dies.

While held, a daemon thread renews the lease every `ttl / 3` seconds. A process killed
without releasing leaves its lease to be taken over: at once by a process on the same host
(its pid is gone), by others when it expires (`ttl`, 60 s by default).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from types import TracebackType

from penstock.errors import LeaseHeld
from penstock.observe import MetadataStore, utcnow
from penstock.observe.events import Event, RunStarted
from penstock.observe.leases import Holder, LeaseRow, LeaseStore

PROJECT_LEASE = "project"
SCHEDULER_LEASE = "scheduler"
LEASE_TTL_SECONDS = 60.0


def object_lease(name: str) -> str:
    """The lease name of one object's work (for parallel execution)."""
    return f"object:{name}"


def what(name: str, project: str) -> str:
    """How a lease reads in a sentence: `project 'shop'`, `the scheduler of 'shop'`."""
    if name == PROJECT_LEASE:
        return f"project '{project}'"
    if name == SCHEDULER_LEASE:
        return f"the scheduler of '{project}'"
    return f"{name} of '{project}'"


class Lease:
    """One named lease of a project, for this process. Use `acquire` (or `try_acquire`),
    then `release` (or use it as a context manager once acquired)."""

    def __init__(
        self,
        store: MetadataStore,
        project: str,
        name: str,
        *,
        command: str,
        ttl: float = LEASE_TTL_SECONDS,
        clock: Callable[[], datetime] = utcnow,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.leases = LeaseStore(store.engine, project)
        self.project = project
        self.name = name
        self.holder = Holder.this_process(command)
        self.ttl = ttl
        self.clock = clock
        self.on_lost = on_lost
        self.held = False
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> LeaseRow | None:
        """Take the lease if it is free (None), else the lease of the holder keeping it."""
        other = self.leases.try_acquire(self.name, self.holder, ttl=self.ttl, now=self.clock())
        if other is None:
            self._held()
        return other

    def acquire(
        self,
        wait: float,
        on_wait: Callable[[str], None] | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> float:
        """Take the lease, waiting up to `wait` seconds while another holder keeps it
        (`on_wait` hears once who); then raise `LeaseHeld` naming that holder. Returns the
        seconds waited (0.0 when the lease was free)."""
        started = time.monotonic()
        deadline = started + max(wait, 0.0)
        delay = 0.05
        told = False
        tries = 0
        while True:
            other = self.try_acquire()
            if other is None:
                return time.monotonic() - started if tries else 0.0
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LeaseHeld(
                    f"{other.describe()} holds {what(self.name, self.project)}; "
                    f"waited {wait:g}s for it",
                    lease=self.name,
                    holder_run_id=other.holder.run_id,
                    holder_pid=other.holder.pid,
                    holder_host=other.holder.host,
                    holder_command=other.holder.command,
                    since=other.acquired_at.isoformat(),
                    waited_s=wait,
                )
            if not told and on_wait is not None:
                on_wait(
                    f"{other.describe()} holds {what(self.name, self.project)}; waiting up to "
                    f"{wait:g}s for it (--wait SECONDS)"
                )
                told = True
            sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)
            tries += 1

    def note_run(self, run_id: str, command: str | None = None) -> None:
        """Name the run this lease is held for (whoever waits for it reads it)."""
        self.holder = self.holder.with_run(run_id, command)
        if self.held:
            self.leases.note_run(self.name, self.holder)

    def note_run_started(self, event: Event) -> None:
        """A bus handler: the run id of the session's run, as it starts."""
        if isinstance(event, RunStarted):
            self.note_run(event.run_id, event.command)

    def renew(self) -> bool:
        """Extend the lease now; False (and `lost`) if another holder has it."""
        if not self.held:
            return False
        if self.leases.renew(self.name, self.holder, ttl=self.ttl, now=self.clock()):
            return True
        self.lost = True
        if self.on_lost is not None:
            self.on_lost(
                f"lost {what(self.name, self.project)}: it expired and another process took it over"
            )
        return False

    def release(self) -> None:
        """Stop renewing and give the lease back (a no-op if it was not held)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.held:
            self.held = False
            self.leases.release(self.name, self.holder)

    def _held(self) -> None:
        self.held = True
        self.lost = False
        if self._thread is None or not self._thread.is_alive():  # none yet, or it saw a loss
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._heartbeat, name=f"penstock-lease-{self.name}", daemon=True
            )
            self._thread.start()

    def _heartbeat(self) -> None:
        """Renew every ttl/3 until released; a failing store is tried again next beat."""
        while not self._stop.wait(self.ttl / 3):
            try:
                if not self.renew():
                    return
            except Exception:  # the store is down: the next beat tries again
                continue

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
