"""The consume zone in a run: each selected model built after its inputs (transform/).

Models run after the objects, in the plan's order (a model after the objects and models it
reads). A model downstream of an object or model that failed in this run is not built
(`upstream_failed`, as for objects); one whose build fails fails alone and holds back the
models reading it. Each build is one step `build` of the model (`step_runs`, events and
OpenLineage as other steps): it reads the tables of its inputs and writes its own, with where
each column comes from (its SQL's column lineage) in its events.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from penstock.catalog import Project
from penstock.engine import datasets
from penstock.engine.failures import describe
from penstock.engine.plan import Plan
from penstock.engine.results import BatchOutcome, BatchStatus, RunResult
from penstock.errors import TransientError
from penstock.observe import Dataset, SchemaField, StepFinished, StepStarted, new_id, utcnow
from penstock.observe.events import ColumnSource, LogLevel
from penstock.transform.engines import model_engine

if TYPE_CHECKING:
    from penstock.engine.runner import Runner
    from penstock.transform.materialize import Built
    from penstock.transform.model_set import Model

MODEL_STEP = "build"


def run_models(
    runner: Runner, result: RunResult, plan: Plan, names: list[str], *, rebuild: bool = False
) -> None:
    """Build the models `names` (in the plan's order), holding back those whose upstream
    failed in this run; with `rebuild`, an incremental model starts again from every batch."""
    if not names:
        return
    from penstock.transform.materialize import build_model
    from penstock.transform.model_set import load_models

    models = load_models(runner.project)
    engine = None
    for name in names:
        failed = {o.object for o in result.outcomes if o.status in ("failed", "upstream_failed")}
        blocked = sorted(f for f in failed if f in plan.units and plan.depends(name, f))
        model = models[name]
        if blocked:
            message = (
                f"not run: upstream {', '.join(blocked)} failed in this run "
                f"(`penstock plan --select +{name}` shows its upstream)"
            )
            _step(runner, result, model, "upstream_failed", message)
            continue
        started = time.monotonic()
        step_id = _started(runner, result, model)
        try:
            if engine is None:
                engine = model_engine(runner.warehouse)
            built = build_model(model, engine, run_id=result.run_id, fresh=rebuild)
        except Exception as exc:
            message, fields = describe(exc)
            _finished(runner, result, model, step_id, "failed", message, exc=exc)
            _log(runner, result, model, "error", message, step_id, **fields)
            continue
        _log(
            runner,
            result,
            model,
            "warning" if built.status == "warning" else "info",
            f"{name}: {built.message} ({time.monotonic() - started:.2f} s)",
            step_id,
            event="model_built",
            rows=built.rows,
        )
        _finished(runner, result, model, step_id, built.status, None, built=built)


def views_over(project: Project, plan: Plan, objects: list[str]) -> list[str]:
    """The view models that read any of `objects`, directly or through other models."""
    if not objects or not any(u.kind == "model" for u in plan.units.values()):
        return []
    from penstock.transform.model_set import load_models

    models = load_models(project)
    return [n for n in models.downstream(objects) if models[n].materialized == "view"]


def drop_models(runner: Runner, names: list[str]) -> None:
    """Drop the relations of the models `names` (built again later in the run)."""
    if not names:
        return
    from penstock.transform.materialize import drop_relation

    engine = model_engine(runner.warehouse)
    with engine.transaction():
        for name in names:
            drop_relation(engine, name)


def _step(runner: Runner, result: RunResult, model: Model, status: BatchStatus, msg: str) -> None:
    step_id = _started(runner, result, model)
    _log(runner, result, model, "warning", msg, step_id, event="upstream_failed")
    _finished(runner, result, model, step_id, status, msg)


def _started(runner: Runner, result: RunResult, model: Model) -> str:
    step_id = new_id()
    at = utcnow()
    runner.clock.started[step_id] = (time.monotonic(), at)
    runner.bus.emit(
        StepStarted(
            run_id=result.run_id,
            at=at,
            step_id=step_id,
            object=model.name,
            batch_id=None,
            step=MODEL_STEP,
            source_file=model.file.file,
        )
    )
    return step_id


def _finished(
    runner: Runner,
    result: RunResult,
    model: Model,
    step_id: str,
    status: BatchStatus,
    error: str | None,
    *,
    built: Built | None = None,
    exc: BaseException | None = None,
) -> None:
    clock, started_at = runner.clock.started.pop(step_id, (None, None))
    inputs, output = model_datasets(runner, model)
    rows = built.rows or 0 if built is not None else 0
    failing = dict(built.failing) if built is not None else {}
    ran = status in ("success", "warning", "skipped")
    runner.bus.emit(
        StepFinished(
            run_id=result.run_id,
            step_id=step_id,
            object=model.name,
            batch_id=None,
            step=MODEL_STEP,
            status=status,
            error=error,
            error_type=type(exc).__name__ if exc is not None else None,
            retryable=isinstance(exc, TransientError),
            rows_written=rows if built is not None else None,
            rows_warned=sum(failing.values()),
            reason_counts=failing,
            started_at=started_at,
            duration_s=None if clock is None else time.monotonic() - clock,
            source_file=model.file.file,
            inputs=inputs if ran else (),
            outputs=(output,) if ran else (),
            column_lineage=column_sources(runner, model) if ran else {},
        )
    )
    result.outcomes.append(
        BatchOutcome(
            model.name,
            None,
            None,  # its errors name the file (and line) themselves
            MODEL_STEP,
            status,
            rows_in=rows,
            rows_loaded=rows,
            rows_warned=sum(failing.values()),
            reason_counts=failing,
            error=error,
            retryable=isinstance(exc, TransientError),
        )
    )


def _log(
    runner: Runner,
    result: RunResult,
    model: Model,
    level: LogLevel,
    message: str,
    step_id: str,
    /,
    **fields: Any,
) -> None:
    extra = {k: v for k, v in fields.items() if k not in ("object", "batch_id")}
    runner.bus.log(result.run_id, level, message, object=model.name, step_id=step_id, **extra)


# ---- datasets and column lineage ----------------------------------------------------------


def _table(runner: Runner, name: str, columns: tuple[str, ...] = ()) -> Dataset:
    return Dataset(
        namespace=datasets.warehouse_namespace(runner.project),
        name=f"{datasets.DEFAULT_SCHEMA}.{name}",
        role="table",
        fields=tuple(SchemaField(name=c, type="") for c in columns),
    )


def model_datasets(runner: Runner, model: Model) -> tuple[tuple[Dataset, ...], Dataset]:
    """What a model's build reads (its inputs' tables) and writes (its own)."""
    from penstock.transform.model_set import load_models

    project = runner.project
    inputs = []
    models = load_models(project)
    for read in model.reads:
        if read.kind == "object":
            inputs.append(datasets.object_table(project, project.objects[read.unit]))
        else:
            inputs.append(_table(runner, read.unit, models[read.unit].analysis.columns))
    return tuple(inputs), _table(runner, model.name, model.analysis.columns)


def column_sources(runner: Runner, model: Model) -> dict[str, tuple[ColumnSource, ...]]:
    """Where each of the model's columns comes from, as datasets of the warehouse."""
    namespace = datasets.warehouse_namespace(runner.project)
    by_table = {r.table: r.unit for r in model.reads}
    out: dict[str, tuple[ColumnSource, ...]] = {}
    for column, (sources, subtype) in model.analysis.lineage.items():
        if not sources:
            continue  # made of no column (count(*), a constant)
        out[column] = tuple(
            ColumnSource(
                namespace=namespace,
                name=f"{datasets.DEFAULT_SCHEMA}.{s.table}",
                field=s.column,
                subtype=subtype,
                description=f"{model.name}.sql: from {by_table.get(s.table, s.table)}.{s.column}",
            )
            for s in sources
        )
    return out
