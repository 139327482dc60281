"""Service levels: an object's `sla:` measured from the metadata store, and alerted on.

```yaml
objects:
  orders:
    sla: {freshness: 2h, success_rate: 99%, window: 7d}
```

- **freshness**: the time since the object last loaded a batch (the last load step that
  ended `success` or `warning`, as `penstock status` shows it) must be at most this. An object
  that never loaded a batch misses it.
- **success_rate**: of the object's runs that started within `window` (default 7d) and ended,
  the share that did not fail (its object step `success` or `warning`; `failed` and
  `abandoned` count against it) must be at least this. No run in the window: nothing is
  measured (freshness says whether that is a problem).

`check_slos` is the one function that evaluates and alerts: `penstock slo --check` calls it,
every run calls it for its objects when it ends (so a recovery follows fresh data at once), and
the scheduler calls it on its own clock, so a freshness miss alerts when no run happens at
all. A miss is an `SlaMissed` event: on the caller's bus when one is given (its sinks and
hooks see it; the session's alert sink alerts it), else straight to the `alerts:` rules that
ask for `sla_missed`. An SLO met again sends the recovery of a miss that was alerted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from penstock.observe import alert_messages as msg
from penstock.observe.events import SlaMissed, new_id, utcnow
from penstock.observe.schema import step_runs
from penstock.observe.status_reads import object_status

if TYPE_CHECKING:
    from penstock.catalog import Project
    from penstock.observe.alerts import AlertDispatcher, Notice
    from penstock.observe.bus import EventBus
    from penstock.observe.store import MetadataStore

SlaName = Literal["freshness", "success_rate"]
_COUNTED = ("success", "warning", "failed", "abandoned")
_FAILED = ("failed", "abandoned")


@dataclass(frozen=True)
class SloStatus:
    """One SLO of one object as measured at `evaluated_at`: `met` is None when there was
    nothing to measure. Freshness is in seconds (`measured` None: never loaded), a success
    rate a ratio."""

    object: str
    sla: SlaName
    expected: float
    expected_text: str
    measured: float | None
    measured_text: str
    met: bool | None
    message: str
    evaluated_at: datetime
    last_batch_at: datetime | None = None
    runs: int | None = None
    failed_runs: int | None = None
    window_s: float | None = None

    @property
    def unit(self) -> str:
        return "seconds" if self.sla == "freshness" else "ratio"

    @property
    def fingerprint(self) -> str:
        """The same miss, measured again, is the same occurrence (de-duplicated): the same
        last load, or the same runs counted."""
        if self.sla == "freshness":
            last = self.last_batch_at.isoformat() if self.last_batch_at else "never"
            return f"freshness:{last}"
        return f"success_rate:{self.runs}:{self.failed_runs}"


@dataclass
class SloReport:
    """What `check_slos` found and did: every SLO's status, the misses as events, and what
    became of the alerts."""

    evaluated_at: datetime
    statuses: list[SloStatus]
    missed: list[SlaMissed] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)

    @property
    def any_missed(self) -> bool:
        return any(s.met is False for s in self.statuses)


def evaluate_slos(
    project: Project,
    store: MetadataStore,
    *,
    now: datetime | None = None,
    objects: Sequence[str] | None = None,
) -> list[SloStatus]:
    """Every SLO of the project's objects (or of `objects`) as the store has it at `now`."""
    now = now or utcnow()
    specs = [
        o
        for o in project.objects_in_order()
        if o.sla is not None and (objects is None or o.name in objects)
    ]
    if not specs:
        return []
    names = [o.name for o in specs]
    with store.reading("read the objects' last loads") as rows:
        last = object_status(rows, names, totals=False)
    rates = _run_counts(store, [(o.name, o.sla.window_seconds) for o in specs if o.sla], now)
    out: list[SloStatus] = []
    for obj in specs:
        sla = obj.sla
        assert sla is not None
        if sla.freshness is not None:
            out.append(_freshness(obj.name, sla.freshness, last[obj.name].last_batch_at, now))
        if sla.success_rate is not None:
            ok, failed = rates.get(obj.name, (0, 0))
            out.append(_success_rate(obj.name, sla, ok + failed, failed, now))
    return out


def _freshness(name: str, text: str, last: datetime | None, now: datetime) -> SloStatus:
    from penstock.catalog.alerting import period_seconds

    expected = period_seconds(text)
    if last is None:
        return SloStatus(
            object=name,
            sla="freshness",
            expected=expected,
            expected_text=text,
            measured=None,
            measured_text="never loaded",
            met=False,
            message=f"{name} has never loaded a batch; expected one within {text}",
            evaluated_at=now,
        )
    age = max((now - last).total_seconds(), 0.0)
    met = age <= expected
    verb = "within" if met else "more than"
    return SloStatus(
        object=name,
        sla="freshness",
        expected=expected,
        expected_text=text,
        measured=age,
        measured_text=msg.ago(age),
        met=met,
        message=f"{name} last loaded a batch {msg.ago(age)} ago ({msg.when(last)}), {verb} {text}",
        evaluated_at=now,
        last_batch_at=last,
    )


def _success_rate(name: str, sla: Any, runs: int, failed: int, now: datetime) -> SloStatus:
    expected = float(sla.success_ratio)
    text = str(sla.success_rate) if isinstance(sla.success_rate, str) else f"{expected:.2%}"
    window = sla.window_seconds
    if not runs:
        return SloStatus(
            object=name,
            sla="success_rate",
            expected=expected,
            expected_text=text,
            measured=None,
            measured_text="no runs",
            met=None,
            message=f"{name} has no run in the last {sla.window}",
            evaluated_at=now,
            runs=0,
            failed_runs=0,
            window_s=window,
        )
    ratio = (runs - failed) / runs
    met = ratio >= expected
    shown = msg._percent(ratio)
    return SloStatus(
        object=name,
        sla="success_rate",
        expected=expected,
        expected_text=text,
        measured=ratio,
        measured_text=shown,
        met=met,
        message=f"{runs - failed:,} of {runs:,} run(s) of {name} in the last {sla.window} did "
        f"not fail ({shown}); expected at least {text}",
        evaluated_at=now,
        runs=runs,
        failed_runs=failed,
        window_s=window,
    )


def _run_counts(
    store: MetadataStore, windows: list[tuple[str, float]], now: datetime
) -> dict[str, tuple[int, int]]:
    """Per object: (runs that did not fail, runs that failed) started in its window (object
    steps; index ix_step_runs_object_started_at)."""
    s = step_runs.c
    out: dict[str, tuple[int, int]] = {}
    with store.writing("read the objects' runs") as conn:  # reads only: nothing is written
        for name, seconds in windows:
            since = now - timedelta(seconds=seconds)
            query = (
                sa.select(s.status, sa.func.count())
                .where(
                    s.object == name,
                    s.step == "object",
                    s.started_at >= since,
                    s.started_at <= now,
                    s.status.in_(_COUNTED),
                )
                .group_by(s.status)
            )
            ok = failed = 0
            for status, count in conn.execute(query):
                if status in _FAILED:
                    failed += int(count)
                else:
                    ok += int(count)
            out[name] = (ok, failed)
    return out


def check_slos(
    project: Project,
    *,
    store: MetadataStore | None = None,
    now: datetime | None = None,
    objects: Sequence[str] | None = None,
    bus: EventBus | None = None,
    dispatcher: AlertDispatcher | None = None,
) -> SloReport:
    """Evaluate the SLOs and alert on them (see the module docstring). The one function the
    CLI, runs and the scheduler call; opens the project's store when none is given."""
    from penstock.observe.store import MetadataStore

    own = store is None
    store = store or MetadataStore(project.metadata_url)
    try:
        now = now or utcnow()
        report = SloReport(now, evaluate_slos(project, store, now=now, objects=objects))
        if dispatcher is None and project.alerts:
            from penstock.observe.alerts import AlertDispatcher

            dispatcher = AlertDispatcher(project, store)
        evaluation = new_id()
        for status in report.statuses:
            if status.met is False:
                event = SlaMissed(
                    run_id=evaluation,
                    at=now,
                    object=status.object,
                    sla=status.sla,
                    measured=status.measured if status.measured is not None else float("inf"),
                    expected=status.expected,
                    unit=status.unit,
                    message=status.message,
                )
                report.missed.append(event)
                if bus is not None:
                    bus.emit(event)
                elif dispatcher is not None:
                    alert = msg.sla_missed(event, status.fingerprint)
                    report.notices += dispatcher.dispatch(alert)
            elif status.met and dispatcher is not None:
                alert = msg.sla_met(status.object, status.sla, status.message, now)
                report.notices += dispatcher.dispatch(alert)
        return report
    finally:
        if own:
            store.close()
