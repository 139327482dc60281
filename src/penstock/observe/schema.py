"""Table definitions of the metadata store (SQLAlchemy Core), for SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


def _as_sqlite_text(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`process`, then, for a datetime it returns, the text sqlite3's default adapter made of it
    (`isoformat(" ")`): the same stored text, converted once per value by the cache above
    instead of once per parameter by the driver (86,000 times for 1,000 small files' quality
    rows), and without the adapter Python 3.12 deprecates."""

    def to_text(value: Any) -> Any:
        bound = process(value)
        return bound.isoformat(" ") if isinstance(bound, datetime) else bound

    return to_text


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware UTC.

    SQLite keeps no offset: values are written as naive UTC and tagged UTC on read.
    Naive values are refused on write.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: metadata timestamps must be aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """The bound value's conversion, remembered for the last values: the rows written
        together repeat a few times many times (a batch's metric rows share its batch time
        and measurement time: 40,000 rows for 1,000 small files, two conversions each)."""
        process = super().bind_processor(dialect)
        if process is None:
            return None
        convert = _as_sqlite_text(process) if dialect.name == "sqlite" else process
        return functools.lru_cache(maxsize=256)(convert)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# Autoincrement on SQLite only works for INTEGER PRIMARY KEY.
_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

project_versions = sa.Table(
    "project_versions",
    metadata,
    sa.Column("project_hash", sa.String(128), primary_key=True),
    sa.Column("project", sa.String(255), nullable=False),
    sa.Column("first_seen", UTCDateTime(), nullable=False),
)

catalog_sources = sa.Table(
    "catalog_sources",
    metadata,
    sa.Column("project_hash", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("owner", sa.String(255)),
    sa.Column("description", sa.Text()),
)

catalog_objects = sa.Table(
    "catalog_objects",
    metadata,
    sa.Column("project_hash", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("source", sa.String(255), nullable=False),
    sa.Column("group_name", sa.String(255), nullable=False),
    sa.Column("load_mode", sa.String(64), nullable=False),
    sa.Column("key", sa.JSON(), nullable=False),
    sa.Column("order_by", sa.String(255)),
    sa.Column("on_invalid", sa.String(64), nullable=False),
    sa.Column("table_name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text()),
    sa.Column("owner", sa.String(255)),
)

catalog_attributes = sa.Table(
    "catalog_attributes",
    metadata,
    sa.Column("project_hash", sa.String(128), primary_key=True),
    sa.Column("object", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("ordinal", sa.Integer(), nullable=False),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("required", sa.Boolean(), nullable=False),
    sa.Column("description", sa.Text()),
    sa.Column("pii", sa.String(16)),  # hash | mask | drop | keep; NULL: not personal data
)

catalog_groups = sa.Table(
    "catalog_groups",
    metadata,
    sa.Column("project_hash", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
)

job_runs = sa.Table(
    "job_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("project", sa.String(255), nullable=False),
    sa.Column("project_hash", sa.String(128), nullable=False),
    sa.Column("command", sa.String(255), nullable=False),
    sa.Column("selector", sa.Text()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime()),
    sa.Column("error", sa.Text()),
    # the process that ran it (NULL in older stores): `penstock logs --follow` watches it
    sa.Column("pid", sa.Integer()),
    sa.Column("host", sa.String(255)),
    sa.Index("ix_job_runs_started_at", "started_at"),
)

step_runs = sa.Table(
    "step_runs",
    metadata,
    sa.Column("step_id", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("job_runs.run_id"), nullable=False),
    sa.Column("object", sa.String(255), nullable=False),
    sa.Column("batch_id", sa.String(255)),
    sa.Column("step", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("rows_in", sa.BigInteger(), nullable=False, default=0),
    sa.Column("rows_loaded", sa.BigInteger(), nullable=False, default=0),
    sa.Column("rows_quarantined", sa.BigInteger(), nullable=False, default=0),
    sa.Column("rows_duplicate", sa.BigInteger(), nullable=False, default=0),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime()),
    sa.Column("error", sa.Text()),
    # true when the step was recorded afterwards from the warehouse ledger (the store had
    # missed it); added to older stores by MetadataStore.create
    sa.Column("reconciled", sa.Boolean()),
    # the landing file a stage or load step read, and its size (NULL in older stores)
    sa.Column("source_file", sa.Text()),
    sa.Column("bytes_in", sa.BigInteger()),
    sa.Index("ix_step_runs_object_started_at", "object", "started_at"),
    sa.Index("ix_step_runs_run_id", "run_id"),
    # reconciling looks up the ledger's batches here each run (added to older stores by create)
    sa.Index("ix_step_runs_batch_id", "batch_id"),
    # `penstock status`: an object's last loaded batch without scanning its history
    sa.Index("ix_step_runs_object_step_status", "object", "step", "status", "ended_at"),
)

# The latest counts of each object in the warehouse, recorded when its work in a run ends (one
# row per project and object, replaced each time): what `penstock status` shows without
# opening the warehouse. Added to older stores by MetadataStore.create (create_all).
object_counts = sa.Table(
    "object_counts",
    metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("object", sa.String(255), primary_key=True),
    sa.Column("table_name", sa.String(255), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("counted_at", UTCDateTime(), nullable=False),
    sa.Column("table_rows", sa.BigInteger()),
    sa.Column("batches_loaded", sa.BigInteger(), nullable=False),
    sa.Column("rows_quarantined", sa.BigInteger(), nullable=False),
    sa.Column("rows_warned", sa.BigInteger(), nullable=False),
    # files rejected as unreadable (lake/rejected); added to older stores by create (NULL: 0)
    sa.Column("batches_rejected", sa.BigInteger()),
)

logs = sa.Table(
    "logs",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("object", sa.String(255)),
    sa.Column("batch_id", sa.String(255)),
    # the step running (or just ended) when the line was logged (NULL in older stores)
    sa.Column("step_id", sa.String(64)),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("fields", sa.JSON(), nullable=False),
    sa.Index("ix_logs_run_id", "run_id"),
    sa.Index("ix_logs_at", "at"),
)

# A skip (or its undo) decided for a staged batch: the audit record of `penstock batches skip`.
# What run and rebuild honour is the marker beside the batch in the lake.
batch_decisions = sa.Table(
    "batch_decisions",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(255), nullable=False),
    sa.Column("object", sa.String(255), nullable=False),
    sa.Column("batch_id", sa.String(255), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text()),
    sa.Column("decided_by", sa.String(255), nullable=False),
    sa.Column("decided_at", UTCDateTime(), nullable=False),
    sa.Index("ix_batch_decisions_object", "object", "batch_id"),
)

# ---- what the metrics and lineage sinks record (observe/metrics.py, observe/lineage.py) ----

# Measurements as data: per run, per object (or source), each measure the metrics sink
# takes (rows by outcome, DQ pass ratio, quarantine ratio, bytes read, source up...).
# Pruned by the `metrics` retention.
metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(255), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("object", sa.String(255)),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("labels", sa.JSON(), nullable=False),
    sa.Column("value", sa.Double(), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index("ix_metrics_project_name_at", "project", "name", "at"),
)

# The running totals `penstock serve` exposes: one row per project, metric, object and label
# set (counters and histogram buckets add up, gauges hold the latest value). Bounded by the
# objects and labels, not by runs; the `metrics` retention drops the series of objects no
# longer in the project.
metric_totals = sa.Table(
    "metric_totals",
    metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("object", sa.String(255), primary_key=True),  # '' when none
    sa.Column("labels", sa.String(255), primary_key=True),  # 'k=v,k=v' sorted; '' when none
    sa.Column("value", sa.Double(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# Lineage: per step, each dataset it read (`input`) or wrote (`output`), named as OpenLineage
# names it, with its schema and, for outputs, where each column came from. Pruned by the
# `lineage` retention.
lineage = sa.Table(
    "lineage",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(255), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("step_id", sa.String(64), nullable=False),
    sa.Column("object", sa.String(255), nullable=False),
    sa.Column("job", sa.String(255), nullable=False),
    sa.Column("step", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("namespace", sa.Text(), nullable=False),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("fields", sa.JSON(), nullable=False),
    sa.Column("column_lineage", sa.JSON()),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Index("ix_lineage_project_object", "project", "object"),
    sa.Index("ix_lineage_step_id", "step_id"),
    sa.Index("ix_lineage_at", "at"),
)

# Push alerts (observe/alert_state.py): the state of each rule's key, shared by every process
# that alerts (a run, `penstock slo --check`, the scheduler), and the history of what was sent
# or held back. Pruned with the logs (retention kind `logs`); a key still firing is kept.
alert_state = sa.Table(
    "alert_state",
    metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("rule", sa.String(255), primary_key=True),
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("object", sa.String(255)),
    sa.Column("firing", sa.Boolean(), nullable=False),
    sa.Column("since", UTCDateTime()),
    sa.Column("last_seen_at", UTCDateTime(), nullable=False),
    sa.Column("last_alert_at", UTCDateTime()),
    sa.Column("last_message", sa.String(16)),
    sa.Column("fingerprint", sa.String(512)),
    sa.Column("held_back", sa.Integer(), nullable=False),
    sa.Column("summary", sa.Text()),
    sa.Column("version", sa.Integer(), nullable=False),
)

alert_log = sa.Table(
    "alert_log",
    metadata,
    sa.Column("id", _BigId, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(255), nullable=False),
    sa.Column("rule", sa.String(255), nullable=False),
    sa.Column("key", sa.String(512), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("object", sa.String(255)),
    sa.Column("run_id", sa.String(64)),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16)),
    sa.Column("title", sa.Text()),
    sa.Column("delivered", sa.Integer(), nullable=False),
    sa.Column("failed", sa.Integer(), nullable=False),
    sa.Column("error", sa.Text()),
    sa.Index("ix_alert_log_project_at", "project", "at"),
)

# Leases (observe/leases.py, engine/lease.py): who holds a named piece of work of a project
# (`project` while a run or rebuild writes the warehouse, `scheduler` for the active
# `penstock schedule`), until when. One row per held lease: released leases are deleted, and
# long-expired ones (a holder that died on another host) are pruned with the runs.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("holder_id", sa.String(64), nullable=False),
    sa.Column("command", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(64)),
    sa.Column("pid", sa.Integer(), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("acquired_at", UTCDateTime(), nullable=False),
    sa.Column("renewed_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)

# The scheduler's memory (observe/schedule_state.py): per object, the last schedule tick it
# dealt with (ran, or skipped under `catchup: none`), and the run that tick started. One row
# per project and object; rows of objects no longer in the project are pruned.
schedule_state = sa.Table(
    "schedule_state",
    metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("object", sa.String(255), primary_key=True),
    sa.Column("last_tick", UTCDateTime(), nullable=False),
    sa.Column("last_run_id", sa.String(64)),
    sa.Column("last_status", sa.String(16), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# ---- what the quality sink records (observe/dq.py): scores, metric history, anomalies ----


def _batch_columns() -> list[sa.Column[Any]]:
    """The columns that place a quality row: its id, then the batch it measures (`batch_time`
    is the batch's own time, its extraction time) and the run that loaded it. Each table gets
    new Column objects (SQLAlchemy binds a column to one table)."""
    return [
        sa.Column("id", _BigId, primary_key=True, autoincrement=True),
        sa.Column("project", sa.String(255), nullable=False),
        sa.Column("object", sa.String(255), nullable=False),
        sa.Column("batch_id", sa.String(255), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("batch_time", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
    ]


# One row per batch and dimension, plus its weighted `total` (quality/scores.py). A batch
# loaded again (a rebuild) replaces its rows. Pruned by the `dq_results` retention.
dq_results = sa.Table(
    "dq_results",
    metadata,
    *_batch_columns(),
    sa.Column("dimension", sa.String(32), nullable=False),
    sa.Column("rows_checked", sa.BigInteger(), nullable=False),
    sa.Column("rows_failed", sa.BigInteger(), nullable=False),
    sa.Column("score", sa.Double()),  # NULL: no row checked
    sa.Column("measured_at", UTCDateTime(), nullable=False),
    sa.Index("ix_dq_results_object", "project", "object", "batch_time"),
    # a batch loaded again replaces its rows: found by all three, or SQLite picks the index
    # above and scans the object's history for every batch
    sa.Index("ix_dq_results_batch_key", "batch_id", "project", "object"),
)

# The per-batch history of each checkpoint metric, keyed by the batch's own time (then its
# file and id), which control limits are computed over. `anomalous`: the point left its
# limits, and is kept out of later training windows. Pruned by the `dq_results` retention.
dq_metrics = sa.Table(
    "dq_metrics",
    metadata,
    *_batch_columns(),
    sa.Column("metric", sa.String(255), nullable=False),
    sa.Column("value", sa.Double(), nullable=False),
    sa.Column("anomalous", sa.Boolean(), nullable=False, default=False),
    sa.Column("measured_at", UTCDateTime(), nullable=False),
    sa.Index("ix_dq_metrics_object_time", "project", "object", "batch_time"),
    # a batch loaded again replaces its rows: found by all three, or SQLite picks the index
    # above and scans the object's history for every batch
    sa.Index("ix_dq_metrics_batch_key", "batch_id", "project", "object"),
)

# A metric of a batch outside its control limits (and the `anomaly` event sent for it).
dq_anomalies = sa.Table(
    "dq_anomalies",
    metadata,
    *_batch_columns(),
    sa.Column("metric", sa.String(255), nullable=False),
    sa.Column("value", sa.Double(), nullable=False),
    sa.Column("expected", sa.Double(), nullable=False),
    sa.Column("lower", sa.Double(), nullable=False),
    sa.Column("upper", sa.Double(), nullable=False),
    sa.Column("points", sa.Integer(), nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),  # spike | drop
    sa.Column("detected_at", UTCDateTime(), nullable=False),
    sa.Index("ix_dq_anomalies_object", "project", "object", "batch_time"),
    sa.Index("ix_dq_anomalies_batch_key", "batch_id", "project", "object"),
)

# Every schema an object's staged batches were observed with (quality/drift.py), once each,
# with the batch it was first seen in and how it differs from the contract then: written from
# `schema_version` events; `penstock schema OBJECT` lists them. It grows with the sources'
# schema changes, not with runs: no retention.
schema_versions = sa.Table(
    "schema_versions",
    metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("object", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("batch_id", sa.String(255), nullable=False),
    sa.Column("source_file", sa.Text(), nullable=False),
    sa.Column("extracted_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.Column("columns", sa.JSON(), nullable=False),  # [[name, observed type], ...] in file order
    sa.Column("new_columns", sa.JSON(), nullable=False),
    sa.Column("missing_columns", sa.JSON(), nullable=False),
    sa.Column("type_changes", sa.JSON(), nullable=False),  # {column: [declared, observed]}
    sa.Column("policy", sa.JSON(), nullable=False),
)

# When retention last deleted a project's old records, and under which periods
# (observe/retention.py: a run collects at most once every `COLLECT_EVERY`, at once when the
# periods change). One row per project: no retention.
retention_state = sa.Table(
    "retention_state",
    metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("periods", sa.Text(), nullable=False),  # e.g. runs=7776000000000,logs=...
    sa.Column("collected_at", UTCDateTime(), nullable=False),
)

# Up to which load time every ledger load of a project was found in the store (or recorded
# from the ledger) when a session opened (MetadataStore.reconcile_loads): the next session
# checks the loads after it (less a margin), not the whole retention window again. One row
# per project: no retention.
ledger_checks = sa.Table(
    "ledger_checks",
    metadata,
    sa.Column("project", sa.String(255), primary_key=True),
    sa.Column("checked_through", UTCDateTime(), nullable=False),
)
