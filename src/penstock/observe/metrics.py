"""The metrics sink: what a run did, as Prometheus metrics kept in the metadata store.

Every session subscribes it (observe/sinks.py). It counts as events arrive, in memory on its
own thread, and writes once per run end (and every `WRITE_EVERY_S` in a long run), in one
transaction, to two tables (observe/schema.py):

- `metric_totals`: the running totals `penstock serve` exposes and `penstock run
  --pushgateway` pushes (observe/prometheus.py): counters and histogram buckets add up across
  runs and processes, gauges hold their latest value. Totals live in the store, not in a
  process, so a serve started later, or one serving while other processes run, shows them all,
  and a counter never goes back when old runs are pruned. One row per metric, object and label
  set: bounded by the project's objects, never by runs.
- `metrics`: the measures of each run as data (per object: rows by outcome, DQ pass ratio,
  quarantine ratio, bytes read; per source: up, latency; the run's duration), queryable with
  `penstock sql` and pruned by the `metrics` retention.

`METRICS` names every exposed metric, its type, help and labels. Labels are few and bounded:
object, outcome, step, status, command, source; never a batch id or a file name.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from penstock.observe import retention
from penstock.observe.bus import EventBus
from penstock.observe.events import (
    BatchLoaded,
    BatchStaged,
    Event,
    RunFinished,
    SourceChecked,
    StepFinished,
    utcnow,
)
from penstock.observe.schema import metric_totals, metrics

if TYPE_CHECKING:
    from penstock.catalog import Project
    from penstock.observe.store import MetadataStore

MetricType = Literal["counter", "gauge", "histogram"]
PREFIX = "penstock_"
WRITE_EVERY_S = 10.0

# Step durations: batch work takes from a fraction of a second (a small file) to an hour
# (a file larger than memory); the buckets cover that range at a few per decade.
STEP_BUCKETS = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
RUN_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0)


@dataclass(frozen=True)
class MetricSpec:
    type: MetricType
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...] = ()


# name (without the `penstock_` prefix) -> spec; `object` is a label of every per-object metric
METRICS: dict[str, MetricSpec] = {
    "rows_processed_total": MetricSpec(
        "counter",
        "Rows read from loaded batches, by outcome: loaded, quarantined (broke the contract "
        "and held back) or duplicate (superseded within their batch); the outcomes add up to "
        "the rows read.",
        ("object", "outcome"),
    ),
    "bytes_read_total": MetricSpec(
        "counter", "Bytes of landing files staged as new batches.", ("object",)
    ),
    "steps_total": MetricSpec(
        "counter",
        "Steps that ended, by step (object, stage, load, extract, restage) and status "
        "(success, warning, failed, skipped).",
        ("object", "step", "status"),
    ),
    "step_duration_seconds": MetricSpec(
        "histogram", "Wall time of the steps that ended.", ("object", "step"), STEP_BUCKETS
    ),
    "runs_total": MetricSpec(
        "counter",
        "Runs that ended, by command (run, rebuild) and outcome (success, warning, failed).",
        ("command", "outcome"),
    ),
    "run_duration_seconds": MetricSpec(
        "histogram", "Wall time of the runs that ended.", ("command",), RUN_BUCKETS
    ),
    "last_success_timestamp_seconds": MetricSpec(
        "gauge",
        "When the object's work last ended without a failed step (Unix time).",
        ("object",),
    ),
    "last_load_timestamp_seconds": MetricSpec(
        "gauge", "When a batch was last loaded into the object's table (Unix time).", ("object",)
    ),
    "freshness_lag_seconds": MetricSpec(
        "gauge",
        "Seconds since a batch was last loaded into the object's table (at scrape time; "
        "not pushed: compute time() - penstock_last_load_timestamp_seconds instead).",
        ("object",),
    ),
    "quarantine_ratio": MetricSpec(
        "gauge",
        "Share of the rows read that were quarantined, over the object's batches loaded in "
        "its last run that read rows.",
        ("object",),
    ),
    "dq_pass_ratio": MetricSpec(
        "gauge",
        "DQ pass rate: share of the rows read that broke no rule of the contract, over the "
        "object's batches loaded in its last run that read rows.",
        ("object",),
    ),
    "source_up": MetricSpec(
        "gauge", "1 if the source was reached when last asked, else 0.", ("source",)
    ),
    "source_last_check_timestamp_seconds": MetricSpec(
        "gauge", "When the source was last asked what it holds (Unix time).", ("source",)
    ),
}

SeriesKey = tuple[str, str, str]  # name, object ('' for none), labels as sorted JSON ('' none)


def labels_key(labels: Mapping[str, str]) -> str:
    return _labels_json(tuple(sorted(labels.items()))) if labels else ""


@functools.lru_cache(maxsize=1024)
def _labels_json(items: tuple[tuple[str, str], ...]) -> str:
    """Labels are few and bounded (module docstring): each set is serialised once."""
    return json.dumps(dict(items), separators=(",", ":"))


@functools.lru_cache(maxsize=1024)
def _histogram_keys(
    name: str, obj: str, items: tuple[tuple[str, str], ...]
) -> tuple[tuple[tuple[float, SeriesKey], ...], SeriesKey, SeriesKey, SeriesKey]:
    """A histogram's series keys for one label set: each finite bucket's (its bound, its
    key), then the +Inf bucket's, `_sum`'s and `_count`'s. Built per step before: the ~15
    keys of every finished step were 0.08 s of the sink's 0.13 s on 1,000 small files'
    events (bench/sink_replay.py)."""
    labels = dict(items)

    def key(suffix: str, **more: str) -> SeriesKey:
        return (f"{name}{suffix}", obj, labels_key({**labels, **more}))

    buckets = tuple((b, key("_bucket", le=le_text(b))) for b in METRICS[name].buckets)
    return buckets, key("_bucket", le="+Inf"), key("_sum"), key("_count")


@dataclass
class _ObjectRun:
    """An object's loads in one run."""

    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_invalid: int = 0
    batches: int = 0
    bytes_read: int = 0


@dataclass
class _Pending:
    adds: dict[SeriesKey, float] = field(default_factory=dict)
    sets: dict[SeriesKey, float] = field(default_factory=dict)
    measures: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.adds or self.sets or self.measures)


class MetricsSink:
    """The bus sink (see the module docstring): `handle` counts, `flush` writes."""

    EVENTS = (StepFinished, BatchLoaded, BatchStaged, SourceChecked, RunFinished)

    def __init__(self, store: MetadataStore, project: str) -> None:
        self.store = store
        self.project = project
        self.pending = _Pending()
        self.runs: dict[tuple[str, str], _ObjectRun] = {}  # (run id, object) -> its loads
        self.last_write = time.monotonic()

    # -- counting -------------------------------------------------------------------------
    def add(self, name: str, value: float, *, object: str = "", **labels: str) -> None:
        key = (name, object, labels_key(labels))
        self.pending.adds[key] = self.pending.adds.get(key, 0.0) + value

    def set(self, name: str, value: float, *, object: str = "", **labels: str) -> None:
        self.pending.sets[(name, object, labels_key(labels))] = value

    def observe(self, name: str, value: float, *, object: str = "", **labels: str) -> None:
        buckets, inf, total, count = _histogram_keys(name, object, tuple(sorted(labels.items())))
        adds = self.pending.adds
        for bound, key in buckets:
            if value <= bound:
                adds[key] = adds.get(key, 0.0) + 1
        for key, add in ((inf, 1), (total, value), (count, 1)):
            adds[key] = adds.get(key, 0.0) + add

    def measure(
        self,
        run_id: str,
        name: str,
        value: float,
        at: datetime,
        *,
        object: str | None = None,
        **labels: str,
    ) -> None:
        self.pending.measures.append(
            {
                "project": self.project,
                "run_id": run_id,
                "object": object,
                "name": name,
                "labels": labels,
                "value": float(value),
                "at": at,
            }
        )

    def handle(self, event: Event) -> None:
        match event:
            case StepFinished():
                self.add(
                    "steps_total", 1, object=event.object, step=event.step, status=event.status
                )
                if event.duration_s is not None:
                    self.observe(
                        "step_duration_seconds",
                        event.duration_s,
                        object=event.object,
                        step=event.step,
                    )
                if event.step == "object" and event.status in ("success", "warning"):
                    self.set(
                        "last_success_timestamp_seconds", event.at.timestamp(), object=event.object
                    )
            case BatchStaged():
                self.add("bytes_read_total", event.bytes, object=event.object)
                self._run(event.run_id, event.object).bytes_read += event.bytes
            case BatchLoaded() if not event.skipped:
                for outcome, rows in (
                    ("loaded", event.rows_loaded),
                    ("quarantined", event.rows_quarantined),
                    ("duplicate", event.rows_duplicate),
                ):
                    self.add("rows_processed_total", rows, object=event.object, outcome=outcome)
                loads = self._run(event.run_id, event.object)
                loads.rows_in += event.rows_in
                loads.rows_loaded += event.rows_loaded
                loads.rows_quarantined += event.rows_quarantined
                loads.rows_duplicate += event.rows_duplicate
                loads.rows_invalid += event.rows_invalid
                loads.batches += 1
                at = (event.loaded_at or event.at).timestamp()
                self.set("last_load_timestamp_seconds", at, object=event.object)
            case SourceChecked():
                self.set("source_up", 1.0 if event.available else 0.0, source=event.source)
                self.set(
                    "source_last_check_timestamp_seconds", event.at.timestamp(), source=event.source
                )
                self.measure(
                    event.run_id,
                    "source_up",
                    1.0 if event.available else 0.0,
                    event.at,
                    object=event.object,
                    source=event.source,
                )
                if event.latency_s is not None:
                    self.measure(
                        event.run_id,
                        "source_latency_seconds",
                        event.latency_s,
                        event.at,
                        object=event.object,
                        source=event.source,
                    )
            case RunFinished():
                self._run_finished(event)
        if time.monotonic() - self.last_write > WRITE_EVERY_S:
            # a long run: write what it counted so far; if the store fails, what was counted
            # waits for the next write (raising here would have the bus count this event twice)
            with contextlib.suppress(Exception):
                self.flush()

    def _run(self, run_id: str, object_name: str) -> _ObjectRun:
        return self.runs.setdefault((run_id, object_name), _ObjectRun())

    def _run_finished(self, event: RunFinished) -> None:
        outcome = event.outcome or event.status
        self.add("runs_total", 1, command=event.command, outcome=outcome)
        if event.duration_s is not None:
            self.observe("run_duration_seconds", event.duration_s, command=event.command)
            self.measure(event.run_id, "run_duration_seconds", event.duration_s, event.at)
        for (run_id, name), loads in list(self.runs.items()):
            if run_id != event.run_id:
                continue
            del self.runs[(run_id, name)]
            at = event.at
            for measure, value in (
                ("rows_in", loads.rows_in),
                ("rows_loaded", loads.rows_loaded),
                ("rows_quarantined", loads.rows_quarantined),
                ("rows_duplicate", loads.rows_duplicate),
                ("batches_loaded", loads.batches),
                ("bytes_read", loads.bytes_read),
            ):
                self.measure(run_id, measure, value, at, object=name)
            if loads.rows_in:
                quarantine = loads.rows_quarantined / loads.rows_in
                passed = (loads.rows_in - loads.rows_invalid) / loads.rows_in
                self.set("quarantine_ratio", quarantine, object=name)
                self.set("dq_pass_ratio", passed, object=name)
                self.measure(run_id, "quarantine_ratio", quarantine, at, object=name)
                self.measure(run_id, "dq_pass_ratio", passed, at, object=name)

    # -- writing --------------------------------------------------------------------------
    def flush(self) -> None:
        """Write what was counted since the last write, in one transaction."""
        pending, self.pending = self.pending, _Pending()
        self.last_write = time.monotonic()
        if not pending:
            return
        try:
            write_totals(self.store, self.project, pending.adds, pending.sets, pending.measures)
        except BaseException:
            self._restore(pending)  # tried again with the next write (the bus retries it)
            raise

    def _restore(self, pending: _Pending) -> None:
        for key, value in pending.adds.items():
            self.pending.adds[key] = self.pending.adds.get(key, 0.0) + value
        self.pending.sets = {**pending.sets, **self.pending.sets}
        self.pending.measures[:0] = pending.measures

    def close(self) -> None:
        self.flush()


def le_text(bound: float) -> str:
    """A bucket's upper bound as prometheus_client writes it (`0.05`, `1.0`, `3600.0`)."""
    return f"{bound:g}" if bound != int(bound) else f"{bound:.1f}"


def write_totals(
    store: MetadataStore,
    project: str,
    adds: Mapping[SeriesKey, float],
    sets: Mapping[SeriesKey, float],
    measures: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Add `adds` to the running totals, set `sets`, insert `measures`: one transaction."""
    now = utcnow()
    with store.writing("record metrics") as conn:
        for values, accumulate in ((adds, True), (sets, False)):
            if not values:
                continue
            rows = [
                {
                    "project": project,
                    "name": name,
                    "object": obj,
                    "labels": labels,
                    "value": value,
                    "updated_at": now,
                }
                for (name, obj, labels), value in values.items()
            ]
            conn.execute(_upsert(conn, accumulate), rows)
        if measures:
            conn.execute(metrics.insert(), list(measures))


def _upsert(conn: sa.Connection, accumulate: bool) -> Any:
    # only the store's own dialect: importing PostgreSQL's from a SQLite store took 0.1 s of
    # CPU at every run's end (bench/README.md, observe_overhead.py)
    stmt: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        stmt = postgresql.insert(metric_totals)
    else:
        from sqlalchemy.dialects import sqlite

        stmt = sqlite.insert(metric_totals)
    c = metric_totals.c
    value = c.value + stmt.excluded.value if accumulate else stmt.excluded.value
    return stmt.on_conflict_do_update(
        index_elements=[c.project, c.name, c.object, c.labels],
        set_={"value": value, "updated_at": stmt.excluded.updated_at},
    )


@dataclass(frozen=True)
class Series:
    """One stored series: a metric (or a histogram's `_bucket`/`_sum`/`_count`), its labels
    (object included) and value; `updated_at` as a Unix time."""

    name: str
    labels: dict[str, str]
    value: float
    updated_at: float


def read_totals(store: MetadataStore, project: str) -> list[Series]:
    """The project's running totals, as `penstock serve` exposes them."""
    c = metric_totals.c
    query = sa.select(c.name, c.object, c.labels, c.value, c.updated_at).where(c.project == project)
    out = []
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            labels = json.loads(row.labels) if row.labels else {}
            if row.object:
                labels["object"] = row.object
            out.append(Series(row.name, labels, float(row.value), row.updated_at.timestamp()))
    return out


def _prune(ctx: retention.PruneContext) -> list[retention.Prune]:
    cutoff = ctx.cutoff("metrics")
    m, t = metrics.c, metric_totals.c
    steps = [retention.Prune("metrics", metrics, sa.and_(m.project == ctx.project, m.at < cutoff))]
    if ctx.objects is not None:  # the series of objects no longer in the project
        gone = sa.and_(
            t.project == ctx.project,
            t.object != "",
            t.object.not_in(ctx.objects) if ctx.objects else sa.true(),
            t.updated_at < cutoff,
        )
        steps.append(retention.Prune("metrics", metric_totals, gone))
    return steps


retention.register("metrics", _prune)


def attach(bus: EventBus, *, project: Project, store: MetadataStore, **_context: Any) -> None:
    """Subscribe the metrics sink (queued: counting never slows or fails a load)."""
    sink = MetricsSink(store, project.name)
    bus.subscribe(sink, name="metrics", queued=True, events=MetricsSink.EVENTS)
