"""The scheduler (engine/scheduler.py) with an injected clock and sleep: catchup all, latest
and none after downtime, due work at a tick, on-arrival triggers that wait for files to
settle, and a scheduler standing by while another holds the scheduler lease. Runs are real
runs (DuckDB, landing files); only time is simulated."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from penstock.catalog import Project, load_project
from penstock.engine.schedule import Entry, due, latest_tick, ticks_after
from penstock.engine.scheduler import Scheduler, Work, WorkDone, run_in_session
from penstock.observe import MetadataStore
from penstock.observe.leases import LeaseStore
from penstock.observe.schedule_state import ScheduleState

from helpers import query, write_project

PROJECT = """
name: clocked
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
groups:
  hourly: {schedule: "0 * * * *", catchup: all}
objects:
  every:
    source: landing
    files: "every/*.csv"
    group: hourly
    columns: {id: {type: bigint, required: true}}
  newest:
    source: landing
    files: "newest/*.csv"
    group: hourly
    catchup: latest
    columns: {id: {type: bigint, required: true}}
  skipping:
    source: landing
    files: "skipping/*.csv"
    schedule: "0 * * * *"
    catchup: none
    columns: {id: {type: bigint, required: true}}
  unscheduled:
    source: landing
    files: "unscheduled/*.csv"
    columns: {id: {type: bigint, required: true}}
"""
FILES = {f"landing/{name}/a.csv": "id\n1\n2\n" for name in ("every", "newest", "skipping")}


class Clock:
    """Simulated time: `sleep` moves it on (and may stop the scheduler at a given time)."""

    def __init__(self, at: datetime) -> None:
        self.at = at
        self.slept: list[float] = []
        self.scheduler: Scheduler | None = None
        self.stop_at: datetime | None = None

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += timedelta(seconds=seconds)
        if self.scheduler is not None and self.stop_at is not None and self.at >= self.stop_at:
            self.scheduler.request_stop()


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, 1, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return load_project(write_project(tmp_path / "p", PROJECT, FILES))


@pytest.fixture
def store(project: Project) -> Iterator[MetadataStore]:
    with MetadataStore(project.metadata_url) as s:
        yield s


class Recorder:
    """Real runs (`run_in_session`), remembering each Work started."""

    def __init__(self, project: Project) -> None:
        self.real = run_in_session(project, wait=5)
        self.works: list[Work] = []

    def __call__(self, work: Work) -> WorkDone:
        self.works.append(work)
        return self.real(work)

    def started(self) -> list[tuple[datetime | None, tuple[str, ...]]]:
        return [(w.tick, w.objects) for w in self.works]


def scheduler(project: Project, store: MetadataStore, clock: Clock, **kw: object) -> Scheduler:
    said: list[tuple[str, str]] = kw.pop("said", [])  # type: ignore[assignment]
    made = Scheduler(
        project,
        store,
        clock=clock.now,
        sleep=clock.sleep,
        say=lambda level, message: said.append((level, message)),
        **kw,  # type: ignore[arg-type]
    )
    clock.scheduler = made
    return made


def test_ticks_are_utc_cron_times() -> None:
    cron = "30 6 * * 1-5"  # 06:30 UTC on weekdays
    assert latest_tick(cron, datetime(2026, 3, 2, 6, 30, tzinfo=UTC)) == datetime(
        2026, 3, 2, 6, 30, tzinfo=UTC
    )  # a tick is due at its own time
    assert latest_tick(cron, datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) == datetime(
        2026, 2, 27, 6, 30, tzinfo=UTC
    )  # Sunday: Friday's
    assert ticks_after("0 * * * *", at(10), at(13)) == [at(11), at(12), at(13)]
    entry = Entry("x", "0 * * * *", "none", False)
    plan = due(entry, at(10), at(13, 30), on_time_after=at(13, 29))
    assert plan.run == [] and plan.record == at(13) and plan.missed == 3


def test_catchup_all_latest_none_after_downtime(project: Project, store: MetadataStore) -> None:
    clock = Clock(at(10, 0, 30))
    first = Recorder(project)
    done = scheduler(project, store, clock, run_work=first).tick()
    # first sight, on time: every scheduled object runs once, in one run
    assert first.started() == [(at(10), ("every", "newest", "skipping"))]
    assert [d.status for d in done] == ["success"]
    assert query(project.root, "SELECT count(*) FROM every") == [(2,)]
    # down from 10:00:30 to 13:30: ticks 11:00, 12:00 and 13:00 were missed
    for name in ("every", "newest", "skipping"):
        (project.root / f"landing/{name}/b.csv").write_text("id\n3\n")
    clock.at = at(13, 30)
    said: list[tuple[str, str]] = []
    again = Recorder(project)
    scheduler(project, store, clock, run_work=again, said=said).tick()
    assert again.started() == [
        (at(11), ("every",)),  # all: each missed tick its own run, oldest first
        (at(12), ("every",)),
        (at(13), ("every", "newest")),  # latest: once, with all's run of that tick
    ]
    messages = [m for _, m in said]
    assert (
        "every: 3 scheduled tick(s) missed; runs each of them (catchup: all, 3 run(s) this pass)"
        in messages
    )
    assert "skipping: 3 scheduled tick(s) missed; skips them (catchup: none)" in messages
    state = ScheduleState(store.engine, project.name).read()
    assert {n: (s.last_tick, s.last_status) for n, s in state.items()} == {
        "every": (at(13), "success"),
        "newest": (at(13), "success"),
        "skipping": (at(13), "skipped"),
    }
    # the data: the new file loaded once where a run happened, not where none did
    assert query(project.root, "SELECT count(*) FROM every") == [(3,)]
    assert query(project.root, "SELECT count(*) FROM newest") == [(3,)]
    assert query(project.root, "SELECT count(*) FROM skipping") == [(2,)]
    assert query(project.root, "SELECT count(*), count(DISTINCT batch_id) FROM penstock.loads") == [
        (5, 5)
    ]
    # a third pass at the same time: nothing is due
    third = Recorder(project)
    assert scheduler(project, store, clock, run_work=third).tick() == [] and third.works == []
    # the scheduler's decisions are in the metadata store's logs
    with store.engine.connect() as conn:
        logged = [r[0] for r in conn.exec_driver_sql("SELECT message FROM logs")]
    assert any("skips them (catchup: none)" in m for m in logged)


def test_the_loop_sleeps_until_the_next_tick_and_runs_it(
    project: Project, store: MetadataStore
) -> None:
    clock = Clock(at(10, 0, 30))
    works: list[Work] = []

    def fake(work: Work) -> WorkDone:
        works.append(work)
        return WorkDone(work, "success", f"run{len(works)}")

    sched = scheduler(project, store, clock, run_work=fake)
    clock.stop_at = at(12, 0, 1)
    assert sched.serve() == 0
    assert [(w.tick, w.objects) for w in works] == [
        (at(10), ("every", "newest", "skipping")),
        (at(11), ("every", "newest", "skipping")),  # on time while it is up: none runs too
        (at(12), ("every", "newest", "skipping")),
    ]
    # it wakes at least every minute, and exactly at each tick
    assert max(clock.slept) <= 60 and sum(clock.slept[:60]) == 59 * 60 + 30
    assert LeaseStore(store.engine, project.name).all() == []  # released on the way out


def test_a_deferred_tick_is_tried_again(project: Project, store: MetadataStore) -> None:
    clock = Clock(at(10, 0, 30))
    answers = ["deferred", "success"]
    works: list[Work] = []

    def busy_then_free(work: Work) -> WorkDone:
        works.append(work)
        return WorkDone(work, answers.pop(0), None, "run 1234 holds project 'clocked'")

    sched = scheduler(project, store, clock, run_work=busy_then_free, poll=30)
    clock.stop_at = at(10, 1, 1)
    sched.serve()
    assert [(w.tick, w.objects) for w in works] == [
        (at(10), ("every", "newest", "skipping")),
        (at(10), ("every", "newest", "skipping")),  # catchup none too: it was on time
    ]
    assert clock.slept[0] == 30  # the poll, not the next tick
    assert ScheduleState(store.engine, project.name).read()["every"].last_tick == at(10)


ARRIVAL = """
name: arrivals
sources:
  landing: {kind: files, path: ./landing, settle: 5s}
objects:
  drops:
    source: landing
    files: "drops/*.csv"
    trigger: on_arrival
    columns: {id: {type: bigint, required: true}}
"""


def test_on_arrival_runs_when_a_file_lands_and_settles(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", ARRIVAL)
    (root / "landing/drops").mkdir(parents=True)
    project = load_project(root)
    clock = Clock(at(10))
    with MetadataStore(project.metadata_url) as store:
        said: list[tuple[str, str]] = []
        runs = Recorder(project)
        sched = scheduler(project, store, clock, run_work=runs, poll=30, said=said)
        assert sched.tick() == []  # nothing landed
        landed = root / "landing/drops/d1.csv"
        landed.write_text("id\n7\n8\n")
        clock.at += timedelta(seconds=10)
        assert sched.tick() == []  # too soon: the poll is every 30s
        clock.at += timedelta(seconds=20)
        assert sched.tick() == []  # polled: still settling (written < 5s ago)
        assert ("info", "drops: 1 file(s) still settling; not yet") in said
        old = time.time() - 60
        os.utime(landed, (old, old))  # it settled
        clock.at += timedelta(seconds=30)
        (done,) = sched.tick()
        assert done.status == "success" and done.work.objects == ("drops",)
        assert done.work.tick is None and "files arrived for drops" in done.work.reason
        assert query(root, "SELECT id FROM drops ORDER BY id") == [(7,), (8,)]
        clock.at += timedelta(seconds=30)
        assert sched.tick() == []  # it is staged: nothing new
        assert len(runs.works) == 1


def test_a_second_scheduler_stands_by_while_one_is_active(
    project: Project, store: MetadataStore
) -> None:
    clock = Clock(at(10, 0, 30))
    active = scheduler(project, store, clock, run_work=Recorder(project))
    assert active.lease.try_acquire() is None
    try:
        said: list[tuple[str, str]] = []
        other = Recorder(project)
        once = scheduler(project, store, Clock(at(10, 0, 30)), run_work=other, said=said)
        assert once.serve(once=True) == 0
        assert other.works == []  # nothing run: the active one does it
        assert "is the active scheduler; nothing was done" in said[0][1]
        assert f"PID {os.getpid()}" in said[0][1]
        # a daemon stands by, trying again every poll, until the active one stops
        said.clear()
        standby_clock = Clock(at(10, 0, 30))
        standby = scheduler(project, store, standby_clock, run_work=other, said=said, poll=5)
        standby_clock.stop_at = at(10, 0, 50)
        assert standby.serve() == 0
        assert other.works == [] and standby_clock.slept == [5, 5, 5, 5]
        assert said[0][1].startswith("standing by: ")
    finally:
        active.lease.release()
    taker_clock = Clock(at(10, 0, 30))
    taker = scheduler(project, store, taker_clock, run_work=other)
    taker_clock.stop_at = at(10, 0, 31)
    assert taker.serve() == 0
    assert [w.tick for w in other.works] == [at(10)]


SLA = """
name: fresh
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  feed:
    source: landing
    files: "feed/*.csv"
    schedule: "0 0 1 1 *"
    sla: {freshness: 1h}
    columns: {id: {type: bigint, required: true}}
"""


def test_the_scheduler_checks_service_levels_on_its_own_clock(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", SLA)
    (root / "landing/feed").mkdir(parents=True)
    project = load_project(root)
    clock = Clock(at(10))
    with MetadataStore(project.metadata_url) as store:
        said: list[tuple[str, str]] = []
        sched = scheduler(project, store, clock, run_work=Recorder(project), said=said)
        clock.stop_at = at(10, 3)
        assert sched.serve() == 0
    misses = [m for level, m in said if "SLO missed" in m]
    # nothing ever loaded: freshness is missed, said once a minute (alerts throttle by rule)
    assert len(misses) == 3 and misses[0].startswith("feed: freshness SLO missed: ")


def test_trigger_schedule_without_a_cron_is_refused_at_load(tmp_path: Path) -> None:
    yml = """
    name: cronless
    sources:
      landing: {kind: files, path: ./landing}
    groups:
      hourly: {schedule: "0 * * * *"}
    objects:
      lonely:
        source: landing
        files: "a/*.csv"
        trigger: schedule
        columns: {id: {type: bigint}}
      grouped:
        source: landing
        files: "b/*.csv"
        group: hourly
        trigger: schedule
        columns: {id: {type: bigint}}
    """
    from penstock.errors import ProjectErrors

    with pytest.raises(ProjectErrors) as caught:
        load_project(write_project(tmp_path, yml))
    text = str(caught.value)
    # the object whose group has a cron is fine; the other is named with its line
    assert "objects.lonely.trigger: trigger: schedule needs a schedule" in text
    assert "penstock.yml:11:" in text and "grouped" not in text
