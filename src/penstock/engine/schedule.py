"""When scheduled work is due: effective schedules, cron ticks in UTC, and catchup.

An object's schedule is its own `schedule:`, else its group's; its `catchup:` likewise, else
`latest`. Cron expressions are evaluated in **UTC** (croniter): `0 6 * * *` is 06:00 UTC.

A *tick* is a time the cron expression names. For each object the scheduler remembers the
last tick it dealt with (observe/schedule_state.py). At `now`, the ticks after that one are:

- **on time** when they come after `on_time_after` (the scheduler was up: since it became
  active, and within a grace of a minute for `penstock schedule --once` from cron). Each runs
  under `all`; once (the latest) under `latest` and `none`.
- **missed** otherwise (the scheduler was down): `all` runs every one, oldest first, each as its
  own run (at most `MAX_TICKS` per pass; the next pass goes on); `latest` runs once for all of
  them; `none` skips them.

An object seen for the first time has no memory: its latest tick up to now is its only tick
(it runs once, unless that tick is missed under `none`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from penstock.catalog import Project
from penstock.catalog.orchestration import DEFAULT_CATCHUP, Catchup

MAX_TICKS = 1000
GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class Entry:
    """One object as the scheduler sees it."""

    object: str
    cron: str | None
    catchup: Catchup
    on_arrival: bool


def entries(project: Project, selector: str | None = None) -> list[Entry]:
    """The selected objects that have a schedule or trigger on arrival, in project order."""
    found: list[Entry] = []
    for obj in project.select(selector):
        group = project.groups.get(obj.group)
        cron = obj.schedule or (group.schedule if group else None)
        catchup = obj.catchup or (group.catchup if group else None) or DEFAULT_CATCHUP
        on_arrival = obj.trigger == "on_arrival"
        if cron or on_arrival:
            found.append(Entry(obj.name, cron, catchup, on_arrival))
    return found


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: schedule times are UTC-aware")
    return at.astimezone(UTC)


def ticks_after(
    cron: str, after: datetime, until: datetime, limit: int = MAX_TICKS
) -> list[datetime]:
    """The ticks in (after, until], oldest first, at most `limit`."""
    from croniter import croniter

    it = croniter(cron, _utc(after))
    found: list[datetime] = []
    while len(found) < limit:
        tick: datetime = it.get_next(datetime)
        if tick > until:
            break
        found.append(tick)
    return found


def latest_tick(cron: str, at: datetime) -> datetime:
    """The last tick at or before `at`."""
    from croniter import croniter

    at = _utc(at)
    before: datetime = croniter(cron, at).get_prev(datetime)
    following: datetime = croniter(cron, before).get_next(datetime)
    return following if following <= at else before


def next_tick(cron: str, after: datetime) -> datetime:
    """The first tick after `after`."""
    from croniter import croniter

    tick: datetime = croniter(cron, _utc(after)).get_next(datetime)
    return tick


@dataclass
class Due:
    """What to do about one object now: run these ticks (oldest first); then remember
    `record` as its last tick (it moves on even when nothing runs). `missed`: how many of the
    ticks since the last were missed (counted up to `MAX_TICKS`)."""

    run: list[datetime] = field(default_factory=list)
    record: datetime | None = None
    missed: int = 0


def due(entry: Entry, last: datetime | None, now: datetime, on_time_after: datetime) -> Due:
    """The ticks of `entry` to run at `now` (module docstring)."""
    if entry.cron is None:
        return Due()
    newest = latest_tick(entry.cron, now)
    if last is not None and newest <= last:
        return Due()
    if last is None:
        missed = int(newest <= on_time_after)
    else:
        missed = len(ticks_after(entry.cron, last, min(on_time_after, now)))
    if entry.catchup == "all":
        ticks = [newest] if last is None else ticks_after(entry.cron, last, now)
        return Due(run=ticks, record=ticks[-1], missed=missed)
    if entry.catchup == "latest":
        return Due(run=[newest], record=newest, missed=missed)
    # none: missed ticks are skipped; the newest runs if it is on time
    return Due(run=[newest] if newest > on_time_after else [], record=newest, missed=missed)
