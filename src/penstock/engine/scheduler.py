"""`penstock schedule`: a foreground scheduler that starts due work through the normal runner.

- **One active scheduler per project**: it holds the `scheduler` lease (engine/lease.py);
  another one stands by, trying the lease every `min(poll, ttl/3)` seconds, and takes over
  when the active one stops or dies. `--once` does not stand by: it says who is active and
  exits 0.
- **Due work** (engine/schedule.py): the objects whose cron ticks (UTC) are due, applying their
  `catchup:` after downtime; several objects due at the same tick run as one run
  (`--select a,b`); missed ticks under `catchup: all` each run on their own, oldest first.
- **On arrival**: every `poll` seconds, objects with `trigger: on_arrival` ask their source
  for new *settled* files (`discover`, as a run would); some arrived ⇒ the object runs (with
  the scheduled work due at the same time, if any).
- **Runs** go through `Session` and `Runner.run` like `penstock run`, so they take the
  project's lease: a manual run in progress makes the scheduled work wait (`--wait`), then
  defer; deferred work is tried again on the next pass (its tick is not recorded).
- **Stopping**: `request_stop()` (the CLI's first SIGINT/SIGTERM) lets the run in progress
  finish, starts nothing new, releases the lease.

Time comes from `clock` and waiting from `sleep` (both injectable: tests drive catchup with a
fake clock and no real waiting). Each decision is said through `say` (the console) and
written to the metadata store's logs under the scheduler's holder id (`penstock logs`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from penstock.catalog import ObjectSpec, Project
from penstock.defaults import DEFAULT_WAIT_SECONDS
from penstock.engine.failures import describe
from penstock.engine.lease import LEASE_TTL_SECONDS, SCHEDULER_LEASE, Lease, what
from penstock.engine.schedule import GRACE, Due, Entry, due, entries, next_tick
from penstock.errors import LeaseHeld, PenstockError, UsageError
from penstock.lake import Lake
from penstock.observe import LogRecord, MetadataStore, utcnow
from penstock.observe.schedule_state import ScheduleState

DEFAULT_POLL_SECONDS = 30.0
MAX_SLEEP_SECONDS = 60.0
SLO_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Work:
    """One run to start: `objects` (the selector), `ticked` those of them due at `tick`
    (None: only files arrived), and why."""

    objects: tuple[str, ...]
    ticked: tuple[str, ...]
    tick: datetime | None
    reason: str


@dataclass(frozen=True)
class WorkDone:
    """What starting `work` came to: the run's outcome (`success`, `warning`, `failed`),
    `deferred` (another run held the project) or `error` (the run could not start)."""

    work: Work
    status: str
    run_id: str | None
    message: str = ""


RunWork = Callable[[Work], WorkDone]
Say = Callable[[str, str], None]  # (level, message)


def run_in_session(
    project: Project, *, wait: float, on_wait: Callable[[str], None] | None = None
) -> RunWork:
    """Start work as `penstock run --select …` does (the project's lease included)."""

    def start(work: Work) -> WorkDone:
        from penstock.engine.session import Session

        try:
            with Session(project, wait=wait, on_wait=on_wait, command="run") as session:
                result = session.runner.run(",".join(work.objects))
        except LeaseHeld as held:
            return WorkDone(work, "deferred", None, held.message)
        except PenstockError as exc:
            return WorkDone(work, "error", None, exc.message)
        except Exception as exc:  # the daemon goes on; the next pass tries again
            return WorkDone(work, "error", None, describe(exc)[0])
        failed = [f"{f.object}: {f.error}" for f in result.failures[:3]]
        return WorkDone(work, result.outcome, result.run_id, "; ".join(failed))

    return start


def new_files(project: Project, lake: Lake, obj: ObjectSpec) -> tuple[int, int]:
    """(new settled files, files still settling) of an object, as a run would find them."""
    from penstock.lake.stage import known_files
    from penstock.sources import source_for

    source = source_for(project, obj)
    settings = source.read_settings(obj)
    rejected = [r for r in lake.rejections(obj.name) if r.read_settings == settings]
    known = known_files(lake.batches(obj.name), lake.read_file_index(obj.name), rejected)
    found = source.discover(obj, known)
    return len(found.new), len(found.unsettled)


class Scheduler:
    def __init__(
        self,
        project: Project,
        store: MetadataStore,
        *,
        selector: str | None = None,
        poll: float = DEFAULT_POLL_SECONDS,
        wait: float = DEFAULT_WAIT_SECONDS,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], object] | None = None,
        run_work: RunWork | None = None,
        say: Say | None = None,
        grace: timedelta = GRACE,
        lease_ttl: float = LEASE_TTL_SECONDS,
    ) -> None:
        self.project = project
        self.entries: list[Entry] = entries(project, selector)
        if not self.entries:
            raise UsageError(
                "nothing to schedule: no selected object has a `schedule:` (its own or its "
                "group's) or `trigger: on_arrival`"
            )
        self.store = store
        self.state = ScheduleState(store.engine, project.name)
        self.lake = Lake(project.lake_path)
        self.poll = poll
        self.clock = clock
        self.stopping = threading.Event()
        self.sleep: Callable[[float], object] = sleep or self.stopping.wait
        self.run_work = run_work or run_in_session(project, wait=wait)
        self._say = say
        self.grace = grace
        self.lease = Lease(
            store,
            project.name,
            SCHEDULER_LEASE,
            command="schedule",
            ttl=lease_ttl,
            on_lost=lambda message: self.say("warning", message),
        )
        # service levels on the scheduler's clock: a freshness miss alerts with no run at all
        self.slo_objects = [o.name for o in project.select(selector) if o.sla is not None]
        self.last_slo_check: datetime | None = None
        self.active_since: datetime | None = None
        self.last_poll: datetime | None = None
        self.pending = False  # work was deferred or stopped: look again after `poll`
        self.failed = 0

    # -- the loop -------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Finish the run in progress, start nothing new, then return from `serve`."""
        self.stopping.set()

    def serve(self, *, once: bool = False) -> int:
        """Run until stopped (or, `once`, one pass). 0, or 1 when `once` and a run failed."""
        try:
            while not self.stopping.is_set():
                if not self._become_active(once):
                    return 0
                self.active_since = self.clock()
                self.say("info", f"active: {self._summary()}")
                while not self.stopping.is_set() and not self.lease.lost:
                    self._pass()
                    if once:
                        return 1 if self.failed else 0
                    self.sleep(self.seconds_to_wake())
                if self.lease.lost:
                    self.say("warning", "standing by again: another scheduler took over")
            return 0
        finally:
            self.lease.release()
            if self.active_since is not None:
                self.say("info", "stopped: the scheduler lease is released")

    def _pass(self) -> None:
        """One pass; an error (the store down, say) is said and the next pass tries again."""
        try:
            self.tick()
        except Exception as exc:
            self.failed += 1
            self.pending = True
            self.say("error", f"this pass failed: {describe(exc)[0]}; trying again")
        self.check_slos()

    def check_slos(self) -> None:
        """Evaluate (and alert on) the `sla:` of the scheduled objects, once a minute."""
        now = self.clock()
        if not self.slo_objects or (
            self.last_slo_check is not None and now < self.last_slo_check + SLO_EVERY
        ):
            return
        self.last_slo_check = now
        from penstock.observe.slo import check_slos

        try:
            report = check_slos(self.project, store=self.store, now=now, objects=self.slo_objects)
        except Exception as exc:
            self.say("warning", f"service levels not checked: {describe(exc)[0]}")
            return
        for missed in report.missed:
            self.say("warning", f"{missed.object}: {missed.sla} SLO missed: {missed.message}")

    def _become_active(self, once: bool) -> bool:
        """Take the scheduler lease, standing by while another scheduler holds it."""
        told = False
        while not self.stopping.is_set():
            other = self.lease.try_acquire()
            if other is None:
                return True
            if once:
                self.say("info", f"{other.describe()} is the active scheduler; nothing was done")
                return False
            if not told:
                self.say(
                    "info",
                    f"standing by: {other.describe()} holds "
                    f"{what(SCHEDULER_LEASE, self.project.name)}; taking over if it stops",
                )
                told = True
            self.sleep(min(self.poll, self.lease.ttl / 3))
        return False

    def seconds_to_wake(self) -> float:
        """Until the next tick of any object, or the next poll when files may arrive or work
        waits; at most a minute (a changed clock is noticed)."""
        now = self.clock()
        wake = now + timedelta(seconds=MAX_SLEEP_SECONDS)
        for entry in self.entries:
            if entry.cron:
                wake = min(wake, next_tick(entry.cron, now))
        if self.pending or any(e.on_arrival for e in self.entries):
            base = self.last_poll if self.last_poll is not None and not self.pending else now
            wake = min(wake, base + timedelta(seconds=self.poll))
        return max((wake - now).total_seconds(), 0.0)

    # -- one pass -------------------------------------------------------------------------
    def tick(self) -> list[WorkDone]:
        """Start everything due now; what each start came to."""
        now = self.clock()
        self.pending = False
        works = self.due_work(now)
        arrived = self._arrivals(now)
        if arrived:
            reason = "files arrived for " + ", ".join(arrived)
            if works and works[-1].tick is not None and works[-1].tick > now - self.grace:
                last = works[-1]  # due now anyway: one run for both
                objects = tuple(dict.fromkeys(last.objects + tuple(arrived)))
                works[-1] = Work(objects, last.ticked, last.tick, f"{last.reason}; {reason}")
            else:
                works.append(Work(tuple(arrived), (), None, reason))
        done: list[WorkDone] = []
        for work in works:
            if self.stopping.is_set():
                self.pending = True
                self.say("info", f"stopping: not starting {', '.join(work.objects)}")
                break
            done.append(self._start(work))
        return done

    def due_work(self, now: datetime) -> list[Work]:
        """The scheduled runs due at `now`, oldest tick first; objects whose missed ticks are
        skipped (`catchup: none`) move on here."""
        states = self.state.read()
        # on time: since the scheduler became active (and a minute before: a tick seen by
        # `--once` from cron a little late is still on time)
        on_time_after = min(self.active_since or now, now) - self.grace
        by_tick: dict[datetime, list[str]] = {}
        for entry in self.entries:
            last = states[entry.object].last_tick if entry.object in states else None
            plan = due(entry, last, now, on_time_after)
            self._tell_catchup(entry, plan)
            if not plan.run and plan.record is not None:
                self.state.record(
                    [entry.object], plan.record, run_id=None, status="skipped", now=now
                )
            for tick in plan.run:
                by_tick.setdefault(tick, []).append(entry.object)
        return [
            Work(tuple(names), tuple(names), tick, f"scheduled at {_when(tick)}")
            for tick, names in sorted(by_tick.items())
        ]

    def _tell_catchup(self, entry: Entry, plan: Due) -> None:
        if not plan.missed or plan.record is None:
            return
        if entry.catchup == "all":
            said = f"runs each of them (catchup: all, {len(plan.run)} run(s) this pass)"
        elif entry.catchup == "latest":
            said = f"runs once for them (catchup: latest, tick {_when(plan.record)})"
        else:
            said = "skips them (catchup: none)"
        self.say("info", f"{entry.object}: {plan.missed} scheduled tick(s) missed; {said}")

    def _arrivals(self, now: datetime) -> list[str]:
        """The on-arrival objects with new settled files (once per `poll`)."""
        watched = [e for e in self.entries if e.on_arrival]
        if not watched:
            return []
        if self.last_poll is not None and now < self.last_poll + timedelta(seconds=self.poll):
            return []
        self.last_poll = now
        arrived: list[str] = []
        for entry in watched:
            try:
                new, settling = new_files(
                    self.project, self.lake, self.project.objects[entry.object]
                )
            except Exception as exc:
                self.say(
                    "warning", f"{entry.object}: cannot look for new files: {describe(exc)[0]}"
                )
                continue
            if new:
                arrived.append(entry.object)
                self.say("info", f"{entry.object}: {new} new file(s) arrived")
            elif settling:
                self.say("info", f"{entry.object}: {settling} file(s) still settling; not yet")
        return arrived

    def _start(self, work: Work) -> WorkDone:
        self.say("info", f"starting a run of {', '.join(work.objects)}: {work.reason}")
        result = self.run_work(work)
        if result.status == "deferred":
            self.pending = True
            self.say("info", f"deferred: {result.message}; trying again in {self.poll:g}s")
            return result
        if work.tick is not None and work.ticked:
            self.state.record(
                work.ticked, work.tick, run_id=result.run_id, status=result.status, now=self.clock()
            )
        run = f"run {result.run_id[:8]}" if result.run_id else "the run"
        if result.status in ("failed", "error"):
            self.failed += 1
            self.pending = self.pending or result.status == "error"  # not started: again
            self.say(
                "error", f"{run} of {', '.join(work.objects)} {result.status}: {result.message}"
            )
        else:
            self.say("info", f"{run} of {', '.join(work.objects)} ended: {result.status}")
        return result

    # -- saying what it does --------------------------------------------------------------
    def say(self, level: str, message: str) -> None:
        if self._say is not None:
            self._say(level, message)
        with contextlib.suppress(Exception):  # a failing store never stops the scheduler
            self.store.handle(
                LogRecord(
                    run_id=self.lease.holder.holder_id,
                    level=level,  # type: ignore[arg-type]
                    message=message,
                    fields={"event": "schedule", "project": self.project.name},
                )
            )

    def _summary(self) -> str:
        parts = []
        for e in self.entries:
            how = [f"'{e.cron}' (catchup: {e.catchup})"] if e.cron else []
            if e.on_arrival:
                how.append(f"on arrival (poll {self.poll:g}s)")
            parts.append(f"{e.object} {' and '.join(how)}")
        return f"{self.project.name}: " + "; ".join(parts) + "; times in UTC"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")
