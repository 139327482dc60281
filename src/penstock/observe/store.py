"""The metadata store: a bus sink recording runs, steps, logs and the catalog as tables.

SQLite (`sqlite:////abs/path/metadata.db`, WAL mode) and PostgreSQL (`postgresql://...`,
driven by psycopg 3) are supported, through SQLAlchemy Core.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from penstock.errors import TerminalError, TransientError, UsageError
from penstock.observe import reads, status_reads
from penstock.observe.catalog_snapshot import CatalogSnapshot
from penstock.observe.events import (
    Event,
    LogRecord,
    ObjectCounted,
    RunFinished,
    RunStarted,
    SchemaVersionSeen,
    StepFinished,
    StepStarted,
    utcnow,
)
from penstock.observe.ledger_checks import check_from, checked_through, record_checked
from penstock.observe.reconcile import record_reconciled
from penstock.observe.records import (
    BatchAttempt,
    BatchDecision,
    LedgerLoad,
    LogRow,
    ObjectStatus,
    RunSummary,
    StepRow,
)
from penstock.observe.redaction import redact_opt
from penstock.observe.schema import (
    batch_decisions,
    catalog_attributes,
    catalog_groups,
    catalog_objects,
    catalog_sources,
    dq_anomalies,
    dq_metrics,
    dq_results,
    job_runs,
    logs,
    metadata,
    object_counts,
    project_versions,
    step_runs,
)
from penstock.observe.schema_versions import (
    SchemaVersionRow,
    read_schema_versions,
    record_schema_version,
)
from penstock.observe.status_reads import ObjectCounts
from penstock.observe.step_rows import PendingRows, finish_step, log_row, started_row

# The events the store records (`_record`); the others (batch_staged, batch_loaded, ...) are
# the other sinks': the session subscribes the store to these alone, so thousands of small
# files do not queue thousands of events the store has nothing to do with, and a delivery's
# step and log rows are not split into many statements by events it skips.
RECORDED_EVENTS: tuple[type[Event], ...] = (
    RunStarted,
    RunFinished,
    StepStarted,
    StepFinished,
    ObjectCounted,
    SchemaVersionSeen,
    LogRecord,
)


class MetadataStoreError(TerminalError):
    """The metadata store refused a write or a read (a constraint, a missing run)."""


class MetadataStoreUnavailable(TransientError):
    """The metadata store could not be reached or was locked; trying again may work."""


def engine_url(url: str) -> sa.URL:
    """Parse `url`, mapping plain `postgresql://` / `postgres://` to the psycopg 3 driver."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise UsageError(f"invalid metadata store URL: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL is corruption-safe; only the last commits may be lost on power loss
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
    finally:
        cursor.close()


_CREATE_ATTEMPTS = 8

# One writer at a time per SQLite file in this process: the queued sinks (store, quality,
# lineage, metrics) write the same file from their threads, and SQLite makes a writer that
# finds the file locked sleep in growing steps (1, 2, 5, 10 … 100 ms) before it tries again;
# waiting on a lock here wakes it the moment the other write commits. (With 500 objects'
# worth of events a run's end waited ~1.5 s on those sleeps; bench/dag_overhead.py.)
_SQLITE_WRITERS: dict[str, threading.RLock] = {}
_SQLITE_WRITERS_LOCK = threading.Lock()


def _writer_lock(url: sa.URL) -> AbstractContextManager[Any]:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return nullcontext()
    key = str(Path(url.database).resolve())
    with _SQLITE_WRITERS_LOCK:
        return _SQLITE_WRITERS.setdefault(key, threading.RLock())


class MetadataStore:
    """Records the bus events (`handle`) and the catalog; answers the read API.

    Each write is its own short transaction. Timestamps are returned timezone-aware UTC.
    """

    def __init__(self, url: str) -> None:
        parsed = engine_url(url)
        self.url = parsed
        self._writer = _writer_lock(parsed)
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self._engine = sa.create_engine(parsed)
            sa_event.listen(self._engine, "connect", _set_sqlite_pragmas)
        else:
            self._engine = sa.create_engine(parsed, pool_pre_ping=True)
        try:
            self.create()
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    def create(self) -> None:
        """Create the tables and indexes that are missing (idempotent).

        Two processes opening a new store at once (a run and a `status`) race to create it: the
        loser sees "already exists" or, on SQLite, a stale snapshot ("database is locked").
        Trying again a few times finds the tables the winner created.
        """
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                with self._engine.begin() as conn:
                    metadata.create_all(conn, checkfirst=True)
                    _add_missing(conn)
                return
            except SQLAlchemyError:
                if attempt == _CREATE_ATTEMPTS - 1:
                    with self._guard("create tables"):
                        raise
                time.sleep(0.05 * (attempt + 1))

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def writing(self, what: str) -> Iterator[sa.Connection]:
        """A connection in one transaction (committed at the end); errors as the store's
        (`what` says what was being written)."""
        with self._writer, self._guard(what), self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turn SQLAlchemy errors into penstock errors (messages redacted, URL without password)."""
        try:
            yield
        except SQLAlchemyError as exc:
            detail = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
            message = f"metadata store: cannot {what}: {detail}"
            if isinstance(exc, OperationalError):
                raise MetadataStoreUnavailable(message, url=self._safe_url()) from None
            raise MetadataStoreError(message, url=self._safe_url()) from None

    def _safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    # ---- writes -------------------------------------------------------------------------

    def handle(self, event: Event) -> None:
        """The bus sink: record one event in its own transaction."""
        what = f"record {type(event).__name__}"
        with self._writer, self._guard(what), self._engine.begin() as conn:
            self._record(conn, event)

    def handle_many(self, events: Sequence[Event]) -> None:
        """Record several events (in order) in one transaction: what a queued sink took at
        once (thousands of small files make thousands of events)."""
        with (
            self._writer,
            self._guard(f"record {len(events)} events"),
            self._engine.begin() as conn,
        ):
            pending = PendingRows()
            for event in events:
                if not isinstance(event, RECORDED_EVENTS):
                    continue  # nothing of it is recorded: the held rows need not go first
                if not pending.take(event):
                    pending.write(conn)
                    self._record(conn, event)
            pending.write(conn)

    def _record(self, conn: sa.Connection, event: Event) -> None:
        match event:
            case RunStarted():
                conn.execute(
                    job_runs.insert().values(
                        run_id=event.run_id,
                        project=event.project,
                        project_hash=event.project_hash,
                        command=event.command,
                        selector=redact_opt(event.selector),
                        status="running",
                        started_at=event.at,
                        pid=event.pid,
                        host=event.host,
                    )
                )
            case RunFinished():
                result = conn.execute(
                    job_runs.update()
                    .where(job_runs.c.run_id == event.run_id)
                    .values(status=event.status, ended_at=event.at, error=redact_opt(event.error))
                )
                if result.rowcount == 0:
                    raise MetadataStoreError(
                        f"run {event.run_id} finished but was never started",
                        run_id=event.run_id,
                    )
            case StepStarted():
                conn.execute(step_runs.insert().values(**started_row(event)))
            case StepFinished():
                finish_step(conn, event)
            case ObjectCounted():
                c = object_counts.c
                conn.execute(
                    object_counts.delete().where(
                        c.project == event.project, c.object == event.object
                    )
                )
                conn.execute(
                    object_counts.insert().values(
                        project=event.project,
                        object=event.object,
                        table_name=event.table,
                        run_id=event.run_id,
                        counted_at=event.at,
                        table_rows=event.rows,
                        batches_loaded=event.batches_loaded,
                        rows_quarantined=event.rows_quarantined,
                        rows_warned=event.rows_warned,
                        batches_rejected=event.batches_rejected,
                    )
                )
            case SchemaVersionSeen():
                record_schema_version(conn, event)
            case LogRecord():
                conn.execute(logs.insert().values(**log_row(event)))

    def record_catalog(self, snapshot: CatalogSnapshot) -> bool:
        """Write the catalog version of `snapshot.project_hash` once; False if already there."""
        h = snapshot.project_hash
        exists = sa.select(project_versions.c.project_hash).where(
            project_versions.c.project_hash == h
        )
        try:
            with self._guard("record the catalog"), self._engine.begin() as conn:
                if conn.execute(exists).first() is not None:
                    return False
                self._insert_catalog(conn, snapshot)
        except MetadataStoreError:
            # Another process may have recorded the same version in the meantime.
            with self._guard("record the catalog"), self._engine.connect() as conn:
                if conn.execute(exists).first() is not None:
                    return False
            raise
        return True

    @staticmethod
    def _insert_catalog(conn: sa.Connection, snap: CatalogSnapshot) -> None:
        h = snap.project_hash
        conn.execute(
            project_versions.insert().values(
                project_hash=h, project=snap.project, first_seen=utcnow()
            )
        )
        # snapshot field → column where the names differ (group, load, table are SQL words)
        renames = {"group": "group_name", "load": "load_mode", "table": "table_name"}
        for table, rows in (
            (catalog_sources, snap.sources),
            (catalog_objects, snap.objects),
            (catalog_attributes, snap.attributes),
        ):
            if rows:
                conn.execute(
                    table.insert(),
                    [
                        {"project_hash": h}
                        | {renames.get(k, k): _column_value(v) for k, v in asdict(row).items()}
                        for row in rows
                    ],
                )
        if snap.groups:
            conn.execute(
                catalog_groups.insert(),
                [{"project_hash": h, "name": g} for g in dict.fromkeys(snap.groups)],
            )

    def mark_abandoned(self, project: str) -> list[str]:
        """Mark the project's runs still `running` as `abandoned` (and their running steps).

        Call only while holding the project's warehouse lock: then no live process can be
        running them, so they are left over from a process that was killed.
        """
        r, s = job_runs.c, step_runs.c
        with self._guard("mark abandoned runs"), self._engine.begin() as conn:
            stale = list(
                conn.execute(
                    sa.select(r.run_id).where(r.project == project, r.status == "running")
                ).scalars()
            )
            if not stale:
                return []
            conn.execute(
                step_runs.update()
                .where(s.run_id.in_(stale), s.status == "running")
                .values(status="abandoned", error="abandoned: the process ended mid-step")
            )
            conn.execute(
                job_runs.update()
                .where(r.run_id.in_(stale))
                .values(
                    status="abandoned",
                    error="abandoned: its end was never recorded (its process was killed, "
                    "or the metadata store missed its last events); the ledger holds what "
                    "it loaded",
                )
            )
        return [str(run_id) for run_id in stale]

    def reconcile_loads(
        self,
        project: str,
        project_hash: str,
        ledger: Sequence[LedgerLoad],
        *,
        since: datetime | None = None,
    ) -> list[str]:
        """Give every ledger batch without a successful load step in the store one, marked
        `reconciled` (the store missed it: a sink failure). Returns the reconciled batch ids.
        Batches loaded before `since` (the retention cutoff: their steps may be pruned) are
        left alone.

        The step is recorded under the run the ledger names (recorded, as `reconciled`, if
        the store missed that run too); a load step of that run the store still shows as
        running or failed for the batch is corrected instead of duplicated.
        """
        if since is not None:
            ledger = [entry for entry in ledger if entry.loaded_at >= since]
        if not ledger:
            return []
        s = step_runs.c
        done: set[str] = set()
        ids = [entry.batch_id for entry in ledger]
        with self._guard("reconcile loads"), self._engine.begin() as conn:
            for i in range(0, len(ids), 500):
                done.update(
                    conn.execute(
                        sa.select(s.batch_id).where(
                            s.batch_id.in_(ids[i : i + 500]),
                            s.step == "load",
                            s.status.in_(("success", "warning")),
                        )
                    ).scalars()
                )
            missing = [entry for entry in ledger if entry.batch_id not in done]
            for entry in missing:
                record_reconciled(conn, project, project_hash, entry)
            record_checked(conn, project, max(entry.loaded_at for entry in ledger))
        return [entry.batch_id for entry in missing]

    def ledger_check_from(self, project: str, cutoff: datetime) -> datetime:
        """Where a session reads the ledger from to reconcile: the retention cutoff, or just
        before the loads the last session found complete (observe/ledger_checks.py)."""
        with self._guard("read the ledger check"), self._engine.connect() as conn:
            return check_from(cutoff, checked_through(conn, project))

    def record_batch_decision(self, project: str, decision: BatchDecision) -> None:
        """Keep a skip/unskip of a batch for audit (the lake marker is what runs honour)."""
        with self._guard("record a batch decision"), self._engine.begin() as conn:
            conn.execute(
                batch_decisions.insert().values(
                    project=project,
                    object=decision.object,
                    batch_id=decision.batch_id,
                    action=decision.action,
                    reason=redact_opt(decision.reason),
                    decided_by=decision.decided_by,
                    decided_at=decision.decided_at,
                )
            )

    def count_rejected(self, project: str, object_name: str, rejected: int) -> None:
        """Correct an object's recorded rejected count (after `penstock batches retry`)."""
        c = object_counts.c
        with self._guard("record the rejected count"), self._engine.begin() as conn:
            conn.execute(
                object_counts.update()
                .where(c.project == project, c.object == object_name)
                .values(batches_rejected=rejected)
            )

    def batch_decisions(self, object_name: str) -> dict[str, BatchDecision]:
        """The latest decision per batch of an object."""
        d = batch_decisions.c
        query = (
            sa.select(batch_decisions).where(d.object == object_name).order_by(d.decided_at, d.id)
        )
        with self._guard("read batch decisions"), self._engine.connect() as conn:
            return {
                row.batch_id: BatchDecision(
                    object=row.object,
                    batch_id=row.batch_id,
                    action=row.action,
                    reason=row.reason,
                    decided_by=row.decided_by,
                    decided_at=row.decided_at,
                )
                for row in conn.execute(query)
            }

    def batch_attempts(self, object_name: str) -> dict[str, BatchAttempt]:
        """The latest load step per batch of an object (its status and error)."""
        s = step_runs.c
        query = (
            sa.select(s.batch_id, s.run_id, s.status, s.error, s.started_at)
            .where(s.object == object_name, s.step == "load", s.batch_id.is_not(None))
            .order_by(s.started_at, s.step_id)
        )
        with self._guard("read batch attempts"), self._engine.connect() as conn:
            return {
                row.batch_id: BatchAttempt(
                    batch_id=row.batch_id,
                    run_id=row.run_id,
                    status=row.status,
                    error=row.error,
                    at=row.started_at,
                )
                for row in conn.execute(query)
            }

    # ---- reads --------------------------------------------------------------------------

    def runs(self, limit: int = 20) -> list[RunSummary]:
        """The latest `limit` runs, newest first, with their outcome and totals over their
        steps (observe/status_reads.py)."""
        with self.reading("read runs") as rows:
            return status_reads.runs(rows, limit)

    @contextmanager
    def reading(self, what: str) -> Iterator[status_reads.Rows]:
        """A query function for observe/status_reads.py on one connection; errors as the
        store's (`what` says what was being read)."""
        with self._guard(what), self._engine.connect() as conn:
            yield status_reads.sqlalchemy_rows(conn)

    def steps(self, run_id: str) -> list[StepRow]:
        """The steps of one run, in start order."""
        with self._guard("read steps"), self._engine.connect() as conn:
            return reads.steps(conn, run_id)

    def logs(self, run_id: str, level: str | None = None) -> list[LogRow]:
        """The log records of one run in emission order; `level` keeps that level and above."""
        try:
            with self._guard("read logs"), self._engine.connect() as conn:
                return reads.log_rows(conn, run_id, level)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def object_status(self, objects: Sequence[str]) -> dict[str, ObjectStatus]:
        """Where each object stands (objects never run get None/0 values)."""
        with self.reading("read object status") as rows:
            return status_reads.object_status(rows, objects)

    def schema_versions(self, project: str, object_name: str) -> list[SchemaVersionRow]:
        """The object's observed schema versions, oldest first (`penstock schema`)."""
        with self._guard("read schema versions"):
            return read_schema_versions(self._engine, project, object_name)

    def object_counts(self, project: str, objects: Sequence[str]) -> dict[str, ObjectCounts]:
        """The latest recorded warehouse counts of each object that has some."""
        with self.reading("read object counts") as rows:
            return status_reads.object_counts(rows, project, objects)

    def resolve_run(self, prefix: str) -> str:
        """The one run whose id starts with `prefix` (as `penstock runs` shows it)."""
        query = (
            sa.select(job_runs.c.run_id)
            .where(job_runs.c.run_id.startswith(prefix, autoescape=True))
            .limit(2)
        )
        with self._guard("find a run"), self._engine.connect() as conn:
            found = list(conn.execute(query).scalars())
        if len(found) != 1:
            what = "no run" if not found else "more than one run"
            raise UsageError(f"{what} has an id starting with '{prefix}'")
        return str(found[0])

    def run_selector(self, run_id: str) -> tuple[str, str | None] | None:
        """The run's command and selector, None when there is no such run."""
        query = sa.select(job_runs.c.command, job_runs.c.selector).where(
            job_runs.c.run_id == run_id
        )
        with self._guard("read a run"), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else (str(row[0]), row[1])

    def last_run_id(self) -> str | None:
        query = (
            sa.select(job_runs.c.run_id)
            .order_by(job_runs.c.started_at.desc(), job_runs.c.run_id.desc())
            .limit(1)
        )
        with self._guard("read the last run"), self._engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()


def _add_missing(conn: sa.Connection) -> None:
    """Bring a store written by an older penstock up to date: add the columns and indexes
    added since (nullable columns: old rows read NULL). Nothing else is migrated."""
    inspector = sa.inspect(conn)
    tables = (job_runs, step_runs, object_counts, logs, catalog_attributes)
    for table in (*tables, dq_results, dq_metrics, dq_anomalies):
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))
        indexed = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexed:
                index.create(conn)


def _column_value(value: Any) -> Any:
    """Tuples (an object's key) are stored as JSON lists."""
    return list(value) if isinstance(value, tuple) else value
