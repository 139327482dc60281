"""The events of a real run, in order, and what they carry: durations, bytes, rows per reason,
the datasets read and written with their schemas, schema drift, a source that is down, a
failed load. A plain (synchronous) sink records them as the runner emits them."""

from __future__ import annotations

import json
from pathlib import Path

from penstock import load_project
from penstock.engine import Session
from penstock.observe import (
    EVENT_KINDS,
    OBJECT_STEP,
    BatchLoaded,
    BatchStaged,
    ChecksEvaluated,
    Event,
    LogRecord,
    RunFinished,
    RunStarted,
    SchemaDrift,
    SourceChecked,
    StepFinished,
    StepStarted,
    event_dict,
)

from helpers import write_project

PROJECT = """
name: events
sources:
  landing: {{kind: files, path: ./{landing}, settle: 0s}}
objects:
  items:
    source: landing
    files: "items/*.csv"
    key: [id]
    load: merge
    on_invalid: {on_invalid}
    columns:
      id:  {{type: bigint, required: true}}
      qty: {{type: integer, min: 0}}
    checks:
      - {{name: small, expression: "qty < 1000"}}
"""
A = "id,qty\n1,1\n2,2\n"
B = "id,qty,note\n3,3,x\n4,-4,y\n"  # one row breaks min:qty; a column the contract lacks


def run_collecting(project: Path) -> tuple[list[Event], str]:
    seen: list[Event] = []
    with Session(load_project(project)) as session:
        session.bus.subscribe(seen.append)
        result = session.runner.run()
    return seen, result.run_id


def kinds(events: list[Event]) -> list[str]:
    """Kinds in order, log records left out, steps with their step name."""
    out = []
    for e in events:
        if isinstance(e, LogRecord):
            continue
        step = f"({e.step})" if isinstance(e, StepStarted | StepFinished) else ""
        out.append(e.kind + step)
    return out


def two_files(tmp_path: Path, on_invalid: str = "quarantine") -> Path:
    yml = PROJECT.format(landing="landing", on_invalid=on_invalid)
    return write_project(tmp_path, yml, {"landing/items/a.csv": A, "landing/items/b.csv": B})


def test_a_run_emits_its_events_in_order(tmp_path: Path) -> None:
    events, run_id = run_collecting(two_files(tmp_path))
    assert kinds(events) == [
        "run_started",
        "step_started(object)",
        "source_checked",
        # the two files stage together, then load together (one micro-batch)
        "step_started(stage)",
        "step_started(stage)",
        "batch_staged",
        "step_finished(stage)",
        "batch_staged",
        "step_finished(stage)",
        # each file's schema is new: a version each, and b's differs from a's (drift)
        "schema_version",
        "schema_version",
        "schema_drift",
        "step_started(load)",
        "step_started(load)",
        "checks_evaluated",
        "checks_evaluated",
        "batch_loaded",
        "batch_measured",
        "step_finished(load)",
        "batch_loaded",
        "batch_measured",
        "step_finished(load)",
        "object_counted",
        "step_finished(object)",
        "run_finished",
    ]
    assert {e.run_id for e in events} == {run_id}
    assert all(e.kind in EVENT_KINDS for e in events)
    for event in events:  # every event has a JSON form (webhooks, files, hooks' logs)
        as_json = json.loads(json.dumps(event_dict(event)))
        assert as_json["kind"] == event.kind and as_json["run_id"] == run_id


def test_events_carry_durations_bytes_reasons_datasets_and_schemas(tmp_path: Path) -> None:
    project = two_files(tmp_path)
    events, _ = run_collecting(project)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert (started.project, started.objects, started.command) == ("events", ("items",), "run")
    assert started.pid is not None and started.host

    (source,) = [e for e in events if isinstance(e, SourceChecked)]
    assert (source.available, source.files, source.source_kind) == (True, 2, "files")
    assert source.latency_s is not None and source.latency_s >= 0

    staged = {e.source_file: e for e in events if isinstance(e, BatchStaged)}
    a = staged["landing/items/a.csv"]
    assert (a.bytes, a.rows, a.rows_malformed, a.format) == (len(A), 2, 0, "csv")
    assert a.input is not None and a.input.name == str(project / "landing/items/a.csv")
    assert a.output is not None and a.output.role == "stage"
    assert [f.name for f in a.output.fields][:2] == ["id", "qty"]

    (drift,) = [e for e in events if isinstance(e, SchemaDrift)]
    assert (drift.source_file, drift.added, drift.removed, drift.extra, drift.missing) == (
        "landing/items/b.csv",
        ("note",),
        (),
        ("note",),
        (),
    )
    assert drift.previous_batch_id == a.batch_id

    checks = {e.source_file: e for e in events if isinstance(e, ChecksEvaluated)}
    clean, broken = checks["landing/items/a.csv"], checks["landing/items/b.csv"]
    assert clean.passed and clean.dq_pass_rate == 1.0
    assert not broken.passed and broken.dq_pass_rate == 0.5
    assert [(c.name, c.failed_rows, c.expected) for c in broken.failed] == [("min:qty", 1, ">= 0")]
    names = [c.name for c in broken.checks]
    assert names[:5] == ["type:id", "required:id", "type:qty", "min:qty", "check:small"]
    assert {"malformed", "encoding"} <= set(names)
    assert broken.extra_columns == ("note",)

    loads = {e.source_file: e for e in events if isinstance(e, BatchLoaded)}
    loaded = loads["landing/items/b.csv"]
    assert (loaded.rows_in, loaded.rows_loaded, loaded.rows_quarantined) == (2, 1, 1)
    assert (loaded.rows_inserted, loaded.table, loaded.load) == (1, "items", "merge")
    assert dict(loaded.reason_counts) == {"min:qty": 1}
    table, quarantine = loaded.outputs
    warehouse = f"duckdb://{(project / 'warehouse.duckdb').resolve()}"
    assert (table.namespace, table.name, quarantine.name) == (
        warehouse,
        "main.items",
        "quarantine.items",
    )
    assert [(f.name, f.type) for f in table.fields] == [("id", "bigint"), ("qty", "integer")]
    assert [d.role for d in loaded.inputs] == ["stage", "landing"]
    assert loads["landing/items/a.csv"].outputs == (table,)  # nothing was quarantined

    finished = {
        (e.step, e.source_file): e
        for e in events
        if isinstance(e, StepFinished) and e.step in ("stage", "load")
    }
    load_b = finished["load", "landing/items/b.csv"]
    assert load_b.status == "warning" and dict(load_b.reason_counts) == {"min:qty": 1}
    assert (load_b.rows_invalid, load_b.bytes_in) == (1, len(B))
    assert load_b.duration_s is not None and load_b.duration_s > 0
    assert load_b.started_at is not None and load_b.started_at <= load_b.at
    object_step = next(
        e for e in events if isinstance(e, StepStarted) and e.step == OBJECT_STEP
    ).step_id
    assert all(
        e.parent_step_id == object_step
        for e in events
        if isinstance(e, StepStarted | StepFinished) and e.step != OBJECT_STEP
    )
    assert finished["stage", "landing/items/a.csv"].bytes_in == len(A)

    # a log line carries the step it belongs to
    stage_a = next(
        e.step_id
        for e in events
        if isinstance(e, StepStarted) and e.source_file == "landing/items/a.csv"
    )
    (line,) = [
        e
        for e in events
        if isinstance(e, LogRecord) and "staged" in e.message and "a.csv" in e.message
    ]
    assert line.step_id == stage_a

    end = events[-1]
    assert isinstance(end, RunFinished)
    assert (end.status, end.outcome, end.batches_loaded, end.rows_in, end.rows_loaded) == (
        "success",
        "warning",
        2,
        4,
        3,
    )
    assert end.duration_s is not None and end.duration_s > 0 and end.failed_objects == ()


def test_a_source_that_cannot_be_reached_is_reported_down(tmp_path: Path) -> None:
    yml = PROJECT.format(landing="nowhere", on_invalid="quarantine")
    project = write_project(tmp_path, yml, {})
    events, _ = run_collecting(project)
    (source,) = [e for e in events if isinstance(e, SourceChecked)]
    assert not source.available and source.files is None
    assert source.error is not None and "does not exist" in source.error
    failed = next(e for e in events if isinstance(e, StepFinished) and e.step == "extract")
    assert (failed.status, failed.error_type, failed.retryable) == ("failed", "SourceError", False)
    end = events[-1]
    assert isinstance(end, RunFinished)
    assert (end.status, end.failed_objects) == ("failed", ("items",))


def test_a_failed_load_has_its_error_type_and_no_batch_loaded(tmp_path: Path) -> None:
    events, _ = run_collecting(two_files(tmp_path, on_invalid="fail"))
    loads = [e for e in events if isinstance(e, StepFinished) and e.step == "load"]
    assert [e.status for e in loads] == ["success", "failed"]
    assert loads[1].error_type == "ContractViolation" and loads[1].error
    assert [e.source_file for e in events if isinstance(e, BatchLoaded)] == ["landing/items/a.csv"]
    # the checks were still evaluated: the alert and the DQ record say what failed
    broken = [e for e in events if isinstance(e, ChecksEvaluated)][1]
    assert [(c.name, c.failed_rows) for c in broken.failed] == [("min:qty", 1)]
    assert (broken.rows_in, broken.rows_invalid, broken.dq_pass_rate) == (2, None, None)
