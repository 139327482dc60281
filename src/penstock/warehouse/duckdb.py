"""The DuckDB warehouse adapter: the embedded default.

A batch's quarantine rows, its data and its ledger row commit in one transaction; a batch
whose id is already in the ledger is skipped, so a batch loads at most once.
"""

from __future__ import annotations

import contextlib
import copy
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from penstock.catalog import ObjectSpec
from penstock.errors import WarehouseError, WarehouseLocked, first_line
from penstock.faults import fault_point
from penstock.lake.read import SEQ
from penstock.quality.validate import ChunkValidation
from penstock.sql import literal, qualified
from penstock.warehouse import duckdb_modes as modes
from penstock.warehouse.base import (
    LEDGER_SCHEMA,
    LEDGER_TABLE,
    QUARANTINE_SCHEMA,
    LoadResult,
    ReleaseLoad,
)
from penstock.warehouse.duckdb_chunk import ChunkBatch, apply_batches
from penstock.warehouse.duckdb_known import Known
from penstock.warehouse.duckdb_quarantine import read_quarantine, reason_counts
from penstock.warehouse.duckdb_tables import (
    LEDGER,
    REPLAYED,
    check_load_spec,
    described_columns,
    ensure_ledger,
    ensure_object_tables,
    existing_columns,
    forget_load_spec,
    insert_ledger,
    object_table,
    quarantine_table,
)
from penstock.warehouse.duckdb_vacuum import defer_vacuum
from penstock.warehouse.partition_ledger import (
    PARTITION_COLUMNS,
    PARTITIONS_TABLE,
    PartitionReplace,
    read_partitions,
    record_partition,
    replace_partition,
)
from penstock.warehouse.quarantine import QuarantinePage, QuarantineSelection
from penstock.warehouse.quarantine_files import write_quarantine_file

# Bounded by default: a pipeline shares the machine. DuckDB spills past it to <db>.tmp/; on
# 2M-row batches 1GB cost no speed and kept a steady-state merge at 1.1 GB RSS instead of 1.6.
# Override with the warehouse URL: duckdb:///warehouse.duckdb?memory_limit=8GB&threads=4
DEFAULT_SETTINGS = {"memory_limit": "1GB"}
# DuckDB: 'Could not set lock on file "...": Conflicting lock is held in /usr/bin/python (PID 7)'
_LOCK_HELD = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")
_LOCK_POLL_SECONDS = 0.25
PARTITIONS = qualified(LEDGER_SCHEMA, PARTITIONS_TABLE)


def open_waiting(
    path: Path | None,
    settings: Mapping[str, str] | None,
    *,
    wait: float,
    on_wait: Callable[[str], None] | None = None,
    read_only: bool = False,
) -> DuckDBWarehouse:
    """Open the warehouse (for writing, unless `read_only`); while another process holds its
    lock, retry for up to `wait` seconds (`on_wait` hears once why), then fail naming that
    process. DuckDB lets readers share the file but not with a writer: a read-only open
    waits for a run to finish, and a run waits for the readers."""
    deadline = time.monotonic() + max(wait, 0.0)
    told = False
    while True:
        try:
            return DuckDBWarehouse(path, settings, read_only=read_only)
        except WarehouseLocked as exc:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseLocked(
                    f"{exc.message}; gave up after waiting {wait:g}s: let that run finish, "
                    f"or wait longer with --wait SECONDS",
                    **exc.fields,
                ) from exc
            if not told and on_wait is not None:
                on_wait(f"{exc.message}; waiting up to {wait:g}s for it (--wait SECONDS)")
                told = True
            time.sleep(min(_LOCK_POLL_SECONDS, remaining))


class DuckDBWarehouse:
    engine: ClassVar[str] = "duckdb"
    supports_merge: ClassVar[bool] = True
    supports_transactional_ddl: ClassVar[bool] = True

    def __init__(
        self,
        path: Path | None,
        settings: Mapping[str, str] | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        """Open (and create) the warehouse; `read_only` opens an existing file for reading."""
        self.path = path
        self.in_transaction = False  # between BEGIN and COMMIT/ROLLBACK of a load or reset
        if path is not None and not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        config: dict[str, str | bool | int | float | list[str]] = {
            **DEFAULT_SETTINGS,
            **(settings or {}),
        }
        try:
            self.conn = duckdb.connect(
                str(path) if path else ":memory:", read_only=read_only, config=config
            )
        except duckdb.Error as exc:
            held = _LOCK_HELD.search(str(exc))
            if held:
                pid = int(held["pid"])
                raise WarehouseLocked(
                    f"the warehouse {path} is in use by another process: "
                    f"{held['program']} (PID {pid})",
                    file=str(path),
                    pid=pid,
                ) from exc
            raise WarehouseError(
                f"cannot open DuckDB warehouse {path}: {first_line(exc)}",
                file=str(path),
            ) from exc
        # results must not depend on the machine's time zone: TIMESTAMPTZ values are cast,
        # compared and printed in UTC; any other zone is named explicitly in the SQL
        self.conn.execute("SET TimeZone = 'UTC'")
        # DuckDB draws its own progress bar on stdout for queries over 2 s: it would garble
        # `--json` output and the run's own progress display
        self.conn.execute("SET enable_progress_bar = false")
        if not read_only:
            ensure_ledger(self.conn)
        self._written: set[tuple[str, str]] = set()  # (schema, table) loaded since opening
        # the tables there are, read once from the catalog and forgotten whenever this
        # connection may create or drop one (a load, a reset): asking whether a table exists
        # by DESCRIBE costs ~0.7 ms when it does not (DuckDB looks for a name to suggest), and
        # `status` counts ask it of every object of a run (bench/dag_overhead.py)
        # (shared with the warehouse's worker views: `for_worker`)
        self._known = Known()

    def for_worker(self) -> DuckDBWarehouse:
        """This warehouse for a worker thread (engine/parallel.py): its own connection (a
        cursor) and table caches; `close_worker` closes it."""
        view = copy.copy(self)
        view.conn = self.conn.cursor()
        view.conn.execute("SET TimeZone = 'UTC'")
        view.conn.execute("SET enable_progress_bar = false")
        return view  # it shares `_known`: a load by any view makes every view read afresh

    def close_worker(self) -> None:
        self.conn.close()

    def close(self) -> None:
        """Close the connection; its checkpoint vacuums only when a table written since
        opening needs it (duckdb_vacuum.py)."""
        with contextlib.suppress(duckdb.Error):  # then the checkpoint vacuums as usual
            defer_vacuum(self.conn, self._written, self._known.rows)
        self.conn.close()

    def _columns(self, schema: str, table: str) -> dict[str, str]:
        """A table's columns (empty when it does not exist): by DESCRIBE between
        transactions, by the catalog inside one (a missing table must not abort it)."""
        if self.in_transaction:
            return existing_columns(self.conn, schema, table)
        if not self._exists(schema, table):
            return {}
        return described_columns(self.conn, schema, table)

    def _exists(self, schema: str, table: str) -> bool:
        """Whether the table exists (outside a transaction: from the catalog read once)."""
        if self.in_transaction:
            return bool(existing_columns(self.conn, schema, table))
        known = self._known
        tables, generation = known.tables, known.generation
        if tables is None:
            rows = self.conn.execute(
                "SELECT lower(schema_name), lower(table_name) FROM duckdb_tables() "
                "WHERE NOT temporary"
            ).fetchall()
            tables = frozenset((str(a), str(b)) for a, b in rows)
            known.keep(generation, tables=tables)
        return (schema.lower(), table.lower()) in tables

    def loaded_batch_count(self, object_name: str) -> int:
        """How many of the object's batches the ledger holds (every object's counted with
        one query, kept until this connection loads or resets again)."""
        known = self._known
        counts, generation = known.batch_counts, known.generation
        if counts is None:
            if not self._exists(LEDGER_SCHEMA, LEDGER_TABLE):
                return 0
            rows = self.conn.execute(
                f"SELECT object, count(*) FROM {LEDGER} GROUP BY object"
            ).fetchall()
            counts = {str(o): int(n) for o, n in rows}
            known.keep(generation, batch_counts=counts)
        return counts.get(object_name, 0)

    # -- the ledger ---------------------------------------------------------------------
    def loaded_batches(self, object_name: str) -> set[str]:
        if not self._exists(LEDGER_SCHEMA, LEDGER_TABLE):
            return set()  # a read-only warehouse that never loaded anything
        rows = self.conn.execute(
            f"SELECT batch_id FROM {LEDGER} WHERE object = ?", [object_name]
        ).fetchall()
        return {str(r[0]) for r in rows}

    def batch_files(self, object_name: str) -> list[tuple[str, str | None]]:
        """The object's loaded batches with the source file of each, in load order."""
        if not existing_columns(self.conn, LEDGER_SCHEMA, LEDGER_TABLE):
            return []
        rows = self.conn.execute(
            f"SELECT batch_id, source_file FROM {LEDGER} WHERE object = ? "
            f"ORDER BY loaded_at, batch_id",
            [object_name],
        ).fetchall()
        return [(str(b), None if f is None else str(f)) for b, f in rows]

    def ledger(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Every ledger row (loaded at or after `since`, when given, filtered in SQL): batch,
        object, run, load time (UTC) and its row counts."""
        if not existing_columns(self.conn, LEDGER_SCHEMA, LEDGER_TABLE):
            return []
        where, params = "", list[Any]()
        if since is not None:
            # loaded_at is a naive UTC timestamp
            where = "WHERE loaded_at >= ? "
            params = [since.astimezone(UTC).replace(tzinfo=None)]
        cursor = self.conn.execute(
            f"SELECT batch_id, object, run_id, loaded_at, rows_in, rows_loaded, "
            f"rows_quarantined, rows_duplicate FROM {LEDGER} {where}ORDER BY loaded_at, batch_id",
            params,
        )
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        for row in rows:
            row["loaded_at"] = row["loaded_at"].replace(tzinfo=UTC)
        return rows

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
        its data (applied in the chunk's order, as if each batch loaded alone) and its ledger
        row. A batch already in the ledger is skipped (`LoadResult.skipped`). With
        `replacing`, the partition's rows go first and its `penstock.partitions` row is
        written last, in the same transaction (warehouse/partition_ledger.py)."""
        conn = self.conn
        batches = chunk.batches
        ids = [b.batch_id for b in batches]
        self.forget_catalog()  # the load may create tables, adds batches
        conn.execute("BEGIN TRANSACTION")
        self.in_transaction = True
        try:
            if replacing is not None:
                self._replace_partition(obj, replacing, ids)
            already = {
                str(r[0])
                for r in conn.execute(
                    f"SELECT batch_id FROM {LEDGER} WHERE batch_id IN "
                    f"(SELECT unnest(?::VARCHAR[]))",
                    [ids],
                ).fetchall()
            }
            if len(already) == len(ids):
                conn.execute("ROLLBACK")
                return [LoadResult(i, skipped=True) for i in ids]
            check_load_spec(conn, obj)
            ensure_object_tables(conn, obj)
            seqs = [s for s, i in enumerate(ids, 1) if i not in already]
            self._insert_quarantine(obj, chunk, seqs)
            counts = self.apply_modes(obj, chunk, seqs, loaded_at)
            insert_ledger(self.conn, obj, chunk, counts, run_id, loaded_at)
            if replacing is not None:
                record_partition(
                    conn.execute,
                    object_name=obj.name,
                    partitions=PARTITIONS,
                    replacing=replacing,
                    batch_ids=ids,
                    rows_loaded=sum(v.rows_loaded for v in chunk.results),
                    rows_quarantined=sum(v.rows_quarantined for v in chunk.results),
                    run_id=run_id,
                    loaded_at=max(loaded_at).astimezone(UTC),
                )
            fault_point("inside_load_transaction")
            conn.execute("COMMIT")
            self.wrote(obj)
        except duckdb.Error as exc:
            conn.execute("ROLLBACK")
            raise WarehouseError(
                f"loading batch {ids[0]}"
                + (f" and {len(ids) - 1} more" if len(ids) > 1 else "")
                + f" into {obj.table_name} failed: {first_line(exc)}",
                object=obj.name,
                batch_id=ids[0],
            ) from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            self.in_transaction = False
            self._known.forget()  # what a view read while this load was open is stale now
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

    def _replace_partition(
        self, obj: ObjectSpec, replacing: PartitionReplace, batch_ids: Sequence[str]
    ) -> None:
        conn = self.conn
        replace_partition(
            conn.execute,
            object_name=obj.name,
            table=object_table(obj) if existing_columns(conn, "main", obj.table_name) else None,
            quarantine=quarantine_table(obj)
            if existing_columns(conn, QUARANTINE_SCHEMA, obj.name)
            else None,
            ledger=LEDGER,
            partitions=PARTITIONS,
            replacing=replacing,
            batch_ids=batch_ids,
        )

    def clear_partition(self, obj: ObjectSpec, replacing: PartitionReplace, run_id: str) -> None:
        """A partition the source holds nothing for: its rows go, it is recorded empty."""
        conn = self.conn
        self._known.forget()
        conn.execute("BEGIN TRANSACTION")
        try:
            self._replace_partition(obj, replacing, [])
            record_partition(
                conn.execute,
                object_name=obj.name,
                partitions=PARTITIONS,
                replacing=replacing,
                batch_ids=[],
                rows_loaded=0,
                rows_quarantined=0,
                run_id=run_id,
                loaded_at=datetime.now(UTC),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            self._known.forget()

    def partitions(self, object_name: str) -> dict[str, dict[str, Any]]:
        """The object's recorded partitions (`penstock.partitions`) by key."""
        if not existing_columns(self.conn, LEDGER_SCHEMA, PARTITIONS_TABLE):
            return {}
        rows = self.conn.execute(
            f"SELECT {PARTITION_COLUMNS} FROM {PARTITIONS} WHERE object = ? ORDER BY partition_key",
            [object_name],
        ).fetchall()
        return read_partitions(rows)

    def _insert_quarantine(self, obj: ObjectSpec, chunk: ChunkValidation, seqs: list[int]) -> None:
        if not any(chunk.results[s - 1].rows_recorded for s in seqs):
            return
        ids = [literal(b.batch_id) for b in chunk.batches]
        self.conn.execute(
            f"INSERT INTO {quarantine_table(obj)} BY NAME "
            f"SELECT * EXCLUDE ({SEQ}), list_extract([{', '.join(ids)}], {SEQ}) AS _batch_id "
            f"FROM {chunk.quarantine_table} WHERE {SEQ} IN ({', '.join(map(str, seqs))})"
        )

    def forget_catalog(self) -> None:
        """A transaction is about to change tables or the ledger: what was read of them goes."""
        self._known.forget()

    def wrote(self, obj: ObjectSpec) -> None:
        """A transaction wrote the object's table, its quarantine and the ledger: the close's
        vacuum decision looks at them (warehouse/duckdb_vacuum.py)."""
        self._written |= {
            ("main", obj.table_name),
            (QUARANTINE_SCHEMA, obj.name),
            (LEDGER_SCHEMA, LEDGER_TABLE),
        }

    def apply_modes(
        self,
        obj: ObjectSpec,
        chunk: ChunkValidation,
        seqs: list[int],
        loaded_at: Sequence[datetime],
    ) -> dict[int, modes.ModeCounts]:
        """The chunk's batches `seqs` applied at once (duckdb_chunk.py), as if one by one."""
        source = chunk.load_table
        if seqs != list(range(1, len(chunk.batches) + 1)):  # some were loaded already
            numbered = ", ".join(map(str, seqs))
            source = (
                f"(SELECT * REPLACE (list_position([{numbered}], {SEQ})::INTEGER AS {SEQ}) "
                f"FROM {source} WHERE {SEQ} IN ({numbered}))"
            )
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
        counts = apply_batches(self.conn, obj, source, batches)
        return dict(zip(seqs, counts, strict=True))

    def write_quarantine_file(
        self, chunk: ChunkValidation, seqs: Sequence[int], target: Path
    ) -> None:
        """The chunk's quarantine rows of batches `seqs` as one Parquet file in the lake."""
        write_quarantine_file(self.conn, chunk, seqs, target)

    # -- reading ------------------------------------------------------------------------
    def table_columns(self, obj: ObjectSpec) -> list[str]:
        """The object table's columns (empty when it does not exist yet)."""
        return list(existing_columns(self.conn, "main", obj.table_name))

    def table_rows(self, obj: ObjectSpec) -> int | None:
        if not self._exists("main", obj.table_name):
            return None
        generation = self._known.generation
        # fetchall: DuckDB 2 refuses a later register() while a result is half read
        count = int(self.conn.execute(f"SELECT count(*) FROM {object_table(obj)}").fetchall()[0][0])
        self._known.keep_rows(generation, ("main", obj.table_name), count)  # for close()
        return count

    def quarantine_count(self, obj: ObjectSpec, *, loaded: bool | None = None) -> int:
        """Rows in the object's quarantine table; `loaded` False: only rows held back, True:
        only rows loaded anyway (on_invalid warn), None: all."""
        columns = self._columns(QUARANTINE_SCHEMA, obj.name)
        if not columns:
            return 0
        where = ""
        if loaded is not None:
            flag = _loaded_flag(columns, "")
            where = f" WHERE {flag}" if loaded else f" WHERE NOT {flag}"
        # fetchall: DuckDB 2 refuses a later register() while a result is half read
        rows = self.conn.execute(f"SELECT count(*) FROM {quarantine_table(obj)}{where}").fetchall()
        return int(rows[0][0]) if rows else 0

    def quarantine_page(self, obj: ObjectSpec, selection: QuarantineSelection) -> QuarantinePage:
        """The quarantine rows `selection` picks, with their source file, load time and
        whether a later batch superseded them (`penstock.warehouse.quarantine`)."""
        return read_quarantine(self.conn, obj, selection)

    def quarantine_reasons(self, obj: ObjectSpec) -> list[tuple[str, int]]:
        """How many quarantine rows carry each reason, most frequent first."""
        return reason_counts(self.conn, obj)

    def quarantined_before(self, obj: ObjectSpec, before: datetime) -> dict[str, int]:
        """The quarantine rows of each batch loaded before `before`, by batch id."""
        if not self._columns(QUARANTINE_SCHEMA, obj.name):
            return {}
        rows = self.conn.execute(
            f"SELECT q._batch_id, count(*) FROM {quarantine_table(obj)} q "
            f"JOIN {LEDGER} l ON l.batch_id = q._batch_id AND l.object = ? "
            "WHERE l.loaded_at < ? GROUP BY ALL ORDER BY 1",
            [obj.name, before.astimezone(UTC).replace(tzinfo=None)],  # the ledger's is UTC
        ).fetchall()
        return {str(batch_id): int(n) for batch_id, n in rows}

    def delete_quarantine(self, obj: ObjectSpec, batch_ids: list[str]) -> None:
        """Delete these batches' quarantine rows (a purge)."""
        if batch_ids and self._columns(QUARANTINE_SCHEMA, obj.name):
            ids = ", ".join(literal(b) for b in batch_ids)
            self.conn.execute(f"DELETE FROM {quarantine_table(obj)} WHERE _batch_id IN ({ids})")

    # -- release (warehouse/duckdb_release.py) --------------------------------------------
    def stored_versions(self, obj: ObjectSpec, columns: Sequence[str], into: str) -> bool:
        from penstock.warehouse.duckdb_release import stored_versions

        return stored_versions(self, obj, columns, into)

    def release_rows(self, obj: ObjectSpec, release: ReleaseLoad) -> dict[str, modes.ModeCounts]:
        from penstock.warehouse.duckdb_release import release_rows

        return release_rows(self, obj, release)

    # -- rebuild ------------------------------------------------------------------------
    def reset_object(self, obj: ObjectSpec) -> dict[str, datetime]:
        """Drop the object's tables and ledger rows; return each batch's original load time.

        The original load times are kept in `penstock.replayed_loads` in the same transaction,
        so a rebuild killed halfway is repeated with the same `_loaded_at` values.
        """
        conn = self.conn
        self._known.forget()  # its tables and ledger rows go
        conn.execute("BEGIN TRANSACTION")
        self.in_transaction = True
        try:
            conn.execute(
                f"INSERT OR REPLACE INTO {REPLAYED} (batch_id, object, loaded_at) "
                f"SELECT batch_id, object, loaded_at FROM {LEDGER} WHERE object = ?",
                [obj.name],
            )
            conn.execute(f"DROP TABLE IF EXISTS {object_table(obj)}")
            conn.execute(f"DROP TABLE IF EXISTS {quarantine_table(obj)}")
            conn.execute(f"DELETE FROM {LEDGER} WHERE object = ?", [obj.name])
            forget_load_spec(conn, obj.name)
            fault_point("inside_reset")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            self.in_transaction = False
            self._known.forget()
        self._written.add((LEDGER_SCHEMA, LEDGER_TABLE))
        return self.original_load_times(obj)

    def original_load_times(self, obj: ObjectSpec) -> dict[str, datetime]:
        """First load time of each batch a rebuild emptied (replays keep it)."""
        rows = self.conn.execute(
            f"SELECT batch_id, loaded_at FROM {REPLAYED} WHERE object = ?", [obj.name]
        ).fetchall()
        return {str(b): t.replace(tzinfo=UTC) for b, t in rows}


def _loaded_flag(columns: Mapping[str, str], prefix: str) -> str:
    """A quarantine row's `_loaded` as a real boolean: a table from before the column has
    only rows held back."""
    return f"coalesce({prefix}_loaded, false)" if "_loaded" in columns else "false"
