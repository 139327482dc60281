"""The database source kinds (`postgres`, `mysql`): plan a window, read it as Arrow into the
stage zone's Parquet (lake/arrow_stage.py), describe it as a manifest.

One extraction is one window (sources/window.py). Its rows are read in record batches and
written as they arrive (memory holds a few batches); with `partitions: N` the window is
split into N ranges of the integer key, each read on its own connection and thread into its
own part (rows whose key is NULL go with the last range, so none is dropped). Rows are read
in `cursor, key` order (key order without a cursor), so the same rows are the same bytes.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from penstock.catalog import ObjectSpec, Project
from penstock.catalog.batch_checks import ReconcileCheck
from penstock.catalog.database import DatabaseSource
from penstock.catalog.files_source import duration_seconds
from penstock.catalog.tls import TlsPlan, plan_tls
from penstock.errors import PenstockError, SourceError, TransientError
from penstock.faults import fault_point
from penstock.lake import Lake, Manifest, SeenFile, StagedBatch
from penstock.lake.arrow_stage import StagedParts, finish_parts, part_path, write_part
from penstock.lake.stage import FileKey
from penstock.sources.base import Discovery
from penstock.sources.db_driver import DbColumn, DbConnection, DbDialect, source_error
from penstock.sources.db_tls import tls_error
from penstock.sources.window import (
    Window,
    last_batch,
    read_identity,
    repeats,
    window_batch_id,
    window_of,
)

FORMAT = "arrow"  # a manifest's format for rows read from a database


def connect(kind: str, url: str, tls: TlsPlan) -> DbConnection:
    if kind == "postgres":
        from penstock.sources.postgres import PostgresConnection

        return PostgresConnection(url, tls)
    from penstock.sources.mysql import MysqlConnection

    return MysqlConnection(url, tls)


def dialect_for(kind: str) -> DbDialect:
    if kind == "postgres":
        from penstock.sources.postgres import PostgresDialect

        return PostgresDialect()
    from penstock.sources.mysql import MysqlDialect

    return MysqlDialect()


@dataclass(frozen=True)
class Served:
    """The server a window was read from: `index` 0 is the primary, n the n-th `failover:`
    URL; `passed` holds why each server before it was passed over."""

    index: int
    url: str
    display: str
    passed: tuple[str, ...] = ()

    @property
    def failover(self) -> bool:
        return self.index > 0

    def describe(self) -> str:
        why = "; ".join(self.passed)
        return f"read from failover server {self.index} ({self.display}): {why}"


@dataclass(frozen=True)
class Extracted:
    """A window staged: the batch (new, or the one already staged for the same window and
    rows: `duplicate`), and the server that served it."""

    batch: StagedBatch
    duplicate: bool
    window: Window
    served: Served


class DatabaseSourceReader:
    """Reads the tables and queries of one database source."""

    cannot_restage: ClassVar[str | None] = (
        "a database window is staged as typed rows, not as a file to parse again"
    )

    def __init__(self, project: Project, name: str, spec: DatabaseSource) -> None:
        self.name = name
        self.spec = spec
        self.dialect = dialect_for(spec.kind)
        self.display = spec.display()
        self.root = project.root
        self.reached_s: float | None = None  # how long the first connection took

    # -- the Source protocol's file-facing part: a database offers no files ------------------
    def discover(self, obj: ObjectSpec, known: Mapping[FileKey, SeenFile]) -> Discovery:
        return Discovery()

    def locate(self, obj: ObjectSpec, batch: StagedBatch) -> None:
        return None

    def read_settings(self, obj: ObjectSpec) -> str:
        return read_identity(self.name, self.relation(obj), obj.cursor)

    # -- reading -----------------------------------------------------------------------------
    def relation(self, obj: ObjectSpec) -> str:
        if obj.table is not None:
            return ".".join(self.dialect.quote(p) for p in obj.table.split("."))
        assert obj.query is not None
        return f"({obj.query.strip().rstrip(';')})"

    def describe(self, obj: ObjectSpec) -> str:
        """What the object reads, for logs and manifests (no credentials)."""
        return f"{self.name}:{obj.table}" if obj.table is not None else f"{self.name}:query"

    def connect(self, url: str | None = None) -> DbConnection:
        """A connection to the primary (or to `url`, one of the source's servers)."""
        url = self.spec.url if url is None else url
        display = self.spec.display(url)
        tls = self.tls(url)
        started = time.monotonic()
        try:
            conn = connect(self.spec.kind, url, tls)
            if self.reached_s is None:
                self.reached_s = time.monotonic() - started
            return conn
        except PenstockError as exc:
            if isinstance(exc, SourceError) and exc.fields.get("source") is None:
                raise SourceError(
                    f"source '{self.name}': cannot connect to {display}: {exc.message}",
                    source=self.name,
                ) from exc
            raise
        except Exception as exc:
            refused = tls_error(self.name, display, tls, exc)
            if refused is not None:
                raise refused from exc
            raise source_error(self.name, f"cannot connect to {display}", exc) from exc

    def tls(self, url: str) -> TlsPlan:
        """The TLS of a connection to `url` (one of the source's servers), its files checked."""
        plan = plan_tls(self.spec.kind, url, self.spec.tls, self.root)
        for key in ("ca_file", "client_cert", "client_key"):
            path = getattr(plan, key)
            if path is not None and not path.is_file():
                raise SourceError(
                    f"source '{self.name}': tls {key} is not a readable file: {path}",
                    source=self.name,
                )
        return plan

    def connect_serving(self) -> tuple[DbConnection, Served]:
        """A connection to the first of the source's servers that answers: the primary, then
        each `failover:` URL in order. Only an unreachable server (a transient error) passes
        to the next; a refused login or an unknown database fails at once. When none answers,
        the error names each server tried."""
        errors: list[str] = []
        for n, url in enumerate(self.spec.urls):
            try:
                return self.connect(url), Served(n, url, self.spec.display(url), tuple(errors))
            except TransientError as exc:
                if n + 1 == len(self.spec.urls):
                    if not errors:
                        raise
                    last = exc.message.removeprefix(f"source '{self.name}': ")
                    tried = "; ".join([*errors, last])
                    raise TransientError(
                        f"source '{self.name}': no server answers ({tried})", source=self.name
                    ) from exc
                errors.append(exc.message.removeprefix(f"source '{self.name}': "))
        raise AssertionError("a source has at least one url")

    def extract(self, obj: ObjectSpec, lake: Lake, staged: Sequence[StagedBatch]) -> Extracted:
        """Plan the object's next window, read it into a staging directory and commit it as
        a batch (or find it staged already). The watermark it advances is its manifest's."""
        read = self.read_settings(obj)
        latest = last_batch(staged, read)
        previous = window_of(latest) if latest is not None else None
        conn, served = self.connect_serving()
        try:
            columns, window = self._plan(conn, obj, read, previous)
            staging = lake.staging_dir(obj.name)
            try:
                extracted_at = datetime.now(UTC)
                parts = self._read(conn, obj, columns, window, staging, served.url)
                fault_point("after_extract")
                counted = None
                if _reconciles(obj):
                    counted = self._count(obj, columns, window, served.url)
                if latest is not None and repeats(latest, window, parts.digest):
                    shutil.rmtree(staging, ignore_errors=True)
                    return Extracted(latest, True, window, served)
                batch_id = window_batch_id(obj.name, window, parts.digest, latest)
                manifest = self._manifest(obj, batch_id, window, parts, extracted_at, counted)
                return _committed(lake, staging, manifest, window, served)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        finally:
            conn.close()

    def extract_partition(
        self, obj: ObjectSpec, lake: Lake, start: datetime, end: datetime
    ) -> Extracted:
        """Read one partition (`partition_by: {column: ...}`): the rows whose column is in
        [start, end), as a batch whose id is the partition's window and its rows' bytes (the
        same rows again are the same batch). Its window's `read` is the partition's, so it
        never moves the watermark of the object's own windows."""
        spec = obj.partition_by
        assert spec is not None and spec.column is not None
        conn, served = self.connect_serving()
        try:
            relation = self.relation(obj)
            try:
                columns = conn.columns(relation)
            except Exception as exc:
                raise source_error(self.name, f"cannot read {self.describe(obj)}", exc) from exc
            column = self._column(columns, obj, spec.column)
            q = self.dialect.quote(column.name)
            low = self.dialect.cursor_literal(start.isoformat(sep=" "), column, None)
            high = self.dialect.cursor_literal(end.isoformat(sep=" "), column, None)
            read = f"partition:{self.read_settings(obj)}"
            window = Window(read, column.name, start.isoformat(), end.isoformat())
            staging = lake.staging_dir(obj.name)
            try:
                extracted_at = datetime.now(UTC)
                path = part_path(staging, 0)
                rows = self._read_part(conn, obj, columns, [f"{q} >= {low} AND {q} < {high}"], path)
                parts = finish_parts(staging, [path], rows)
                fault_point("after_extract")
                batch_id = window_batch_id(obj.name, window, parts.digest, None)
                found = lake.staged_batch(obj.name, batch_id)
                if found is not None:
                    shutil.rmtree(staging, ignore_errors=True)
                    return Extracted(found, True, window, served)
                manifest = self._manifest(obj, batch_id, window, parts, extracted_at)
                return _committed(lake, staging, manifest, window, served)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        finally:
            conn.close()

    def _plan(
        self, conn: DbConnection, obj: ObjectSpec, read: str, previous: Window | None
    ) -> tuple[list[DbColumn], Window]:
        relation = self.relation(obj)
        try:
            columns = conn.columns(relation)
        except Exception as exc:
            raise source_error(self.name, f"cannot read {self.describe(obj)}", exc) from exc
        partitions = obj.partitions or 1
        if obj.cursor is None:
            return columns, Window(read, partitions=partitions)
        cursor = self._column(columns, obj, obj.cursor)
        q = self.dialect.quote(cursor.name)
        (high,) = self._scalars(
            conn, obj, f"SELECT {self.dialect.text(f'max({q})')} FROM {relation} AS penstock_r"
        )
        low = previous.high if previous is not None else None
        if low is not None and high is None:
            high = low  # the table was emptied: an empty window at the watermark
        return columns, Window(read, cursor.name, low, high, partitions)

    def _column(self, columns: Sequence[DbColumn], obj: ObjectSpec, name: str) -> DbColumn:
        source_name = obj.columns[name].source_name(name) if name in obj.columns else name
        for column in columns:
            if column.name == source_name:
                return column
        for column in columns:
            if column.name.lower() == source_name.lower():
                return column
        raise SourceError(
            f"source '{self.name}': {self.describe(obj)} has no column '{source_name}'",
            source=self.name,
            object=obj.name,
        )

    def _scalars(self, conn: DbConnection, obj: ObjectSpec, sql: str) -> tuple[str | None, ...]:
        try:
            return conn.scalars(sql)
        except Exception as exc:
            raise source_error(self.name, f"cannot read {self.describe(obj)}", exc) from exc

    def _conditions(
        self, obj: ObjectSpec, columns: Sequence[DbColumn], window: Window
    ) -> list[str]:
        if window.cursor is None:
            return []
        cursor = self._column(columns, obj, obj.cursor or "")
        q = self.dialect.quote(cursor.name)
        if window.high is None:  # no cursor value yet: only rows without one
            return [f"{q} IS NULL"]
        bounds = [f"{q} <= {self.dialect.cursor_literal(window.high, cursor, None)}"]
        if window.low is not None:
            low = self.dialect.cursor_literal(window.low, cursor, self._lookback(obj))
            bounds.append(f"{q} >= {low}")
        # a row without a cursor value belongs to no window: every window reads it (the key
        # makes it unchanged), so it is never silently left behind
        return [f"(({' AND '.join(bounds)}) OR {q} IS NULL)"]

    def _lookback(self, obj: ObjectSpec) -> float | None:
        if obj.lookback is None:
            return None
        if isinstance(obj.lookback, str):
            return duration_seconds(obj.lookback)
        return float(obj.lookback)

    def _select(
        self, obj: ObjectSpec, columns: Sequence[DbColumn], conditions: Sequence[str]
    ) -> str:
        listed = ", ".join(self.dialect.select_expr(c) for c in columns)
        order = [obj.cursor] if obj.cursor else []
        order += [k for k in obj.key if k != obj.cursor]
        by = ", ".join(self.dialect.quote(self._column(columns, obj, n).name) for n in order)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        ordered = f" ORDER BY {by}" if by else ""
        return f"SELECT {listed} FROM {self.relation(obj)} AS penstock_r{where}{ordered}"

    def _read(
        self,
        conn: DbConnection,
        obj: ObjectSpec,
        columns: list[DbColumn],
        window: Window,
        staging: Path,
        url: str,
    ) -> StagedParts:
        conditions = self._conditions(obj, columns, window)
        if window.partitions <= 1:
            rows = self._read_part(conn, obj, columns, conditions, part_path(staging, 0))
            return finish_parts(staging, [part_path(staging, 0)], rows)
        ranges = self._ranges(conn, obj, columns, conditions, window.partitions)
        paths = [part_path(staging, i) for i in range(len(ranges))]

        def read_range(index: int) -> int:
            mine = self.connect(url)  # the server that serves this window
            try:
                where = [*conditions, ranges[index]]
                return self._read_part(mine, obj, columns, where, paths[index])
            finally:
                mine.close()

        with ThreadPoolExecutor(len(ranges)) as pool:
            rows = sum(pool.map(read_range, range(len(ranges))))
        return finish_parts(staging, paths, rows)

    def _read_part(
        self,
        conn: DbConnection,
        obj: ObjectSpec,
        columns: list[DbColumn],
        conditions: Sequence[str],
        path: Path,
    ) -> int:
        sql = self._select(obj, columns, conditions)
        try:
            schema, batches = conn.stream(sql, self.spec.chunk_rows, columns)
            return write_part(batches, schema, path)
        except PenstockError:
            raise
        except Exception as exc:
            raise source_error(self.name, f"cannot read {self.describe(obj)}", exc) from exc

    def _count(self, obj: ObjectSpec, columns: list[DbColumn], window: Window, url: str) -> int:
        """The source's count of the window's rows, now (for a `reconcile` check): the same
        relation and conditions the rows were read with, on a connection of its own to the
        server that served them (the read's may hold the snapshot it read, which agrees with
        itself by definition)."""
        where = self._conditions(obj, columns, window)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        counting = self.connect(url)
        try:
            (found,) = self._scalars(
                counting,
                obj,
                f"SELECT {self.dialect.text('count(*)')} FROM {self.relation(obj)} "
                f"AS penstock_r{clause}",
            )
        finally:
            counting.close()
        return int(found or 0)

    def _ranges(
        self,
        conn: DbConnection,
        obj: ObjectSpec,
        columns: Sequence[DbColumn],
        conditions: Sequence[str],
        partitions: int,
    ) -> list[str]:
        """N conditions on the key that split the window; the last also takes NULL keys."""
        key = self.dialect.quote(self._column(columns, obj, obj.key[0]).name)
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        low, high = self._scalars(
            conn,
            obj,
            f"SELECT {self.dialect.text(f'min({key})')}, {self.dialect.text(f'max({key})')} "
            f"FROM {self.relation(obj)} AS penstock_r{where}",
        )
        if low is None or high is None:
            return [f"({key} IS NULL OR {key} IS NOT NULL)"]
        first, last = int(low), int(high)
        span = last - first + 1
        count = min(partitions, span)
        edges = [first + span * i // count for i in range(count)] + [last + 1]
        found = [f"{key} >= {edges[i]} AND {key} < {edges[i + 1]}" for i in range(count)]
        found[-1] = f"(({found[-1]}) OR {key} IS NULL)"
        return found

    def _manifest(
        self,
        obj: ObjectSpec,
        batch_id: str,
        window: Window,
        parts: StagedParts,
        extracted_at: datetime,
        source_rows: int | None = None,
    ) -> Manifest:
        return Manifest(
            batch_id=batch_id,
            object=obj.name,
            source=self.name,
            source_file=f"{self.describe(obj)} [{window.describe()}]",
            content_hash=parts.digest,
            size_bytes=parts.size_bytes,
            mtime_ns=0,
            format=FORMAT,
            rows=parts.rows,
            rows_malformed=0,
            columns=tuple(parts.schema),
            schema=parts.schema,
            extracted_at=extracted_at,
            data_file=parts.data_file,
            window=window.to_dict(),
            source_rows=source_rows,
        )


def _reconciles(obj: ObjectSpec) -> bool:
    return any(isinstance(c, ReconcileCheck) for c in obj.checks)


def _committed(
    lake: Lake, staging: Path, manifest: Manifest, window: Window, served: Served
) -> Extracted:
    """A window's staging directory committed as its batch (with a failover's warning), or
    the batch committed meanwhile under the same id."""
    if served.failover:
        manifest = replace(manifest, warnings=(served.describe(),))
    (batch,) = lake.commit_batches([(staging, manifest)])
    if batch is None:  # committed meanwhile under the same id
        found = lake.staged_batch(manifest.object, manifest.batch_id)
        assert found is not None
        return Extracted(found, True, window, served)
    return Extracted(batch, False, window, served)
