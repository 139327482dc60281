"""How the metadata store writes step and log events: a step's rows, and the rows of many
steps and log lines written together (thousands of small files make thousands of steps; a
statement each was most of the store's time)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from penstock.observe.events import Event, LogRecord, StepFinished, StepStarted
from penstock.observe.insert_many import insert_many, update_many
from penstock.observe.jsonable import to_jsonable
from penstock.observe.redaction import redact_opt, redact_value
from penstock.observe.schema import logs, step_runs
from penstock.secrets import redact


def started_row(event: StepStarted) -> dict[str, Any]:
    """A started step's `step_runs` row, with every column a finish sets (as NULL): the rows
    of several steps then insert with one statement."""
    return {
        "step_id": event.step_id,
        "run_id": event.run_id,
        "object": event.object,
        "batch_id": event.batch_id,
        "step": event.step,
        "status": "running",
        "attempt": event.attempt,
        "source_file": event.source_file,
        "rows_in": 0,
        "rows_loaded": 0,
        "rows_quarantined": 0,
        "rows_duplicate": 0,
        "started_at": event.at,
        "ended_at": None,
        "error": None,
        "bytes_in": None,
    }


def finished_values(event: StepFinished, *, every: bool = False) -> dict[str, Any]:
    """What a step's finish sets in its `step_runs` row (`every`: `source_file` even when
    None, for `_FINISH_MANY`, which keeps the stored one then)."""
    values: dict[str, Any] = {
        "batch_id": event.batch_id,
        "status": event.status,
        "attempt": event.attempt,
        "rows_in": event.rows_in,
        "rows_loaded": event.rows_loaded,
        "rows_quarantined": event.rows_quarantined,
        "rows_duplicate": event.rows_duplicate,
        "ended_at": event.at,
        "error": redact_opt(event.error),
        "bytes_in": event.bytes_in,
    }
    if event.source_file is not None or every:
        values["source_file"] = event.source_file
    return values


# The finishes of several steps with one statement (their values bound as `b_<column>`).
_FINISH_MANY = (
    step_runs.update()
    .where(step_runs.c.step_id == sa.bindparam("b_step_id"))
    .values(
        {
            name: (
                sa.func.coalesce(sa.bindparam("b_source_file"), step_runs.c.source_file)
                if name == "source_file"
                else sa.bindparam(f"b_{name}")
            )
            for name in (
                "batch_id",
                "status",
                "attempt",
                "rows_in",
                "rows_loaded",
                "rows_quarantined",
                "rows_duplicate",
                "ended_at",
                "error",
                "bytes_in",
                "source_file",
            )
        }
    )
)


def log_row(event: LogRecord) -> dict[str, Any]:
    return {
        "run_id": event.run_id,
        "at": event.at,
        "level": event.level,
        "object": event.object,
        "batch_id": event.batch_id,
        "step_id": event.step_id,
        "message": redact(event.message),
        "fields": log_fields(event.fields),
    }


_AS_THEY_ARE = frozenset({int, float, bool, type(None)})


def log_fields(value: Any) -> Any:
    """`to_jsonable(redact_value(value))`, the same value, without their isinstance chains
    for the strings, numbers and dicts log fields hold: 0.04 s of the store's 0.15 s CPU on
    1,000 small files' events (a rejected batch's reasons dict; bench/sink_replay.py).
    Anything else goes their way."""
    kind = type(value)
    if kind is str:
        return redact(value)
    if kind in _AS_THEY_ARE:
        return value
    if kind is dict:  # redact_value keeps the keys, to_jsonable makes them strings
        return {str(k): log_fields(v) for k, v in value.items()}
    return to_jsonable(redact_value(value))


class PendingRows:
    """Rows of consecutive step starts, step finishes and log records, written together:
    a step started and finished within one delivery is one inserted row, and the rows of a
    table go in with one statement (thousands of small files make thousands of steps; a
    statement each was most of the store's time). Any other event writes them first, so the
    store sees everything in the order it happened."""

    def __init__(self) -> None:
        self.steps: dict[str, dict[str, Any]] = {}
        self.logs: list[dict[str, Any]] = []
        self.finishes: list[StepFinished] = []  # of steps started in an earlier delivery

    def take(self, event: Event) -> bool:
        """Hold `event`'s row; False when it is not one held here (write first, then it)."""
        match event:
            case StepStarted() if event.step_id not in self.steps:
                self.steps[event.step_id] = started_row(event)
            case StepFinished() if event.step_id in self.steps:
                self.steps[event.step_id].update(finished_values(event))
            case StepFinished():
                self.finishes.append(event)
            case LogRecord():
                self.logs.append(log_row(event))
            case _:
                return False
        return True

    def write(self, conn: sa.Connection) -> None:
        if self.steps:
            insert_many(conn, step_runs, list(self.steps.values()))
            self.steps.clear()
        if self.logs:
            insert_many(conn, logs, self.logs)
            self.logs.clear()
        if self.finishes:
            finishes, self.finishes = self.finishes, []
            rows = [
                {f"b_{k}": v for k, v in finished_values(f, every=True).items()} for f in finishes
            ]
            rows = [{**row, "b_step_id": f.step_id} for row, f in zip(rows, finishes, strict=True)]
            if update_many(conn, _FINISH_MANY, rows) != len(rows):
                for event in finishes:  # a step whose start the store missed: one at a time
                    finish_step(conn, event)


def finish_step(conn: sa.Connection, event: StepFinished) -> None:
    """Record a step's finish: its row updated, or inserted when its start was missed."""
    values = finished_values(event)
    result = conn.execute(
        step_runs.update().where(step_runs.c.step_id == event.step_id).values(**values)
    )
    if result.rowcount == 0:
        conn.execute(
            step_runs.insert().values(
                step_id=event.step_id,
                run_id=event.run_id,
                object=event.object,
                step=event.step,
                started_at=event.at,
                **values,
            )
        )
