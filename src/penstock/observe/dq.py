"""The quality sink: each loaded batch's DQ scores and checkpoint metrics into the metadata
store, and its metrics against their control limits.

Every session subscribes it (observe/sinks.py), queued: it works on its own thread, never on
the data path. For each `batch_measured` event, in one transaction, it

- replaces the batch's rows of `dq_results` (one per dimension, plus `total`) and
  `dq_metrics` (one per checkpoint metric: the per-batch history, keyed by the batch's own
  time, so a backlog of daily files loaded in one run is still one point per file);
- judges each watched metric against the limits computed from the object's earlier points
  (quality/control.py; a rate's limits cover its sampling noise at the batch's row count;
  `anomalies:` settings; the latest `window × seasons` batches are read
  from the store once per object and session, then kept as batches arrive in order: about
  3 ms a batch of 50 metrics on SQLite); a point outside is recorded in `dq_anomalies`,
  flagged in the history (so it stays out of later training windows, unless it is the third or
  later of a run of points outside: a new level, `control.trains_windows`), and sent on the
  bus as an `anomaly` event (alerts, hooks).

The runner flushes the bus before a run's `run_finished`, so the anomalies of its batches
reach the other sinks before the run ends. Rows are pruned by the `dq_results` retention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from penstock.observe import retention
from penstock.observe.bus import EventBus
from penstock.observe.events import Anomaly, BatchMeasured, Event, utcnow
from penstock.observe.insert_many import insert_many
from penstock.observe.names import QUALITY_SINK
from penstock.observe.schema import dq_anomalies, dq_metrics, dq_results

if TYPE_CHECKING:
    from penstock.catalog import Project
    from penstock.observe.store import MetadataStore
    from penstock.quality.control import Finding

# batch ids per DELETE … IN (…) statement
_IN_LIST = 500
# how many earlier batches to read per point: the window, times the seasons that dilute it
_SEASONS = {"none": 1, "day_of_week": 7, "hour_of_day": 24}


class QualitySink:
    EVENTS = (BatchMeasured,)

    def __init__(self, store: MetadataStore, project: Project, bus: EventBus | None) -> None:
        self.store = store
        self.project = project
        self.bus = bus
        # per object, its latest batches' metrics (read from the store once per session, then
        # kept as batches arrive in order): judging a batch reads no history from the store
        self.series: dict[str, list[_Point]] = {}
        # per object, each metric's training window over that series (without seasons),
        # slid as batches arrive: read from the points, the windows were most of the sink's
        # CPU on 1,000 small files (37 metrics a batch, 30 points each)
        self.trains: dict[str, dict[str, list[float]]] = {}
        # within one delivery: the batches' rows not inserted yet, and the batches written
        self._rows: dict[tuple[str, str], _BatchRows] = {}
        self._written: set[tuple[str, str]] = set()
        self._found: list[Anomaly] = []
        # per object, whether its `anomalies: metrics:` globs watch a metric (asked per batch)
        self._watched: dict[str, dict[str, bool]] = {}

    def handle(self, event: Event) -> None:
        if isinstance(event, BatchMeasured):
            self.handle_many([event])

    def handle_many(self, events: Sequence[Event]) -> None:
        """Record the batches in one transaction; then send their anomalies. The rows of all
        the batches go in with a statement per table (thousands of small files make
        thousands of batches); a batch measured twice in one delivery keeps its last rows."""
        measured = [e for e in events if isinstance(e, BatchMeasured)]
        if not measured:
            return
        try:
            with self.store.writing("record quality results") as conn:
                self._forget(conn, measured)
                for event in measured:
                    key = (event.object, event.batch_id)
                    if self._rows.pop(key, None) is None and key in self._written:
                        self._forget(conn, [event])  # measured again after its rows went in
                    self._rows[key] = self._record(conn, event)
                self._write_rows(conn)
            found = list(self._found)
        finally:
            self._rows.clear()
            self._written.clear()
            self._found.clear()
        if self.bus is not None:
            for anomaly in found:
                self.bus.emit(anomaly)

    def _write_rows(self, conn: sa.Connection) -> None:
        """Insert the rows of the batches recorded so far in this delivery (a statement per
        table)."""
        for table in (dq_results, dq_metrics, dq_anomalies):
            values = [row for batch in self._rows.values() for row in batch[table.name]]
            insert_many(conn, table, values)
        for batch in self._rows.values():
            self._found.extend(batch.anomalies)
        self._written.update(self._rows)
        self._rows.clear()

    def _forget(self, conn: sa.Connection, measured: Sequence[BatchMeasured]) -> None:
        """Delete what the store holds of these batches (a batch loaded again)."""
        by_object: dict[str, set[str]] = {}
        for event in measured:
            by_object.setdefault(event.object, set()).add(event.batch_id)
        project = self.project.name
        for obj, ids in by_object.items():
            batch_ids = sorted(ids)
            for start in range(0, len(batch_ids), _IN_LIST):
                some = batch_ids[start : start + _IN_LIST]
                for table in (dq_results, dq_metrics, dq_anomalies):
                    c = table.c
                    conn.execute(
                        table.delete().where(
                            c.batch_id.in_(some), c.project == project, c.object == obj
                        )
                    )

    def _record(self, conn: sa.Connection, ev: BatchMeasured) -> _BatchRows:
        """The batch's rows of each table, and its anomalies (judged against the history)."""
        project, now = self.project.name, utcnow()
        batch = {
            "project": project,
            "object": ev.object,
            "batch_id": ev.batch_id,
            "source_file": ev.source_file,
            "batch_time": ev.batch_time,
            "run_id": ev.run_id,
        }
        out = _BatchRows()
        out[dq_results.name] = [
            {
                **batch,
                "dimension": s.dimension,
                "rows_checked": s.rows_checked,
                "rows_failed": s.rows_failed,
                "score": s.score,
                "measured_at": now,
            }
            for s in ev.scores
        ]
        findings = self._judge(conn, ev)
        flagged = {metric for metric, _ in findings}
        out[dq_metrics.name] = [
            {
                **batch,
                "metric": metric,
                "value": value,
                "anomalous": metric in flagged,
                "measured_at": now,
            }
            for metric, value in ev.metrics.items()
        ]
        for metric, f in findings:
            if not f.reported:  # outside, on a side `direction` does not report
                continue
            out[dq_anomalies.name].append(
                {
                    **batch,
                    "metric": metric,
                    "value": f.value,
                    "expected": f.limits.center,
                    "lower": f.limits.lower,
                    "upper": f.limits.upper,
                    "points": f.limits.points,
                    "direction": f.direction,
                    "detected_at": now,
                }
            )
            out.anomalies.append(_anomaly(ev, metric, f))
        return out

    def _judge(self, conn: sa.Connection, ev: BatchMeasured) -> list[tuple[str, Finding]]:
        """The watched metrics of the batch found outside their limits (on either side: those
        `direction` reports are anomalies; all stay out of later mean/σ windows but the third
        and later of a run: `control.trains_windows`)."""
        if ev.object not in self.project.objects:
            return []
        settings = self.project.anomaly_settings(ev.object)
        if not settings.enabled:
            return []
        from penstock.quality.control import (
            evaluate,
            judge,
            keeps_outliers,
            watched,
        )
        from penstock.quality.scores import is_rate

        known = self._watched.setdefault(ev.object, {})
        metrics = {}
        for m, v in ev.metrics.items():
            wanted = known.get(m)
            if wanted is None:
                wanted = known[m] = watched(m, settings)
            if wanted:
                metrics[m] = v
        if not metrics:
            return []
        key = (ev.batch_time, ev.source_file, ev.batch_id)
        lookback = settings.window * _SEASONS[settings.seasonality]
        cached = self.series.pop(ev.object, None)
        trains = self.trains.pop(ev.object, {})
        in_order = cached is not None and (not cached or cached[-1].key < key)
        points = cached if cached is not None and in_order else None
        if points is None:  # first of the object in this session, or out of order: the store's
            self._write_rows(conn)  # with the batches recorded earlier in this delivery
            points = _earlier_points(conn, self.project.name, ev.object, key, lookback)
            trains = {}
        keep_all = keeps_outliers(settings)
        found = []
        seasonal = settings.seasonality != "none"
        for metric, value in metrics.items():
            rows = ev.rows_in if is_rate(metric) else None  # limits cover sampling noise
            if seasonal:
                history = [
                    (p.key[0], p.values[metric])
                    for p in points
                    if metric in p.values and (keep_all or metric not in p.excluded)
                ]
                finding = evaluate(value, ev.batch_time, history, settings, rows=rows)
            else:  # `evaluate`'s window, without the times it needs only for seasons
                train = trains.get(metric)
                if train is None:
                    train = trains[metric] = _window(points, metric, settings.window, keep_all)
                finding = judge(value, train, settings, rows=rows)
            if finding is not None:
                found.append((metric, finding))
        if in_order or cached is None:
            # the series goes on from here (a batch out of order: the store is read again)
            point = _next_point(points, key, metrics, frozenset(m for m, _ in found))
            points.append(point)
            dropped = points[: max(0, len(points) - lookback)]
            self.series[ev.object] = points[-lookback:]
            if not seasonal:
                _slide(trains, dropped, point, keep_all)
                self.trains[ev.object] = trains
        return found


def _window(points: Sequence[_Point], metric: str, size: int, keep_all: bool) -> list[float]:
    """The metric's values of the latest `size` points that have it (and, unless `keep_all`,
    train windows: `_Point.excluded`), oldest first: a window not kept yet (the metric's
    first batch of the session, or the series read again from the store); `_slide` moves it
    along from there."""
    train: list[float] = []
    for point in reversed(points):
        value = point.values.get(metric)
        if value is not None and (keep_all or metric not in point.excluded):
            train.append(value)
            if len(train) == size:
                break
    train.reverse()
    return train


def _slide(
    trains: dict[str, list[float]], dropped: Sequence[_Point], added: _Point, keep_all: bool
) -> None:
    """Move each metric's window (`_window` over the series) along as the series loses
    `dropped` (its oldest points) and gains `added`: without seasons the series holds
    `window` points, so a window is every kept value of its metric in it, oldest first."""
    for metric, train in trains.items():
        for point in dropped:
            if metric in point.values and (keep_all or metric not in point.excluded):
                del train[0]
        if metric in added.values and (keep_all or metric not in added.excluded):
            train.append(added.values[metric])


class _BatchRows(dict[str, list[dict[str, Any]]]):
    """One batch's rows by table name (`dq_results`, `dq_metrics`, `dq_anomalies`) and the
    anomalies found in it."""

    def __init__(self) -> None:
        super().__init__({t.name: [] for t in (dq_results, dq_metrics, dq_anomalies)})
        self.anomalies: list[Anomaly] = []


@dataclass(frozen=True)
class _Point:
    """One batch of an object's metric history: its order key (batch time, file, id), its
    values, the metrics found outside their limits, and those of them that do not train
    later mean/σ windows (all but the third and later of a run: `control.trains_windows`)."""

    key: tuple[datetime, str, str]
    values: dict[str, float]
    outside: frozenset[str]
    excluded: frozenset[str]


def _next_point(
    series: Sequence[_Point],
    key: tuple[datetime, str, str],
    values: dict[str, float],
    outside: frozenset[str],
) -> _Point:
    """The point after `series` (oldest first): which of its metrics found `outside` train
    later windows depends on the points just before it (`control.trains_windows`)."""
    from penstock.quality.control import RUN_TRAINS, trains_windows

    before = series[1 - RUN_TRAINS :]
    excluded = frozenset(
        m for m in outside if not trains_windows(True, [m in p.outside for p in before])
    )
    return _Point(key, values, outside, excluded)


def _earlier_points(
    conn: sa.Connection, project: str, obj: str, key: tuple[datetime, str, str], lookback: int
) -> list[_Point]:
    """The object's last `lookback` batches before `key` with their metrics, oldest first
    (read with the two batches before them: whether a point outside trains depends on them)."""
    from penstock.quality.control import RUN_TRAINS

    r, m = dq_results.c, dq_metrics.c
    at, source_file, batch_id = key
    here = sa.tuple_(sa.literal(at, r.batch_time.type), source_file, batch_id)
    earlier = (
        sa.select(r.batch_id, r.batch_time, r.source_file)
        .where(
            r.project == project,
            r.object == obj,
            r.dimension == "total",
            sa.tuple_(r.batch_time, r.source_file, r.batch_id) < here,
        )
        .order_by(r.batch_time.desc(), r.source_file.desc(), r.batch_id.desc())
        .limit(lookback + RUN_TRAINS - 1)
    )
    keys = {
        row.batch_id: (row.batch_time, row.source_file, row.batch_id)
        for row in conn.execute(earlier)
    }
    if not keys:
        return []
    values: dict[str, dict[str, float]] = {b: {} for b in keys}
    outside: dict[str, set[str]] = {b: set() for b in keys}
    rows = conn.execute(
        sa.select(m.batch_id, m.metric, m.value, m.anomalous).where(
            m.project == project, m.object == obj, m.batch_id.in_(list(keys))
        )
    )
    for row in rows:
        values[row.batch_id][row.metric] = float(row.value)
        if row.anomalous:
            outside[row.batch_id].add(row.metric)
    points: list[_Point] = []
    for b in sorted(keys, key=keys.__getitem__):
        points.append(_next_point(points, keys[b], values[b], frozenset(outside[b])))
    return points[-lookback:]


def _anomaly(ev: BatchMeasured, metric: str, f: Finding) -> Anomaly:
    word = "above" if f.direction == "spike" else "below"
    return Anomaly(
        run_id=ev.run_id,
        object=ev.object,
        metric=metric,
        value=f.value,
        batch_id=ev.batch_id,
        lower=f.limits.lower,
        upper=f.limits.upper,
        expected=f.limits.center,
        points=f.limits.points,
        batch_time=ev.batch_time,
        source_file=ev.source_file,
        message=(
            f"{ev.object}: {metric} of batch {ev.batch_id} ({ev.source_file}) is {f.value:g}, "
            f"{word} its control limits [{f.limits.lower:g}, {f.limits.upper:g}] "
            f"(centre {f.limits.center:g} over {f.limits.points} earlier batches)"
        ),
    )


def _prune(ctx: retention.PruneContext) -> list[retention.Prune]:
    cutoff = ctx.cutoff("dq_results")
    steps = []
    for table, column in (
        (dq_results, dq_results.c.measured_at),
        (dq_metrics, dq_metrics.c.measured_at),
        (dq_anomalies, dq_anomalies.c.detected_at),
    ):
        condition = sa.and_(table.c.project == ctx.project, column < cutoff)
        steps.append(retention.Prune("dq_results", table, condition))
    return steps


retention.register("dq_results", _prune)


def attach(bus: EventBus, *, project: Project, store: MetadataStore, **_context: Any) -> None:
    """Subscribe the quality sink (queued: scoring and limits never slow or fail a load)."""
    sink = QualitySink(store, project, bus)
    bus.subscribe(sink, name=QUALITY_SINK, queued=True, events=QualitySink.EVENTS)
