"""Push alerts: the project's `alerts:` rules, fed by a run's events, sent through apprise.

```yaml
alerts:
  - {name: ops, on: [run_failed, check_failed], objects: [orders],
     to: ["json://127.0.0.1:8080/hook", "mailto://…"], throttle: 1h}
```

- **The sink** (`AlertSink`, attached to every session by observe/sinks.py when the project
  has rules) turns events into conditions: `run_failed` per object when a run ends (cleared
  by a run in which the object did not fail), `check_failed` per object when its work in a
  run ends (all its batches of the run in one message; cleared when its batches pass; not
  in a `rebuild`, which replays batches alerted when they loaded), `source_down` per source
  (cleared when it is reached), `schema_drift` and `anomaly` as they come (events: nothing
  clears them), `sla_missed` when an SLO evaluation finds a miss. When a run ends it
  evaluates the SLOs of its objects (observe/slo.py), so a recovery follows fresh data at
  once. The sink is queued: a slow or failing destination never slows or fails a load.
- **The dispatcher** (`AlertDispatcher`) matches a condition to the rules that want it, lets
  the shared state decide (observe/alert_state.py: throttle, de-duplication, recovery, in the
  metadata store) and sends what is due to each destination of the rule.
- **The notifier** (`Notifier`) sends a title and a text body to each destination with
  apprise (an extra: `pip install 'penstock[alerts]'`). A destination is named `ops[0]
  (json)`, never by its URL: URLs may hold tokens or passwords. A destination that fails is
  reported once per process on stderr and recorded in `alert_log`; the others still get it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from penstock.errors import MissingExtra, ProjectError, UsageError, first_line
from penstock.observe import alert_messages as msg
from penstock.observe.alert_messages import Alert
from penstock.observe.alert_state import AlertLedger, Decision, Occurrence
from penstock.observe.events import (
    Anomaly,
    ChecksEvaluated,
    Event,
    RunFinished,
    RunStarted,
    SchemaDrift,
    SlaMissed,
    SourceChecked,
    StepFinished,
    utcnow,
)
from penstock.secrets import redact

if TYPE_CHECKING:
    from penstock.catalog import Project
    from penstock.catalog.alerting import AlertRule
    from penstock.observe.bus import EventBus
    from penstock.observe.store import MetadataStore

INSTALL = "pip install 'penstock[alerts]'"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def _apprise() -> Any:
    try:
        import apprise
    except ImportError:
        raise MissingExtra(
            f"alerts need apprise, which is not installed: {INSTALL}", extra="alerts"
        ) from None
    return apprise


# ---- sending ---------------------------------------------------------------------------------


@dataclass
class Delivery:
    """Which destinations took a message (labels) and which did not (label, reason)."""

    delivered: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


class _Captured(logging.Handler):
    """Collects apprise's warnings on the thread that is sending (the reason a destination
    failed); other threads' records are left alone."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(self.local, "lines", None)
        if lines is not None:
            with contextlib.suppress(Exception):
                lines.append(record.getMessage())


_CAPTURE = _Captured()
_capture_lock = threading.Lock()


class Notifier:
    """Sends to the destinations of the project's rules (see the module docstring)."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._apprise = _apprise()
        self._services: dict[tuple[str, int], Any] = {}
        self._reported: set[str] = set()
        with _capture_lock:
            log = logging.getLogger("apprise")
            if _CAPTURE not in log.handlers:
                log.addHandler(_CAPTURE)

    def check(self) -> None:
        """Every destination is a URL apprise understands (a project error otherwise, at
        its key path; the URL itself is never shown)."""
        problems = []
        for i, rule in enumerate(self.project.alerts):
            for j in range(len(rule.to)):
                if self._service(rule, j) is None:
                    where = f"alerts[{i}].to[{j}]"
                    at = self.project.origin(where) or self.project.origin(f"alerts[{i}]")
                    problems.append(
                        ProjectError(
                            f"{rule.destination_label(j)}: not a destination apprise "
                            f"understands (see apprise's list of services)",
                            file=at[0] if at else None,
                            line=at[1] if at else None,
                            key_path=where,
                        )
                    )
        if problems:
            raise problems[0]

    def _service(self, rule: AlertRule, index: int) -> Any:
        key = (rule.name, index)
        if key not in self._services:
            service = self._apprise.Apprise()
            with self._capturing():
                ok = service.add(rule.to[index].strip())
            self._services[key] = service if ok else None
        return self._services[key]

    @contextlib.contextmanager
    def _capturing(self) -> Any:
        _CAPTURE.local.lines = []
        try:
            yield _CAPTURE.local.lines
        finally:
            _CAPTURE.local.lines = None

    def send(self, rule: AlertRule, title: str, body: str, kind: str) -> Delivery:
        """Send to each destination of `rule`; never raises for a destination's failure."""
        out = Delivery()
        for index in range(len(rule.to)):
            label = rule.destination_label(index)
            service = self._service(rule, index)
            if service is None:
                out.failed.append((label, "not a destination apprise understands"))
                continue
            with self._capturing() as lines:
                try:
                    ok = bool(
                        service.notify(
                            body=body,
                            title=title,
                            notify_type=kind,
                            body_format=self._apprise.NotifyFormat.TEXT,
                        )
                    )
                    reason = "; ".join(lines[-2:]) or "the destination did not accept it"
                except Exception as exc:  # a destination may fail in any way
                    ok, reason = False, f"{type(exc).__name__}: {first_line(exc)}"
            if ok:
                out.delivered.append(label)
            else:
                out.failed.append((label, self._scrub(reason, rule)))
        return out

    @staticmethod
    def _scrub(reason: str, rule: AlertRule) -> str:
        """A reason fit to print and store: no URL of the rule (nor any other), no secret."""
        for url in rule.to:
            reason = reason.replace(url.strip(), "<destination>")
        return redact(_URL.sub("<url>", reason))[:500]

    def report(self, label: str, reason: str) -> None:
        """One line on stderr the first time a destination fails in this process."""
        if label in self._reported:
            return
        self._reported.add(label)
        with contextlib.suppress(Exception):
            print(
                redact(f"penstock: alert to {label} not delivered: {reason}; the run goes on"),
                file=sys.stderr,
                flush=True,
            )


# ---- deciding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """What became of a condition for one rule: `action` (alert, reminder, recovery,
    throttled, cleared, test) and its destinations."""

    rule: str
    key: str
    event: str
    object: str | None
    action: str
    title: str = ""
    delivered: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()


class AlertDispatcher:
    """Matches conditions to rules, decides with the shared state, sends what is due."""

    def __init__(
        self, project: Project, store: MetadataStore, notifier: Notifier | None = None
    ) -> None:
        self.project = project
        self.store = store
        self.ledger = AlertLedger(store, project.name)
        self.notifier = notifier or Notifier(project)

    def dispatch(self, alert: Alert) -> list[Notice]:
        notices = []
        for rule in self.project.alerts:
            if rule.wants(alert.event, alert.object):
                notice = self._one(rule, alert)
                if notice is not None:
                    notices.append(notice)
        return notices

    def _one(self, rule: AlertRule, alert: Alert) -> Notice | None:
        occurrence = Occurrence(
            rule=rule.name,
            key=alert.key,
            event=alert.event,
            object=alert.object,
            firing=alert.firing,
            at=alert.at,
            fingerprint=alert.fingerprint,
            one_shot=alert.one_shot,
            summary=alert.title,
        )
        decision = self.ledger.decide(
            occurrence, throttle_s=rule.throttle_seconds, recovery=rule.recovery
        )
        if decision is None:
            return None
        return self._act(rule, alert, occurrence, decision)

    def _act(
        self, rule: AlertRule, alert: Alert, occurrence: Occurrence, decision: Decision
    ) -> Notice:
        title, body = msg.render(self.project.name, rule, alert, decision)
        delivery = Delivery()
        if decision.sends:
            kind = msg.notify_type(rule.severity, alert.firing)
            delivery = self.notifier.send(rule, title, body, kind)
            for label, reason in delivery.failed:
                self.notifier.report(label, reason)
            if not delivery.delivered and decision.action in ("alert", "reminder"):
                self.ledger.give_back(occurrence, decision)
        return _noticed(
            self.ledger,
            rule,
            alert,
            decision.action,
            title,
            delivery,
            record=decision.action != "cleared",
        )


def _noticed(
    ledger: AlertLedger,
    rule: AlertRule,
    alert: Alert,
    action: str,
    title: str,
    delivery: Delivery,
    *,
    record: bool = True,
) -> Notice:
    """What was done about `alert`, recorded in the alert history (unless `record` is off)
    and returned as a Notice."""
    if record:
        ledger.record(
            rule=rule.name,
            key=alert.key,
            event=alert.event,
            object=alert.object,
            run_id=alert.run_id,
            at=alert.at,
            action=action,
            severity=rule.severity,
            title=title,
            delivered=len(delivery.delivered),
            failed=len(delivery.failed),
            errors=[f"{label}: {reason}" for label, reason in delivery.failed],
        )
    return Notice(
        rule=rule.name,
        key=alert.key,
        event=alert.event,
        object=alert.object,
        action=action,
        title=title,
        delivered=tuple(delivery.delivered),
        failed=tuple(delivery.failed),
    )


# ---- the sink --------------------------------------------------------------------------------


@dataclass
class _ObjectChecks:
    batches: int = 0
    rows_in: int = 0
    failing: list[ChecksEvaluated] = field(default_factory=list)


@dataclass
class _Run:
    objects: tuple[str, ...] = ()
    command: str = "run"
    failed: dict[str, list[StepFinished]] = field(default_factory=dict)
    checks: dict[str, _ObjectChecks] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)  # objects whose work ended


_KEEP_FAILING = 50  # failing batches kept per object and run (the message lists 5)


class AlertSink:
    """Turns a run's events into conditions for the dispatcher (module docstring)."""

    EVENTS: tuple[type[Event], ...] = (
        RunStarted,
        RunFinished,
        StepFinished,
        ChecksEvaluated,
        SchemaDrift,
        SourceChecked,
        SlaMissed,
        Anomaly,
    )

    def __init__(self, project: Project, dispatcher: AlertDispatcher) -> None:
        self.project = project
        self.dispatcher = dispatcher
        self.runs: dict[str, _Run] = {}
        self.slo_due: dict[str, datetime] = {}  # object -> when its run ended
        self.notices: list[Notice] = []  # what this session's alerts became (tests, bench)

    def _send(self, alert: Alert) -> None:
        self.notices.extend(self.dispatcher.dispatch(alert))

    def handle(self, event: Event) -> None:
        match event:
            case RunStarted():
                self.runs[event.run_id] = _Run(objects=event.objects, command=event.command)
            case StepFinished():
                self._step_finished(event)
            case ChecksEvaluated():
                run = self.runs.setdefault(event.run_id, _Run())
                checks = run.checks.setdefault(event.object, _ObjectChecks())
                checks.batches += 1
                checks.rows_in += event.rows_in
                if not event.passed and len(checks.failing) < _KEEP_FAILING:
                    checks.failing.append(event)
            case RunFinished():
                self._run_finished(event)
            case SchemaDrift():
                self._send(msg.schema_drift(event))
            case SourceChecked():
                self._send(msg.source_up(event) if event.available else msg.source_down(event))
            case SlaMissed():
                self._send(msg.sla_missed(event))
            case Anomaly():
                self._send(msg.anomaly(event))

    def _step_finished(self, event: StepFinished) -> None:
        run = self.runs.setdefault(event.run_id, _Run())
        if event.status == "failed":
            run.failed.setdefault(event.object, []).append(event)
        if event.step == "object" and event.status != "upstream_failed":
            # (an object not run because its upstream failed has neither failed nor recovered)
            run.done.add(event.object)
            self._checks_done(event.run_id, run, event.object, event.at)

    def _checks_done(self, run_id: str, run: _Run, name: str, at: datetime) -> None:
        checks = run.checks.pop(name, None)
        if checks is None or not checks.batches or run.command == "rebuild":
            return  # a rebuild replays batches whose checks were alerted when they loaded
        if checks.failing:
            sample = msg.failing_rows_sample(
                self.project, name, [ev.batch_id for ev in checks.failing]
            )
            self._send(
                msg.checks_failed(
                    self.project,
                    run_id,
                    name,
                    checks.failing,
                    checks.batches,
                    checks.rows_in,
                    sample,
                    at,
                )
            )
        else:
            self._send(msg.checks_passed(run_id, name, checks.batches, checks.rows_in, at))

    def _run_finished(self, event: RunFinished) -> None:
        run = self.runs.pop(event.run_id, _Run())
        for name in list(run.checks):
            self._checks_done(event.run_id, run, name, event.at)
        failed = set(event.failed_objects)
        for name in dict.fromkeys((*run.objects, *failed)):
            if name in failed:
                steps = run.failed.get(name, [])
                self._send(msg.run_failed(self.project, event.run_id, name, steps, None, event.at))
            elif name in run.done:
                self._send(msg.run_recovered(event.run_id, name, event.at))
        if event.status == "failed" and not failed:
            self._send(msg.run_failed(self.project, event.run_id, None, [], event.error, event.at))
        elif event.status == "success":
            self._send(msg.run_recovered(event.run_id, None, event.at))
        for name in run.done:
            if name in self.project.objects and self.project.objects[name].sla is not None:
                self.slo_due[name] = event.at

    def flush(self) -> None:
        """A run ended (its events are all recorded in the store by now: the store's queue
        is flushed first): evaluate the SLOs of its objects."""
        if not self.slo_due:
            return
        from penstock.observe.slo import check_slos

        due, self.slo_due = self.slo_due, {}
        check_slos(
            self.project,
            store=self.dispatcher.store,
            now=max(due.values()),
            objects=list(due),
            dispatcher=self.dispatcher,
        )


def attach_alerts(bus: EventBus, *, project: Project, store: MetadataStore, **_: Any) -> None:
    """The sinks registry's factory: when the project has `alerts:`, check every
    destination (a project error stops the run before it starts) and subscribe the sink,
    queued."""
    if not project.alerts:
        return
    notifier = Notifier(project)
    notifier.check()
    sink = AlertSink(project, AlertDispatcher(project, store, notifier))
    # its flush evaluates SLOs from the store: after the store's queue has caught up
    bus.subscribe(sink, name="alerts", queued=True, events=AlertSink.EVENTS, flush_last=True)


# ---- penstock alerts test ----------------------------------------------------------------------


def send_test(project: Project, name: str, *, store: MetadataStore) -> Notice:
    """Send a sample message to every destination of the rule `name` (its state is not
    touched; the history records a `test`)."""
    rule = next((r for r in project.alerts if r.name == name), None)
    if rule is None:
        names = ", ".join(r.name for r in project.alerts) or "none"
        raise UsageError(f"no alert rule named '{name}' (rules: {names})")
    notifier = Notifier(project)
    notifier.check()
    candidates = rule.objects or list(project.objects)
    object_name = candidates[0] if candidates else None
    alert = _sample_alert(project, rule, object_name, utcnow())
    title, body = msg.render(project.name, rule, alert, None)
    delivery = notifier.send(rule, title, body, msg.notify_type(rule.severity, True))
    return _noticed(AlertLedger(store, project.name), rule, alert, "test", title, delivery)


def _sample_alert(
    project: Project, rule: AlertRule, object_name: str | None, at: datetime
) -> Alert:
    columns: Sequence[str] = ()
    shown: set[str] = set()
    if object_name is not None and object_name in project.objects:
        obj = project.objects[object_name]
        columns = list(obj.columns)[:4]
        shown = {c for c in columns if obj.columns[c].show_in_alerts}
    example = " ".join(
        f"{c}={msg.mask('example' if c in shown else 'hidden', c in shown)}" for c in columns
    )
    return Alert(
        event="test",
        key="test",
        object=object_name,
        title=f"test message of rule {rule.name}: this destination receives its alerts",
        at=at,
        lines=(
            "This is a test sent by `penstock alerts test`; nothing failed.",
            f"The rule alerts on: {', '.join(rule.on)}; objects: "
            f"{', '.join(rule.objects) if rule.objects else 'every object'}; "
            f"at most one alert per key every {rule.throttle}"
            + ("; a recovery notice when a condition clears" if rule.recovery else ""),
        ),
        sample=(f"record 1 [example:rule] {example}".rstrip(),) if columns else (),
        commands=("penstock alerts", "penstock slo"),
    )
