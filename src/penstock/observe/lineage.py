"""Lineage: which datasets each step read and wrote, column by column, recorded in the
metadata store and sent as OpenLineage run events (observe/openlineage.py).

Every session subscribes two queued sinks (observe/sinks.py), each with its own thread, so a
lineage backend that is down never costs the store its records, nor a load its time:

- `LineageRecorder` writes, per finished step, one row per dataset it read (`input`) or wrote
  (`output`) into the store's `lineage` table, with the dataset's schema and, for outputs,
  where each column came from (`penstock lineage OBJECT` reads them: observe/lineage_graph.py);
- `OpenLineageSink` (when `lineage.transport` is `file`, the default, or `http`) emits START
  when a step starts and COMPLETE or FAIL when it ends, paired by the step's id: the stage
  and load steps of a micro-batch are open together, each its own OpenLineage run.

Jobs (namespace: `lineage.namespace`, the project name by default): `run` / `rebuild` (the
penstock run), `<object>` (an object's work in it, the parent of its batch steps),
`<object>.stage`, `<object>.load`, `<object>.extract`, `<object>.restage`. Datasets are named
as the events name them (engine/datasets.py).

Column lineage is known for every step that moves rows: a stage step copies each landing
column to the staged batch as it is; a load reads each contract column from its source column
(its `from:`, else its own name, matched as validation matches it: quality/compile.py's
`bind_columns`) into the table, typed, and into the quarantine as raw text.
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from penstock.errors import PenstockError
from penstock.memo import per_spec
from penstock.observe import retention
from penstock.observe.bus import EventBus
from penstock.observe.events import (
    OBJECT_STEP,
    BatchStaged,
    ChecksEvaluated,
    ColumnSource,
    Dataset,
    Event,
    RunFinished,
    RunStarted,
    SchemaField,
    StepFinished,
    StepStarted,
)
from penstock.observe.insert_many import insert_many
from penstock.observe.schema import lineage

if TYPE_CHECKING:
    from penstock.catalog import ObjectSpec, Project
    from penstock.observe.store import MetadataStore
    from penstock.quality.compile import ColumnBinding

WRITE_EVERY_S = 10.0
WRITE_ROWS = 5_000


@functools.lru_cache(maxsize=4096)
def ol_uuid(penstock_id: str) -> str:
    """A run or step id as the UUID OpenLineage wants (ids are uuid4 hex; another id maps
    to a stable uuid5)."""
    try:
        return str(uuid.UUID(hex=penstock_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"penstock:{penstock_id}"))


def job_name(object_name: str, step: str) -> str:
    return object_name if step == OBJECT_STEP else f"{object_name}.{step}"


class InputColumn(NamedTuple):
    """Where an output column's values come from: a column of an input dataset. A named
    tuple, not a frozen dataclass: both lineage sinks build one per column of every batch's
    outputs (27,000 on 1,000 small files), at a third of the cost."""

    namespace: str
    name: str
    field: str
    subtype: str  # IDENTITY (as it is) or TRANSFORMATION (typed)
    description: str
    masking: bool = False  # the output holds no original value: hashed or masked (pii:)


ColumnLineage = dict[str, list[InputColumn]]  # output column -> its input columns


def column_lineage(
    obj: ObjectSpec | None,
    step: str,
    inputs: tuple[Dataset, ...],
    output: Dataset,
    given: Mapping[str, tuple[ColumnSource, ...]] | None = None,
) -> ColumnLineage:
    """Where each column of `output` comes from, as far as a step of `step` knows it (a
    model's build says it itself: `given`, from its SQL)."""
    if given and output.role == "table":
        return {
            column: [
                InputColumn(c.namespace, c.name, c.field, c.subtype, c.description) for c in sources
            ]
            for column, sources in given.items()
        }
    if step == "stage" and output.role == "stage":
        source = next((d for d in inputs if d.role == "landing"), None)
        if source is None:
            return {}
        shape = _stage_shape(output.fields)
    elif step == "load" and obj is not None and output.role in ("table", "quarantine"):
        source = next((d for d in inputs if d.role == "stage"), None)
        if source is None:
            return {}
        shape = _load_shape(obj, source.fields, output.role)
    else:
        return {}
    return from_shape(shape, source.namespace, source.name)


class ShapedLineage(dict[str, list[InputColumn]]):
    """Column lineage that is a shape (below) applied to one source dataset: what it says
    is the same for every batch of an object and schema but for that dataset's name, which
    the OpenLineage sink uses to write its JSON from a template per shape."""

    __slots__ = ("name", "namespace", "shape")

    shape: Shape
    namespace: str
    name: str


def from_shape(shape: Shape, namespace: str, name: str) -> ShapedLineage:
    out = ShapedLineage(
        {
            column: [InputColumn(namespace, name, field, subtype, description, masking)]
            for column, field, subtype, description, masking in shape
        }
    )
    out.shape, out.namespace, out.name = shape, namespace, name
    return out


# per output column: (column, source field, subtype, description, masking); the same for
# every batch of an object with the same schema, only the source dataset's name changes
Shape = tuple[tuple[str, str, str, str, bool], ...]


@per_spec
def _stage_shape(fields: tuple[SchemaField, ...]) -> Shape:
    """A staged batch's columns, each copied as read from the landing column of its name."""
    return tuple((f.name, f.name, "IDENTITY", "as read", False) for f in fields)


def _load_shape(obj: ObjectSpec, fields: tuple[SchemaField, ...], role: str) -> Shape:
    """Where a load's table (or quarantine) columns come from, worked out once per staged
    schema object (`_shapes`) rather than per batch."""
    known = _shapes(obj)
    found = known.get((id(fields), role))
    if found is not None and found[0] is fields:
        return found[1]
    shape = _load_shape_of(obj, fields, role)
    if len(known) >= 64:
        known.clear()
    known[(id(fields), role)] = (fields, shape)
    return shape


@per_spec
def _shapes(obj: ObjectSpec) -> dict[tuple[int, str], tuple[tuple[SchemaField, ...], Shape]]:
    """An object's load shapes, by (staged schema object, output role); the schema is held,
    so its id is never reused while its entry lives."""
    return {}


def _load_shape_of(obj: ObjectSpec, fields: tuple[SchemaField, ...], role: str) -> Shape:
    bound = _bound(obj).get(fields, ())
    if bound == ():
        bound = _bind(obj, fields)
    if bound is None:
        return ()  # ambiguous source names: the load said so
    out = []
    for b in bound:
        if b.stage_column is None or b.spec.pii == "drop":
            continue  # missing from the file (read as empty, from nothing), or not stored
        renamed = f" (from: '{b.stage_column}')" if b.stage_column != b.name else ""
        if role == "table":
            subtype, description = "TRANSFORMATION", f"validated and typed as {b.spec.type}"
        else:
            subtype, description = "IDENTITY", "raw text of a row that broke the contract"
        masking = b.spec.pii in ("hash", "mask")
        if masking:
            subtype = "TRANSFORMATION"
            description += ", then " + (
                "hashed (HMAC-SHA256, pii: hash)" if b.spec.pii == "hash" else "masked (pii: mask)"
            )
        out.append((b.name, b.stage_column, subtype, description + renamed, masking))
    return tuple(out)


@per_spec
def _bound(obj: ObjectSpec) -> dict[tuple[SchemaField, ...], list[ColumnBinding] | None]:
    """The object's columns bound to each staged schema met so far (every batch of an object
    usually has the same: bound once, not per batch)."""
    return {}


def _bind(obj: ObjectSpec, fields: tuple[SchemaField, ...]) -> list[ColumnBinding] | None:
    from penstock.quality.compile import bind_columns

    try:
        bound: list[ColumnBinding] | None = bind_columns(obj, {f.name: f.type for f in fields})
    except PenstockError:
        bound = None
    known = _bound(obj)
    if len(known) >= 64:
        known.clear()
    known[fields] = bound
    return bound


@dataclass
class OpenStep:
    """A step that started: its job, its parent (the object step, or the run), its object."""

    run_id: str
    step_id: str
    object: str
    step: str
    job: str
    parent_id: str | None  # the parent step's id; None: the run itself is the parent
    finished: bool = False


@dataclass
class FinishedStep:
    """What the lineage sinks need of a step that ended."""

    event: StepFinished
    job: str
    parent_id: str | None
    checks: ChecksEvaluated | None
    staged: BatchStaged | None
    columns: dict[tuple[str, str], ColumnLineage]  # output (namespace, name) -> columns


@dataclass
class StepTracker:
    """Pairs a step's events by its id (several steps of an object may be open at once) and
    remembers each run's command. Idempotent: the bus may deliver an event again."""

    project: Project
    commands: dict[str, str] = field(default_factory=dict)  # run id -> run / rebuild
    open: dict[str, OpenStep] = field(default_factory=dict)
    checks: dict[str, ChecksEvaluated] = field(default_factory=dict)
    staged: dict[str, BatchStaged] = field(default_factory=dict)

    EVENTS = (RunStarted, RunFinished, StepStarted, StepFinished, ChecksEvaluated, BatchStaged)

    def started(self, event: StepStarted) -> OpenStep:
        step = OpenStep(
            run_id=event.run_id,
            step_id=event.step_id,
            object=event.object,
            step=event.step,
            job=job_name(event.object, event.step),
            parent_id=event.parent_step_id,
        )
        self.open[event.step_id] = step
        return step

    def finished(self, event: StepFinished) -> FinishedStep:
        step = self.open.get(event.step_id)
        if step is None:  # its start was dropped: what the end says is enough
            step = self.started(
                StepStarted(
                    run_id=event.run_id,
                    at=event.started_at or event.at,
                    step_id=event.step_id,
                    object=event.object,
                    batch_id=event.batch_id,
                    step=event.step,
                    parent_step_id=event.parent_step_id,
                )
            )
        step.finished = True
        obj = self.project.objects.get(event.object)
        return FinishedStep(
            event=event,
            job=step.job,
            parent_id=step.parent_id,
            checks=self.checks.pop(event.step_id, None),
            staged=self.staged.pop(event.step_id, None),
            columns={
                (o.namespace, o.name): column_lineage(
                    obj, event.step, event.inputs, o, event.column_lineage
                )
                for o in event.outputs
            },
        )

    def unfinished(self, run_id: str) -> list[OpenStep]:
        """The run's steps that started and never finished (an interrupted run)."""
        return [s for s in self.open.values() if s.run_id == run_id and not s.finished]

    def run_ended(self, run_id: str) -> None:
        """Forget the run's steps and command."""
        self.open = {k: s for k, s in self.open.items() if s.run_id != run_id}
        self.commands.pop(run_id, None)

    def note(self, event: Event) -> None:
        """Remember what a later event of the same step needs."""
        match event:
            case RunStarted():
                self.commands[event.run_id] = event.command
            case ChecksEvaluated():
                self.checks[event.step_id] = event
            case BatchStaged():
                self.staged[event.step_id] = event


class LineageRecorder:
    """The store sink: per finished step, a row per dataset read or written."""

    def __init__(self, store: MetadataStore, project: Project) -> None:
        self.store = store
        self.project = project
        self.tracker = StepTracker(project)
        self.pending: dict[str, list[dict[str, Any]]] = {}  # step id -> rows (idempotent)
        self.held = 0  # rows in `pending` (counted as they come, not summed per event)
        self.last_write = time.monotonic()

    def handle(self, event: Event) -> None:
        self.tracker.note(event)
        match event:
            case StepStarted():
                self.tracker.started(event)
            case StepFinished():
                rows = self.rows(self.tracker.finished(event))
                replaced = self.pending.get(event.step_id)
                self.held += len(rows) - (len(replaced) if replaced is not None else 0)
                self.pending[event.step_id] = rows
            case RunFinished():
                self.tracker.run_ended(event.run_id)
        waited = time.monotonic() - self.last_write
        if waited > WRITE_EVERY_S or self.held > WRITE_ROWS:
            with contextlib.suppress(Exception):  # kept for the next write
                self.flush()

    def rows(self, done: FinishedStep) -> list[dict[str, Any]]:
        e = done.event
        common = {
            "project": self.project.name,
            "run_id": e.run_id,
            "step_id": e.step_id,
            "object": e.object,
            "job": done.job,
            "step": e.step,
            "status": e.status,
            "at": e.at,
        }
        rows = []
        for direction, datasets in (("input", e.inputs), ("output", e.outputs)):
            for d in datasets:
                columns = done.columns.get((d.namespace, d.name)) if direction == "output" else None
                rows.append(
                    {
                        **common,
                        "direction": direction,
                        "namespace": d.namespace,
                        "name": d.name,
                        "role": d.role,
                        "fields": _fields_json(d.fields),
                        "column_lineage": _columns_json(columns) if columns else None,
                    }
                )
        return rows

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        self.held = 0
        self.last_write = time.monotonic()
        rows = [row for step_rows in pending.values() for row in step_rows]
        if not rows:
            return
        try:
            with self.store.writing("record lineage") as conn:
                insert_many(conn, lineage, rows)
        except BaseException:
            self.pending = {**pending, **self.pending}  # tried again with the next write
            self.held = sum(map(len, self.pending.values()))
            raise

    def close(self) -> None:
        self.flush()


@per_spec
def _fields_json(fields: tuple[SchemaField, ...]) -> list[tuple[str, str]]:
    """A dataset's `fields` value, built once per schema object (the events of an object's
    batches share one) and shared by its rows: they are only serialised (as [[name, type],
    ...]). Rows held until a write, each with its own ten lists, had the garbage collector
    scan them again and again: the recorder's CPU on 1,000 small files' events was half
    collection (0.40 s, 0.19 s with the collector off: bench/sink_replay.py)."""
    return [(f.name, f.type) for f in fields]


def _columns_json(
    columns: Mapping[str, list[InputColumn]],
) -> dict[str, tuple[tuple[str, str, str, str], ...]]:
    """[[namespace, name, field, subtype], ...] per output column, as tuples of tuples of
    strings: the same JSON, and containers the garbage collector stops tracking (see
    `_fields_json`): a lineage row held until a write is then one or two objects it scans,
    not twenty (1,000 small files: ~11,000 objects promoted to the oldest generation, down
    from ~40,000; each promotion brings the next full collection nearer)."""
    return {
        name: tuple([(c.namespace, c.name, c.field, c.subtype) for c in inputs])
        for name, inputs in columns.items()
    }


def _prune(ctx: retention.PruneContext) -> list[retention.Prune]:
    c = lineage.c
    old = sa.and_(c.project == ctx.project, c.at < ctx.cutoff("lineage"))
    return [retention.Prune("lineage", lineage, old)]


retention.register("lineage", _prune)


def attach(bus: EventBus, *, project: Project, store: MetadataStore, **_context: Any) -> None:
    """Subscribe the lineage recorder and, unless `lineage.transport` is `none`, the
    OpenLineage sink (both queued)."""
    recorder = LineageRecorder(store, project)
    bus.subscribe(recorder, name="lineage", queued=True, events=StepTracker.EVENTS)
    if project.lineage.transport == "none":
        return
    from penstock.observe.openlineage import openlineage_sink

    bus.subscribe(
        openlineage_sink(project), name="OpenLineage", queued=True, events=StepTracker.EVENTS
    )
