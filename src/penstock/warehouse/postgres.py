"""The PostgreSQL warehouse adapter.

Validation runs in an embedded, in-memory DuckDB (`conn`, as for the DuckDB warehouse); this
adapter loads what it validated. A chunk's quarantine rows, its data and its ledger rows commit
in one PostgreSQL transaction; a batch whose id is already in the ledger is skipped, so a batch
loads at most once, and a process killed mid-load leaves neither data nor ledger row (the
server rolls the open transaction back when the connection drops).

Rows move by COPY (`postgres_copy`): an append, a replace and the first load of a merge table
go straight into the table; every other merge and SCD2 load stages the chunk's rows in a temp
table and applies the mode's SQL there (`postgres_modes`).
"""

from __future__ import annotations

import contextlib
import copy
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import psycopg

from penstock.catalog import ObjectSpec
from penstock.errors import WarehouseError, first_line
from penstock.faults import fault_point
from penstock.lake.read import SEQ
from penstock.quality.validate import ChunkValidation
from penstock.sql import ident, idents, literal, qualified
from penstock.warehouse.base import LoadResult, ReleaseLoad
from penstock.warehouse.duckdb_chunk_base import ChunkBatch
from penstock.warehouse.duckdb_mode_sql import ModeCounts, row_hash_sql, valid_from_sql
from penstock.warehouse.duckdb_tables import LEDGER_COLUMNS, ledger_rows
from penstock.warehouse.partition_ledger import (
    PARTITION_COLUMNS,
    PARTITIONS_TABLE,
    PartitionReplace,
    read_partitions,
    record_partition,
    replace_partition,
)
from penstock.warehouse.postgres_copy import copy_rows
from penstock.warehouse.postgres_modes import Target, apply_staged
from penstock.warehouse.postgres_quarantine import PostgresReads, TableCopier
from penstock.warehouse.postgres_tables import (
    QUARANTINE_DUCKDB_TYPES,
    PgConnection,
    Schemas,
    check_identifiers,
    check_load_spec,
    column_types,
    ensure_key_index,
    ensure_ledger,
    ensure_object_tables,
    existing_columns,
    forget_load_spec,
    has_rows,
    quarantine_columns,
    typed_columns,
)
from penstock.warehouse.postgres_url import PostgresTarget, parse_postgres_url
from penstock.warehouse.quarantine_files import write_quarantine_file
from penstock.warehouse.release_sql import (
    drop_released_sql,
    ledger_update_sql,
    ledger_updates,
    new_reasons_sql,
)

# the embedded DuckDB validates; it spills past this to a temp directory of its own
DEFAULT_SETTINGS = {"memory_limit": "1GB"}
STAGE_SEQ = "__penstock_seq"  # the batch's place among the chunk's batches being loaded
MIN_SERVER_VERSION = 150000  # MERGE
LOAD_MEMORY = "256MB"  # per load session: work_mem, maintenance_work_mem, temp_buffers


class PostgresWarehouse(PostgresReads):
    engine: ClassVar[str] = "postgresql"
    supports_merge: ClassVar[bool] = True
    supports_transactional_ddl: ClassVar[bool] = True

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        """Connect (and, unless `read_only`, create the ledger's tables)."""
        target = parse_postgres_url(url)
        self.target: PostgresTarget = target
        self.schema = target.schema
        self.schemas = Schemas.of(target.schema)
        self.pg: PgConnection = connect_postgres(target)
        self._scratch = Path(tempfile.mkdtemp(prefix="penstock-duckdb-"))
        try:
            self.conn = duckdb.connect(
                ":memory:", config={**DEFAULT_SETTINGS, "temp_directory": str(self._scratch)}
            )
            self.conn.execute("SET TimeZone = 'UTC'")
            self.conn.execute("SET enable_progress_bar = false")
            if not read_only:
                with self._failing("preparing the ledger"), self.pg.transaction():
                    ensure_ledger(self.pg, self.schemas)
        except BaseException:
            self.close()
            raise

    def for_worker(self) -> PostgresWarehouse:
        """This warehouse for a worker thread (engine/parallel.py): its own server
        connection and its own cursor of the embedded DuckDB; `close_worker` closes them."""
        view = copy.copy(self)
        view.pg = connect_postgres(self.target)
        view.conn = self.conn.cursor()
        view.conn.execute("SET TimeZone = 'UTC'")
        view.conn.execute("SET enable_progress_bar = false")
        return view

    def close_worker(self) -> None:
        with contextlib.suppress(Exception):
            self.pg.close()
        with contextlib.suppress(duckdb.Error):
            self.conn.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.pg.close()
        if hasattr(self, "conn"):
            with contextlib.suppress(duckdb.Error):
                self.conn.close()
        shutil.rmtree(self._scratch, ignore_errors=True)

    @contextlib.contextmanager
    def _failing(self, doing: str, **fields: Any) -> Iterator[None]:
        """A PostgreSQL error as a WarehouseError naming what was being done."""
        try:
            yield
        except psycopg.Error as exc:
            raise WarehouseError(
                f"{doing} in {self.target.shown} failed: {self._clean(first_line(exc))}",
                **fields,
            ) from exc

    def _clean(self, text: str) -> str:
        password = self.target.password
        return text.replace(password, "***") if password else text

    def _table(self, obj: ObjectSpec) -> str:
        return self.schemas.table(obj)

    # -- loading ------------------------------------------------------------------------
    def load_chunk(
        self,
        obj: ObjectSpec,
        chunk: ChunkValidation,
        *,
        run_id: str,
        loaded_at: Sequence[datetime],
        replacing: PartitionReplace | None = None,
    ) -> list[LoadResult]:
        """Load a validated chunk of batches in one transaction: each batch's quarantine rows,
        its data (applied in the chunk's order) and its ledger row. A batch already in the
        ledger is skipped (`LoadResult.skipped`). With `replacing`, the partition's rows go
        first and its partition row is written last, in the same transaction
        (warehouse/partition_ledger.py)."""
        ids = [b.batch_id for b in chunk.batches]
        check_identifiers(obj, self.schemas)
        doing = (
            f"loading batch {ids[0]}"
            + (f" and {len(ids) - 1} more" if len(ids) > 1 else "")
            + f" into {obj.table_name}"
        )
        counts: dict[int, ModeCounts] = {}
        with self._failing(doing, object=obj.name, batch_id=ids[0]), self.pg.transaction():
            # one load of an object at a time, whichever process runs it
            self.pg.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"penstock:{obj.name}"])
            if replacing is not None:
                self._replace_partition(obj, replacing, ids)
            already = {
                str(r[0])
                for r in self.pg.execute(
                    f"SELECT batch_id FROM {self.schemas.loads} WHERE batch_id = ANY(%s)", [ids]
                ).fetchall()
            }
            if len(already) < len(ids):
                check_load_spec(self.pg, obj, self.schemas)
                ensure_object_tables(self.pg, obj, self.schemas)
                seqs = [s for s, i in enumerate(ids, 1) if i not in already]
                self._insert_quarantine(obj, chunk, seqs)
                counts = self._apply_modes(obj, chunk, seqs, loaded_at)
                ensure_key_index(self.pg, obj, self.schemas)
                self._insert_ledger(obj, chunk, counts, run_id, loaded_at)
                if replacing is not None:
                    record_partition(
                        self.pg.execute,
                        object_name=obj.name,
                        partitions=self._partitions,
                        replacing=replacing,
                        batch_ids=ids,
                        rows_loaded=sum(v.rows_loaded for v in chunk.results),
                        rows_quarantined=sum(v.rows_quarantined for v in chunk.results),
                        run_id=run_id,
                        loaded_at=max(loaded_at).astimezone(UTC),
                    )
                fault_point("inside_load_transaction")
        results = []
        for seq, batch_id in enumerate(ids, 1):
            if seq not in counts:
                results.append(LoadResult(batch_id, skipped=True))
                continue
            c = counts[seq]
            results.append(
                LoadResult(
                    batch_id,
                    skipped=False,
                    rows_inserted=c.inserted,
                    rows_updated=c.updated,
                    rows_unchanged=c.unchanged,
                    rows_stale=c.stale,
                    loaded_at=loaded_at[seq - 1],
                    kept_previous=c.kept_previous,
                )
            )
        return results

    @property
    def _partitions(self) -> str:
        return qualified(self.schemas.ledger, PARTITIONS_TABLE)

    def _replace_partition(
        self, obj: ObjectSpec, replacing: PartitionReplace, batch_ids: Sequence[str]
    ) -> None:
        quarantine = self.schemas.quarantine_table(obj)
        replace_partition(
            self.pg.execute,
            object_name=obj.name,
            table=self._table(obj) if self._exists(self.schemas.data, obj.table_name) else None,
            quarantine=quarantine if self._exists(self.schemas.quarantine, obj.name) else None,
            ledger=self.schemas.loads,
            partitions=self._partitions,
            replacing=replacing,
            batch_ids=batch_ids,
        )

    def _exists(self, schema: str, table: str) -> bool:
        return bool(existing_columns(self.pg, schema, table))

    def clear_partition(self, obj: ObjectSpec, replacing: PartitionReplace, run_id: str) -> None:
        """A partition the source holds nothing for: its rows go, it is recorded empty."""
        doing = f"clearing {obj.name} {replacing.key}"
        with self._failing(doing, object=obj.name), self.pg.transaction():
            self._replace_partition(obj, replacing, [])
            record_partition(
                self.pg.execute,
                object_name=obj.name,
                partitions=self._partitions,
                replacing=replacing,
                batch_ids=[],
                rows_loaded=0,
                rows_quarantined=0,
                run_id=run_id,
                loaded_at=datetime.now(UTC),
            )

    def partitions(self, object_name: str) -> dict[str, dict[str, Any]]:
        """The object's recorded partitions by key."""
        if not self._exists(self.schemas.ledger, PARTITIONS_TABLE):
            return {}
        rows = self.pg.execute(
            f"SELECT {PARTITION_COLUMNS} FROM {self._partitions} WHERE object = %s "
            "ORDER BY partition_key",
            [object_name],
        ).fetchall()
        return read_partitions(rows)

    def _insert_quarantine(self, obj: ObjectSpec, chunk: ChunkValidation, seqs: list[int]) -> None:
        if not any(chunk.results[s - 1].rows_recorded for s in seqs):
            return
        have = {
            str(r[0]) for r in self.conn.execute(f"DESCRIBE {chunk.quarantine_table}").fetchall()
        }
        ids = ", ".join(literal(b.batch_id) for b in chunk.batches)
        values = []
        # binary COPY takes each value's bytes as the column's type: cast to exactly it
        for column, kind in quarantine_columns(obj):
            value = ident(column) if column in have else "NULL"
            if column == "_batch_id":
                value = f"list_extract([{ids}], {SEQ})"
            values.append(f"CAST({value} AS {QUARANTINE_DUCKDB_TYPES[kind]})")
        names = [c for c, _ in quarantine_columns(obj)]
        copy_rows(
            self.conn,
            self.pg,
            f"SELECT {', '.join(values)} FROM {chunk.quarantine_table} "
            f"WHERE {SEQ} IN ({', '.join(map(str, seqs))}) ORDER BY {SEQ}, _row_number",
            self.schemas.quarantine_table(obj),
            names,
        )

    def _apply_modes(
        self,
        obj: ObjectSpec,
        chunk: ChunkValidation,
        seqs: list[int],
        loaded_at: Sequence[datetime],
    ) -> dict[int, ModeCounts]:
        """The batches `seqs` of the chunk, applied in order; their counts by seq."""
        batches = [
            ChunkBatch(
                seq=k,
                batch_id=chunk.batches[seq - 1].batch_id,
                extracted_at=chunk.batches[seq - 1].manifest.extracted_at,
                loaded_at=loaded_at[seq - 1],
                rows_loaded=chunk.results[seq - 1].rows_loaded,
            )
            for k, seq in enumerate(seqs, 1)
        ]
        by_k = {b.seq: seq for b, seq in zip(batches, seqs, strict=True)}
        rows = self._rows_per_batch(chunk, seqs)
        counts = self._direct(obj, chunk, batches, by_k, rows, loaded_at)
        if counts is None:
            counts = self._staged(obj, chunk, batches, by_k)
        return {by_k[b.seq]: c for b, c in zip(batches, counts, strict=True)}

    def _rows_per_batch(self, chunk: ChunkValidation, seqs: list[int]) -> dict[int, int]:
        found = self.conn.execute(
            f"SELECT {SEQ}, count(*) FROM {chunk.load_table} "
            f"WHERE {SEQ} IN ({', '.join(map(str, seqs))}) GROUP BY ALL"
        ).fetchall()
        return {int(s): int(n) for s, n in found}

    def _direct(
        self,
        obj: ObjectSpec,
        chunk: ChunkValidation,
        batches: list[ChunkBatch],
        by_k: Mapping[int, int],
        rows: Mapping[int, int],
        loaded_at: Sequence[datetime],
    ) -> list[ModeCounts] | None:
        """The loads that insert the rows as they come, copied straight into the table:
        append; replace (the chunk's last snapshot with rows; the earlier are counted, never
        written); merge of one batch into an empty table. None for the others."""
        table = self._table(obj)
        if obj.load == "append":
            self._copy_into_table(obj, chunk, [by_k[b.seq] for b in batches], loaded_at)
            return [ModeCounts(inserted=rows.get(by_k[b.seq], 0)) for b in batches]
        if obj.load == "replace":
            snapshots = [b for b in batches if b.rows_loaded > 0]
            counts = [
                ModeCounts(inserted=rows.get(by_k[b.seq], 0))
                if b.rows_loaded > 0
                else ModeCounts(kept_previous=True)
                for b in batches
            ]
            if snapshots:
                self.pg.execute(f"DELETE FROM {table}")
                self._copy_into_table(obj, chunk, [by_k[snapshots[-1].seq]], loaded_at)
            return counts
        if (
            obj.load == "merge"
            and len(batches) == 1
            and not has_rows(self.pg, self.schema, obj.table_name)
        ):
            (batch,) = batches
            self._copy_into_table(obj, chunk, [by_k[batch.seq]], loaded_at)
            return [ModeCounts(inserted=rows.get(by_k[batch.seq], 0))]
        return None

    def _copy_into_table(
        self,
        obj: ObjectSpec,
        chunk: ChunkValidation,
        seqs: list[int],
        loaded_at: Sequence[datetime],
    ) -> None:
        """The rows of the chunk's batches `seqs`, each with its batch's id and load time
        (the wall time, its zone dropped, as DuckDB writes it)."""
        ids = ", ".join(literal(b.batch_id) for b in chunk.batches)
        times = ", ".join(literal(t.replace(tzinfo=None)) for t in loaded_at)
        cols = list(column_types(obj))
        select = (
            f"SELECT {typed_columns(obj, '')}, list_extract([{ids}], {SEQ}) AS _batch_id, "
            f"list_extract([{times}], {SEQ}) AS _loaded_at FROM {chunk.load_table} "
            f"WHERE {SEQ} IN ({', '.join(map(str, seqs))})"
        )
        copy_rows(self.conn, self.pg, select, self._table(obj), [*cols, "_batch_id", "_loaded_at"])

    def _staged(
        self,
        obj: ObjectSpec,
        chunk: ChunkValidation,
        batches: list[ChunkBatch],
        by_k: Mapping[int, int],
    ) -> list[ModeCounts]:
        """Copy the chunk's rows into a temp table; apply the mode there, batch by batch."""
        types = column_types(obj)
        stage = ident(f"__penstock_stage_{uuid.uuid4().hex[:12]}")
        extra: list[tuple[str, str, str]] = []  # (name, PostgreSQL type, DuckDB expression)
        if obj.load == "scd2":
            extracted = ", ".join(
                literal(b.manifest.extracted_at.replace(tzinfo=None)) for b in chunk.batches
            )
            start = valid_from_sql(obj, "s", f"list_extract([{extracted}], s.{SEQ})")
            extra = [
                ("_row_hash", "text", row_hash_sql(obj, "s")),
                ("_valid_from", "timestamp", start),
            ]
        body = ", ".join(
            [f"{ident(c)} {t}" for c, t in types.items()]
            + [f"{ident(STAGE_SEQ)} integer"]
            + [f"{ident(n)} {t}" for n, t, _ in extra]
        )
        self.pg.execute(f"CREATE TEMP TABLE {stage} ({body}) ON COMMIT DROP")
        numbered = ", ".join(str(by_k[b.seq]) for b in batches)
        select = (
            f"SELECT {typed_columns(obj, 's.')}, "
            f"CAST(list_position([{numbered}], s.{SEQ}) AS INTEGER)"
            + "".join(f", {expr}" for _, _, expr in extra)
            + f" FROM {chunk.load_table} s WHERE s.{SEQ} IN ({numbered})"
        )
        copy_rows(self.conn, self.pg, select, stage, [*types, STAGE_SEQ, *(n for n, _, _ in extra)])
        self.pg.execute(f"ANALYZE {stage}")
        target = Target(
            self.schema,
            self._table(obj),
            frozenset(c for c, t in types.items() if t == "json"),
        )
        counts = apply_staged(self.pg, obj, target, stage, batches)
        self.pg.execute(f"DROP TABLE {stage}")
        return counts

    def _insert_ledger(
        self,
        obj: ObjectSpec,
        chunk: ChunkValidation,
        counts: dict[int, ModeCounts],
        run_id: str,
        loaded_at: Sequence[datetime],
    ) -> None:
        rows = ledger_rows(obj, chunk, counts, run_id, loaded_at)
        marks = ", ".join(["%s"] * len(LEDGER_COLUMNS))
        with self.pg.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {self.schemas.loads} ({idents(LEDGER_COLUMNS)}) VALUES ({marks})",
                rows,
            )

    def write_quarantine_file(
        self, chunk: ChunkValidation, seqs: Sequence[int], target: Path
    ) -> None:
        """The chunk's quarantine rows of batches `seqs` as one Parquet file in the lake."""
        write_quarantine_file(self.conn, chunk, seqs, target)

    # -- release ------------------------------------------------------------------------
    def stored_versions(self, obj: ObjectSpec, columns: Sequence[str], into: str) -> bool:
        """A temp table `into` of the embedded DuckDB: `columns` and `_batch_id` of the object
        table's rows (distinct), copied from PostgreSQL; False when the table does not exist."""
        if not existing_columns(self.pg, self.schema, obj.table_name):
            return False
        types = {c: obj.columns[c].stored_duckdb_type for c in columns}
        self.conn.execute(f"DROP TABLE IF EXISTS {ident(into)}")
        with tempfile.TemporaryDirectory(dir=self._scratch) as tmp:
            TableCopier(self.pg, self.conn, Path(tmp)).table(
                f"SELECT DISTINCT {idents([*columns, '_batch_id'])} FROM {self._table(obj)}",
                ident(into),  # the embedded DuckDB is in memory: a table of its own
                [*types.items(), ("_batch_id", "VARCHAR")],
            )
        return True

    def release_rows(self, obj: ObjectSpec, release: ReleaseLoad) -> dict[str, ModeCounts]:
        """Load released quarantine rows in one transaction (`DuckDBWarehouse.release_rows`)."""
        chunk = release.chunk
        seqs = list(range(1, len(chunk.batches) + 1))
        check_identifiers(obj, self.schemas)
        q = self.schemas.quarantine_table(obj)
        done = ident(f"__penstock_released_{uuid.uuid4().hex[:12]}")
        kept = ident(f"__penstock_failing_{uuid.uuid4().hex[:12]}")
        doing = f"releasing quarantined rows into {obj.table_name}"
        with self._failing(doing, object=obj.name), self.pg.transaction():
            self.pg.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"penstock:{obj.name}"])
            counts = self._apply_modes(obj, chunk, seqs, release.loaded_at)
            self.pg.execute(
                f"CREATE TEMP TABLE {done} (batch_id text, row_number bigint) ON COMMIT DROP"
            )
            copy_rows(
                self.conn,
                self.pg,
                f"SELECT batch_id::VARCHAR, row_number::BIGINT FROM {ident(release.released)}",
                done,
                ["batch_id", "row_number"],
            )
            self.pg.execute(drop_released_sql(q, done))
            self.pg.execute(
                f"CREATE TEMP TABLE {kept} (batch_id text, row_number bigint, reasons text[]) "
                "ON COMMIT DROP"
            )
            copy_rows(
                self.conn,
                self.pg,
                f"SELECT batch_id::VARCHAR, row_number::BIGINT, reasons::VARCHAR[] "
                f"FROM {ident(release.failing)}",
                kept,
                ["batch_id", "row_number", "reasons"],
            )
            self.pg.execute(new_reasons_sql(q, kept))
            by_batch = {chunk.batches[s - 1].batch_id: c for s, c in counts.items()}
            with self.pg.cursor() as cur:
                cur.executemany(
                    ledger_update_sql(self.schemas.loads, "%s"), ledger_updates(release, by_batch)
                )
            fault_point("inside_release_transaction")
        return by_batch

    # -- rebuild ------------------------------------------------------------------------
    def reset_object(self, obj: ObjectSpec) -> dict[str, datetime]:
        """Drop the object's tables and ledger rows (keeping each batch's original load time
        in `penstock.replayed_loads`, in the same transaction); return those load times."""
        with self._failing(f"resetting {obj.name}", object=obj.name), self.pg.transaction():
            self.pg.execute(
                f"INSERT INTO {self.schemas.replayed} (batch_id, object, loaded_at) "
                f"SELECT batch_id, object, loaded_at FROM {self.schemas.loads} WHERE object = %s "
                f"ON CONFLICT (batch_id) DO UPDATE SET object = excluded.object, "
                f"loaded_at = excluded.loaded_at",
                [obj.name],
            )
            self.pg.execute(f"DROP TABLE IF EXISTS {self._table(obj)}")
            self.pg.execute(f"DROP TABLE IF EXISTS {self.schemas.quarantine_table(obj)}")
            self.pg.execute(f"DELETE FROM {self.schemas.loads} WHERE object = %s", [obj.name])
            forget_load_spec(self.pg, self.schemas, obj.name)
            fault_point("inside_reset")
        return self.original_load_times(obj)


def connect_postgres(target: PostgresTarget) -> PgConnection:
    """An autocommit connection (loads open their own transactions) in UTC, ISO dates."""
    try:
        conn: PgConnection = psycopg.connect(
            target.conninfo, autocommit=True, connect_timeout=10, client_encoding="utf8"
        )
    except psycopg.Error as exc:
        text = first_line(exc)
        if target.password:
            text = text.replace(target.password, "***")
        raise WarehouseError(
            f"cannot connect to the PostgreSQL warehouse {target.shown}: {text}",
            url=target.shown,
        ) from exc
    if conn.info.server_version < MIN_SERVER_VERSION:
        version = conn.info.server_version
        conn.close()
        raise WarehouseError(
            f"the PostgreSQL warehouse {target.shown} runs PostgreSQL {version // 10000}; "
            f"penstock needs 15 or later (merge loads use MERGE)",
            url=target.shown,
        )
    conn.execute("SET TIME ZONE 'UTC'")
    conn.execute("SET DateStyle = 'ISO, YMD'")
    # a load's joins, sorts and temp tables work in memory up to this (the server defaults,
    # 4MB / 8MB, spill a 2M-row merge to disk); temp_buffers only counts before the session's
    # first temp table
    conn.execute(f"SET temp_buffers = '{LOAD_MEMORY}'")
    conn.execute(f"SET work_mem = '{LOAD_MEMORY}'")
    conn.execute(f"SET maintenance_work_mem = '{LOAD_MEMORY}'")
    return conn


__all__ = ["PostgresWarehouse", "existing_columns"]
