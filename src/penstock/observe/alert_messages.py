"""What an alert says: context and the next action, built from events (no I/O but the small
sample of failing rows read from the lake's quarantine file of a batch).

An `Alert` is a condition met (or, `firing=False`, cleared) for one key: the object, the run,
what failed with the measured value against the expected one, a sample of failing rows and
the commands to investigate. `render` turns it into the title and text body a rule's
destinations get, with the rule's severity. Every text passes through secret redaction.

**Failing rows are masked.** A sample row shows its record number, the rules it broke and
each contract column as `***` (a value), `''` (blank) or `NULL`, unless the column says
`show_in_alerts: true`; a malformed record's raw line is never shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from penstock.secrets import redact

if TYPE_CHECKING:
    from penstock.catalog import Project
    from penstock.catalog.alerting import AlertRule
    from penstock.observe.alert_state import Decision
    from penstock.observe.events import (
        Anomaly,
        ChecksEvaluated,
        SchemaDrift,
        SlaMissed,
        SourceChecked,
        StepFinished,
    )

SAMPLE_ROWS = 5
BATCHES_LISTED = 5
RULES_LISTED = 8
VALUE_CHARS = 40
MASK = "***"
_SHORT_RUN = 12


@dataclass(frozen=True)
class Alert:
    """A condition of one key met (`firing`) or cleared, with what a message needs."""

    event: str
    key: str
    object: str | None
    title: str
    at: datetime
    run_id: str | None = None
    lines: tuple[str, ...] = ()
    sample: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    fingerprint: str = ""
    one_shot: bool = False
    firing: bool = True
    fields: dict[str, Any] = field(default_factory=dict)


def short_run(run_id: str | None) -> str:
    return (run_id or "")[:_SHORT_RUN]


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else "never"


def ago(seconds: float) -> str:
    """A duration for people: `45s`, `12m`, `3h 05m`, `2d 04h`."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}" + ("" if n == 1 else "s")


# ---- rendering -------------------------------------------------------------------------------

_NOTIFY_TYPES = {"info": "info", "warning": "warning", "error": "failure", "critical": "failure"}


def notify_type(severity: str, firing: bool) -> str:
    """apprise's message type: `success` for a recovery, else by severity."""
    return _NOTIFY_TYPES.get(severity, "failure") if firing else "success"


def render(
    project: str, rule: AlertRule, alert: Alert, decision: Decision | None
) -> tuple[str, str]:
    """The title and plain-text body of `alert` as `rule` sends it (redacted)."""
    severity = rule.severity.upper()
    if alert.event == "test":
        head = f"[penstock] TEST {project}"
    elif not alert.firing:
        head = f"[penstock] RESOLVED {project}"
    elif decision is not None and decision.action == "reminder":
        head = f"[penstock] {severity} (still) {project}"
    else:
        head = f"[penstock] {severity} {project}"
    where = f"/{alert.object}" if alert.object else ""
    title = f"{head}{where}: {alert.title}"
    facts = [alert.event, f"severity {rule.severity}", f"project {project}"]
    if alert.object:
        facts.append(f"object {alert.object}")
    facts.append(f"rule {rule.name}")
    body = [" · ".join(facts)]
    if alert.run_id:
        body.append(f"run {alert.run_id} at {when(alert.at)}")
    else:
        body.append(f"at {when(alert.at)}")
    since = decision.since if (decision is not None and alert.firing) else None
    if since is not None and since < alert.at:
        body.append(f"failing since {when(since)}")
    if decision is not None and decision.held_back:
        body.append(
            f"{_count(decision.held_back, 'more occurrence')} held back since the last alert "
            f"(throttle {rule.throttle})"
        )
    if alert.lines:
        body += ["", *alert.lines]
    if alert.sample:
        body += [
            "",
            "Sample of failing rows (values masked; a column with show_in_alerts: true "
            "shows its values):",
            *(f"  {line}" for line in alert.sample),
        ]
    if alert.commands:
        body += ["", "Investigate:", *(f"  {command}" for command in alert.commands)]
    return redact(title), redact("\n".join(body))


# ---- run_failed ------------------------------------------------------------------------------


def run_failed(
    project: Project,
    run_id: str,
    object_name: str | None,
    failed: Sequence[StepFinished],
    error: str | None,
    at: datetime,
) -> Alert:
    lines: list[str] = []
    # an object step fails with its batch's error: the batch steps say it best
    failed = [s for s in failed if s.step != "object"] or list(failed)
    for step in failed[:BATCHES_LISTED]:
        what = step.step
        if step.batch_id:
            what += f" of batch {step.batch_id}"
        if step.source_file:
            what += f" ({step.source_file})"
        kind = f" [{step.error_type}]" if step.error_type else ""
        lines.append(f"{what} failed{kind}: {_first_line(step.error)}")
    if len(failed) > BATCHES_LISTED:
        lines.append(f"… and {_count(len(failed) - BATCHES_LISTED, 'more failed step')}")
    if not lines and error:
        lines.append(f"the run failed: {_first_line(error)}")
    lines.append(f"measured: {_count(len(failed), 'failed step')}; expected: none")
    commands = [
        f"penstock logs --run {short_run(run_id)}"
        + (f" --object {object_name}" if object_name else "")
        + " --level warning"
    ]
    if object_name and any(s.batch_id for s in failed):
        commands.append(f"penstock batches {object_name}")
    title = (
        f"{object_name} failed in run {short_run(run_id)}"
        if object_name
        else f"run {short_run(run_id)} failed"
    )
    key_object = object_name or "*"
    return Alert(
        event="run_failed",
        key=f"run_failed:{key_object}",
        object=object_name,
        title=title,
        at=at,
        run_id=run_id,
        lines=tuple(lines),
        commands=tuple(commands),
        fingerprint=f"run:{run_id}",
        fields={"failed_steps": len(failed)},
    )


def run_recovered(run_id: str, object_name: str | None, at: datetime) -> Alert:
    what = object_name or "the project"
    return Alert(
        event="run_failed",
        key=f"run_failed:{object_name or '*'}",
        object=object_name,
        title=f"{what} ran without failing in run {short_run(run_id)}",
        at=at,
        run_id=run_id,
        lines=(f"run {run_id}: no step of {what} failed",),
        commands=("penstock runs", "penstock status"),
        firing=False,
    )


# ---- check_failed ----------------------------------------------------------------------------


def checks_failed(
    project: Project,
    run_id: str,
    object_name: str,
    failing: Sequence[ChecksEvaluated],
    batches: int,
    rows_in: int,
    sample: Sequence[str],
    at: datetime,
) -> Alert:
    """The checks of an object's batches in a run: per rule, failing rows against what the
    rule expects; per batch, rows in and broken."""
    totals: dict[str, list[Any]] = {}  # rule -> [failed rows, expected]
    broken = 0
    for ev in failing:
        broken += (
            ev.rows_invalid
            if ev.rows_invalid is not None
            else max((c.failed_rows for c in ev.failed), default=0)
        )
        for check in ev.failed:
            entry = totals.setdefault(check.name, [0, check.expected])
            entry[0] += check.failed_rows
    rate = "" if not rows_in else f" (DQ pass rate {_percent(1 - broken / rows_in)})"
    lines = [
        f"{_count(len(failing), 'batch')} of {batches:,} broke the contract: "
        f"{broken:,} of {_count(rows_in, 'row')} broke a rule{rate}",
        "per rule: failing rows, expected",
    ]
    ranked = sorted(totals.items(), key=lambda item: -int(item[1][0]))
    width = max((len(name) for name, _ in ranked[:RULES_LISTED]), default=0)
    for name, (rows, expected) in ranked[:RULES_LISTED]:
        want = f"expected {expected}" if expected else ""
        lines.append(f"  {name.ljust(width)}  {_count(int(rows), 'row'):>12}  {want}".rstrip())
    if len(ranked) > RULES_LISTED:
        lines.append(f"  … and {_count(len(ranked) - RULES_LISTED, 'more rule')}")
    lines.append("per batch:")
    for ev in failing[:BATCHES_LISTED]:
        bad = "?" if ev.rows_invalid is None else f"{ev.rows_invalid:,}"
        what = {"quarantine": "quarantined", "warn": "loaded anyway", "fail": "batch refused"}
        lines.append(
            f"  {ev.batch_id} ({ev.source_file}): {bad} of {_count(ev.rows_in, 'row')} broke a "
            f"rule, {what.get(ev.on_invalid, ev.on_invalid)}"
        )
    if len(failing) > BATCHES_LISTED:
        lines.append(f"  … and {_count(len(failing) - BATCHES_LISTED, 'more batch')}")
    first = failing[0]
    commands = (
        f"penstock quarantine {object_name} --batch {first.batch_id}",
        f"penstock logs --run {short_run(run_id)} --object {object_name} --level warning",
    )
    worst = ranked[0][0] if ranked else "a rule"
    return Alert(
        event="check_failed",
        key=f"check_failed:{object_name}",
        object=object_name,
        title=f"{broken:,} of {_count(rows_in, 'row')} broke {worst}"
        + (f" and {len(ranked) - 1} more rule(s)" if len(ranked) > 1 else ""),
        at=at,
        run_id=run_id,
        lines=tuple(lines),
        sample=tuple(sample),
        commands=commands,
        fingerprint="checks:" + ",".join(ev.batch_id for ev in failing),
        fields={"rows_in": rows_in, "rows_broken": broken, "rules": {k: v[0] for k, v in ranked}},
    )


def checks_passed(run_id: str, object_name: str, batches: int, rows_in: int, at: datetime) -> Alert:
    return Alert(
        event="check_failed",
        key=f"check_failed:{object_name}",
        object=object_name,
        title=f"checks pass again: {_count(batches, 'batch')}, {_count(rows_in, 'row')}, "
        "none broke a rule",
        at=at,
        run_id=run_id,
        lines=(f"run {run_id}: every rule of the contract passed",),
        commands=("penstock status",),
        firing=False,
    )


def _percent(ratio: float) -> str:
    text = f"{ratio * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def failing_rows_sample(
    project: Project, object_name: str, batch_ids: Iterable[str], limit: int = SAMPLE_ROWS
) -> tuple[str, ...]:
    """Up to `limit` failing rows of the batches' quarantine files in the lake, masked."""
    from penstock.lake import Lake
    from penstock.lake.stage import CHUNK_PREFIX

    obj = project.objects.get(object_name)
    if obj is None:
        return ()
    lake = Lake(project.lake_path)
    shown = {name for name, spec in obj.columns.items() if spec.show_in_alerts}
    out: list[str] = []
    chunked: list[str] = []  # batches loaded with others: their rows are in a chunk's file
    for batch_id in batch_ids:
        path = lake.quarantine_path(object_name, batch_id)
        if not path.is_file():
            chunked.append(batch_id)
            continue
        for row in _first_rows([path], limit - len(out)):
            out.append(_sample_line(row, list(obj.columns), shown))
        if len(out) >= limit:
            return tuple(out)
    chunks = [p for p in lake.quarantine_files(object_name) if p.name.startswith(CHUNK_PREFIX)]
    if chunked and chunks:
        for row in _first_rows(chunks, limit - len(out), chunked):
            out.append(_sample_line(row, list(obj.columns), shown))
    return tuple(out)


def _first_rows(
    paths: Sequence[Path], limit: int, batch_ids: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The files' first `limit` rows (of `batch_ids` only, when given), read by DuckDB
    (loaded by every run already; pyarrow and numpy would cost ~0.2 s of CPU to import on the
    alert sink's thread, mid-run). A row written twice (a chunk loaded again after a crash)
    is read once."""
    import duckdb

    from penstock.sql import literal

    files = f"[{', '.join(literal(str(p)) for p in paths)}]"
    sql = f"SELECT * FROM read_parquet({files}) LIMIT ?"
    if batch_ids is not None:
        sql = (
            f"SELECT * FROM read_parquet({files}, union_by_name = true) "
            f"WHERE _batch_id IN ({', '.join(map(literal, batch_ids))}) "
            "QUALIFY row_number() OVER (PARTITION BY _batch_id, _row_number) = 1 "
            "ORDER BY _batch_id, _row_number LIMIT ?"
        )
    try:
        with duckdb.connect(config={"threads": 1}) as conn:  # one thread: a few rows
            result = conn.execute(sql, [max(limit, 0)])
            names = [d[0] for d in result.description or ()]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    except (OSError, duckdb.Error):
        return []  # a file of another layout, or being replaced: no sample


def _sample_line(row: dict[str, Any], columns: list[str], shown: set[str]) -> str:
    reasons = ", ".join(str(r) for r in row.get("_reasons") or [])
    head = f"record {row.get('_row_number', '?')} [{reasons}]"
    if row.get("_raw_line") is not None:
        return f"{head} malformed record (raw line not shown)"
    values = " ".join(f"{c}={mask(row.get(c), c in shown)}" for c in columns if c in row)
    return f"{head} {values}"


def mask(value: Any, show: bool) -> str:
    """A sample value: shown (cut, redacted) for a column marked safe, else `***`; blank and
    NULL say so either way (what `required:` failed on)."""
    if value is None:
        return "NULL"
    text = str(value)
    if not text.strip():
        return "''"
    if not show:
        return MASK
    if len(text) > VALUE_CHARS:
        text = text[: VALUE_CHARS - 1] + "…"
    return repr(redact(text))


# ---- schema_drift, source_down, sla_missed, anomaly -------------------------------------------


def schema_drift(ev: SchemaDrift) -> Alert:
    changes = []
    if ev.added:
        changes.append(f"added {', '.join(ev.added)}")
    if ev.removed:
        changes.append(f"removed {', '.join(ev.removed)}")
    for name, (before, now) in ev.retyped.items():
        changes.append(f"retyped {name}: {before} -> {now}")
    if ev.previous_batch_id is not None:
        title = f"the columns of {ev.source_file} changed (" + "; ".join(changes) + ")"
        lines = [
            f"{ev.source_file} (batch {ev.batch_id}) against batch {ev.previous_batch_id}: "
            + "; ".join(changes),
            f"measured: {_count(len(changes), 'column change')}; expected: the previous schema",
        ]
    else:  # the object's first schema already differs from its contract
        title = f"the columns of {ev.source_file} differ from the contract"
        lines = [f"{ev.source_file} (batch {ev.batch_id}): the object's first schema"]
    policy = ev.policy
    if ev.missing:
        effect = {"quarantine": "rows quarantined", "fail": "batch failed"}.get(
            policy.get("missing_columns", ""), "read as empty"
        )
        lines.append(f"contract columns missing ({effect}): {', '.join(ev.missing)}")
    if ev.extra:
        effect = {"evolve": "added to the table as text", "fail": "batch failed"}.get(
            policy.get("new_columns", ""), "staged only"
        )
        lines.append(f"columns the contract does not declare ({effect}): {', '.join(ev.extra)}")
    for name, (declared, observed) in ev.type_changes.items():
        effect = "batch failed" if policy.get("type_changes") == "fail" else "cast per row"
        lines.append(f"column {name} is {observed}, declared {declared} ({effect})")
    if ev.version is not None:
        lines.append(f"schema version {ev.version}: penstock schema {ev.object}")
    return Alert(
        event="schema_drift",
        key=f"schema_drift:{ev.object}",
        object=ev.object,
        title=title,
        at=ev.at,
        run_id=ev.run_id,
        lines=tuple(lines),
        commands=(f"penstock schema {ev.object}", f"penstock batches {ev.object}"),
        fingerprint=f"drift:{ev.batch_id}",
        one_shot=True,
    )


def source_down(ev: SourceChecked) -> Alert:
    return Alert(
        event="source_down",
        key=f"source_down:{ev.source}",
        object=ev.object,
        title=f"source {ev.source} ({ev.source_kind}) cannot be reached",
        at=ev.at,
        run_id=ev.run_id,
        lines=(
            f"reading {ev.object} from source {ev.source}: {_first_line(ev.error)}",
            "measured: unavailable; expected: reachable",
        ),
        commands=("penstock check", f"penstock logs --run {short_run(ev.run_id)} --level error"),
        fingerprint=f"down:{ev.run_id}",
    )


def source_up(ev: SourceChecked) -> Alert:
    found = "" if ev.files is None else f" ({_count(ev.files, 'file')} found)"
    return Alert(
        event="source_down",
        key=f"source_down:{ev.source}",
        object=ev.object,
        title=f"source {ev.source} ({ev.source_kind}) is reachable again",
        at=ev.at,
        run_id=ev.run_id,
        lines=(f"reading {ev.object} from source {ev.source} worked{found}",),
        firing=False,
    )


def sla_missed(ev: SlaMissed, fingerprint: str = "") -> Alert:
    return Alert(
        event="sla_missed",
        key=f"sla_missed:{ev.object}:{ev.sla}",
        object=ev.object,
        title=f"{ev.sla} SLO missed: {ev.message}",
        at=ev.at,
        run_id=None,
        lines=(
            ev.message,
            f"measured: {_sla_value(ev.measured, ev.unit)}; expected: "
            f"{'at most' if ev.sla == 'freshness' else 'at least'} "
            f"{_sla_value(ev.expected, ev.unit)}",
        ),
        commands=("penstock slo", "penstock status", f"penstock logs --object {ev.object}"),
        fingerprint=fingerprint or f"sla:{ev.sla}:{ev.measured}",
    )


def sla_met(object_name: str, sla: str, message: str, at: datetime) -> Alert:
    return Alert(
        event="sla_missed",
        key=f"sla_missed:{object_name}:{sla}",
        object=object_name,
        title=f"{sla} SLO met again: {message}",
        at=at,
        lines=(message,),
        commands=("penstock slo",),
        firing=False,
    )


def _sla_value(value: float, unit: str) -> str:
    if unit == "seconds":
        return "never loaded" if value == float("inf") else ago(value)
    if unit == "ratio":
        return _percent(value)
    return f"{value:g} {unit}"


def anomaly(ev: Anomaly) -> Alert:
    limits = (
        f"[{ev.lower:g}, {ev.upper:g}]"
        if ev.lower is not None and ev.upper is not None
        else (
            f">= {ev.lower:g}"
            if ev.lower is not None
            else f"<= {ev.upper:g}"
            if ev.upper is not None
            else "within its control limits"
        )
    )
    lines = [f"{ev.metric}: measured {ev.value:g}; expected {limits}"]
    if ev.message:
        lines.insert(0, ev.message)
    commands = [f"penstock logs --run {short_run(ev.run_id)} --object {ev.object}"]
    if ev.batch_id:
        commands.insert(0, f"penstock quarantine {ev.object} --batch {ev.batch_id}")
    return Alert(
        event="anomaly",
        key=f"anomaly:{ev.object}:{ev.metric}",
        object=ev.object,
        title=f"{ev.metric} = {ev.value:g} is outside {limits}",
        at=ev.at,
        run_id=ev.run_id,
        lines=tuple(lines),
        commands=tuple(commands),
        fingerprint=f"anomaly:{ev.batch_id or ev.run_id}:{ev.metric}",
        one_shot=True,
    )


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else "(no message)"
