"""Reading the PostgreSQL warehouse: the ledger, table figures and the quarantine.

`penstock quarantine` pages through an object's quarantine with the very query the DuckDB
warehouse runs (`duckdb_quarantine.read_quarantine`: filters, `superseded`, the typed keys cast
from the raw text as validation casts them): the tables it reads are copied out of PostgreSQL
by COPY into a scratch in-memory DuckDB first (the quarantine table, the object's ledger rows,
and the distinct keys and batches of the object table), so both engines answer alike.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from penstock.catalog import ObjectSpec
from penstock.sql import ident, idents, literal, qualified
from penstock.warehouse.base import LEDGER_SCHEMA, LEDGER_TABLE, QUARANTINE_SCHEMA
from penstock.warehouse.duckdb_quarantine import read_quarantine
from penstock.warehouse.postgres_tables import PgConnection, Schemas, existing_columns
from penstock.warehouse.quarantine import FIELDS, QuarantinePage, QuarantineSelection

# the quarantine table's own columns as DuckDB types (the contract's columns are text)
_QUARANTINE_TYPES = {
    "_reasons": "VARCHAR",  # read as a JSON array, then cast to VARCHAR[]
    "_loaded": "BOOLEAN",
    "_batch_id": "VARCHAR",
    "_row_number": "BIGINT",
    "_raw_line": "VARCHAR",
    "_error": "VARCHAR",
}


class PostgresReads:
    """What the adapter reads (mixed into `PostgresWarehouse`)."""

    pg: PgConnection
    schema: str
    schemas: Schemas

    def _has_ledger(self) -> bool:
        return bool(existing_columns(self.pg, self.schemas.ledger, LEDGER_TABLE))

    def loaded_batches(self, object_name: str) -> set[str]:
        if not self._has_ledger():
            return set()
        rows = self.pg.execute(
            f"SELECT batch_id FROM {self.schemas.loads} WHERE object = %s", [object_name]
        ).fetchall()
        return {str(r[0]) for r in rows}

    def batch_files(self, object_name: str) -> list[tuple[str, str | None]]:
        """The object's loaded batches with the source file of each, in load order."""
        if not self._has_ledger():
            return []
        rows = self.pg.execute(
            f"SELECT batch_id, source_file FROM {self.schemas.loads} WHERE object = %s "
            f'ORDER BY loaded_at, batch_id COLLATE "C"',
            [object_name],
        ).fetchall()
        return [(str(b), None if f is None else str(f)) for b, f in rows]

    def ledger(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Every ledger row (loaded at or after `since`, when given): batch, object, run, load
        time (UTC) and its row counts."""
        if not self._has_ledger():
            return []
        where, params = "", list[Any]()
        if since is not None:
            where = "WHERE loaded_at >= %s "
            params = [since.astimezone(UTC).replace(tzinfo=None)]
        with self.pg.cursor() as cur:
            cur.execute(
                f"SELECT batch_id, object, run_id, loaded_at, rows_in, rows_loaded, "
                f"rows_quarantined, rows_duplicate FROM {self.schemas.loads} {where}"
                f'ORDER BY loaded_at, batch_id COLLATE "C"',
                params,
            )
            names = [d.name for d in cur.description or ()]
            rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        for row in rows:
            row["loaded_at"] = row["loaded_at"].replace(tzinfo=UTC)
        return rows

    def original_load_times(self, obj: ObjectSpec) -> dict[str, datetime]:
        """First load time of each batch a rebuild emptied (replays keep it)."""
        if not existing_columns(self.pg, self.schemas.ledger, "replayed_loads"):
            return {}
        rows = self.pg.execute(
            f"SELECT batch_id, loaded_at FROM {self.schemas.replayed} WHERE object = %s", [obj.name]
        ).fetchall()
        return {str(b): t.replace(tzinfo=UTC) for b, t in rows}

    def table_columns(self, obj: ObjectSpec) -> list[str]:
        """The object table's columns (empty when it does not exist yet)."""
        return list(existing_columns(self.pg, self.schema, obj.table_name))

    def table_rows(self, obj: ObjectSpec) -> int | None:
        if not existing_columns(self.pg, self.schema, obj.table_name):
            return None
        row = self.pg.execute(
            f"SELECT count(*) FROM {qualified(self.schema, obj.table_name)}"
        ).fetchone()
        return int(row[0]) if row else 0

    def quarantine_count(self, obj: ObjectSpec, *, loaded: bool | None = None) -> int:
        """Rows in the object's quarantine table; `loaded` False: only rows held back, True:
        only rows loaded anyway (on_invalid warn), None: all."""
        if not existing_columns(self.pg, self.schemas.quarantine, obj.name):
            return 0
        where = ""
        if loaded is not None:
            where = (
                " WHERE coalesce(_loaded, false)"
                if loaded
                else " WHERE NOT coalesce(_loaded, false)"
            )
        row = self.pg.execute(
            f"SELECT count(*) FROM {self.schemas.quarantine_table(obj)}{where}"
        ).fetchone()
        return int(row[0]) if row else 0

    def quarantine_reasons(self, obj: ObjectSpec) -> list[tuple[str, int]]:
        """How many quarantine rows carry each reason, most frequent first."""
        if not existing_columns(self.pg, self.schemas.quarantine, obj.name):
            return []
        rows = self.pg.execute(
            f"SELECT reason, count(*) AS n FROM (SELECT unnest(_reasons) AS reason "
            f"FROM {self.schemas.quarantine_table(obj)}) r "
            f'GROUP BY reason ORDER BY n DESC, reason COLLATE "C"'
        ).fetchall()
        return [(str(r), int(n)) for r, n in rows]

    def quarantine_page(self, obj: ObjectSpec, selection: QuarantineSelection) -> QuarantinePage:
        """The quarantine rows `selection` picks (`duckdb_quarantine.read_quarantine`, over
        copies of the tables it reads)."""
        stored = existing_columns(self.pg, self.schemas.quarantine, obj.name)
        if not stored or not self._has_ledger():
            columns = tuple(selection.columns if selection.columns is not None else obj.columns)
            return QuarantinePage((*FIELDS, *columns), [], 0, 0)
        with duckdb.connect(":memory:") as scratch, tempfile.TemporaryDirectory() as tmp:
            scratch.execute("SET TimeZone = 'UTC'")
            copy = TableCopier(self.pg, scratch, Path(tmp))
            for schema in (QUARANTINE_SCHEMA, LEDGER_SCHEMA):
                scratch.execute(f"CREATE SCHEMA {ident(schema)}")
            self._copy_quarantine(copy, obj, list(stored))
            copy.table(
                f"SELECT batch_id, source_file, loaded_at FROM {self.schemas.loads} "
                f"WHERE object = {literal(obj.name)}",
                qualified(LEDGER_SCHEMA, LEDGER_TABLE),
                [("batch_id", "VARCHAR"), ("source_file", "VARCHAR"), ("loaded_at", "TIMESTAMP")],
            )
            table = existing_columns(self.pg, self.schema, obj.table_name)
            if table and "_batch_id" in table and selection.superseded:
                keys = [k for k in obj.key if k in table] if obj.load != "replace" else []
                types = {k: obj.columns[k].stored_duckdb_type for k in keys}
                copy.table(
                    f"SELECT DISTINCT {idents([*keys, '_batch_id'])} "
                    f"FROM {qualified(self.schema, obj.table_name)}",
                    ident(obj.table_name),
                    [*types.items(), ("_batch_id", "VARCHAR")],
                )
            return read_quarantine(scratch, obj, selection)

    def _copy_quarantine(self, copy: TableCopier, obj: ObjectSpec, stored: list[str]) -> None:
        columns = [(c, _QUARANTINE_TYPES.get(c, "VARCHAR")) for c in stored]
        values = [
            "array_to_json(_reasons)::text"
            if c == "_reasons"
            else f"{ident(c)}::text"
            if c == "_loaded"
            else ident(c)
            for c in stored
        ]
        copy.table(
            f"SELECT {', '.join(values)} FROM {self.schemas.quarantine_table(obj)}",
            qualified(QUARANTINE_SCHEMA, obj.name),
            columns,
            replace={"_reasons": "CAST(CAST(_reasons AS JSON) AS VARCHAR[])"}
            if "_reasons" in stored
            else None,
        )

    def loaded_batch_count(self, object_name: str) -> int:
        """How many of the object's batches the ledger holds."""
        if not self._has_ledger():
            return 0
        row = self.pg.execute(
            f"SELECT count(*) FROM {self.schemas.loads} WHERE object = %s", [object_name]
        ).fetchone()
        return int(row[0]) if row else 0

    def quarantined_before(self, obj: ObjectSpec, before: datetime) -> dict[str, int]:
        """The quarantine rows of each batch loaded before `before`, by batch id."""
        if not self._has_ledger() or not existing_columns(
            self.pg, self.schemas.quarantine, obj.name
        ):
            return {}
        rows = self.pg.execute(
            f"SELECT q._batch_id, count(*) FROM {self.schemas.quarantine_table(obj)} q "
            f"JOIN {self.schemas.loads} l ON l.batch_id = q._batch_id AND l.object = %s "
            "WHERE l.loaded_at < %s GROUP BY 1 ORDER BY 1",
            [obj.name, before.astimezone(UTC).replace(tzinfo=None)],
        ).fetchall()
        return {str(batch_id): int(n) for batch_id, n in rows}

    def delete_quarantine(self, obj: ObjectSpec, batch_ids: list[str]) -> None:
        """Delete these batches' quarantine rows (a purge)."""
        if batch_ids and existing_columns(self.pg, self.schemas.quarantine, obj.name):
            self.pg.execute(
                f"DELETE FROM {self.schemas.quarantine_table(obj)} WHERE _batch_id = ANY(%s)",
                [batch_ids],
            )


class TableCopier:
    """PostgreSQL query results into tables of a DuckDB connection, by COPY through CSV."""

    def __init__(self, pg: PgConnection, duck: duckdb.DuckDBPyConnection, tmp: Path) -> None:
        self.pg, self.duck, self.tmp = pg, duck, tmp
        self.n = 0

    def table(
        self,
        select: str,
        target: str,
        columns: list[tuple[str, str]],
        replace: dict[str, str] | None = None,
    ) -> None:
        self.n += 1
        path = self.tmp / f"{self.n}.csv"
        with (
            path.open("wb") as out,
            self.pg.cursor() as cur,
            cur.copy(f"COPY ({select}) TO STDOUT (FORMAT csv)") as copy,
        ):
            for data in _blocks(copy):
                out.write(data)
        spec = "{" + ", ".join(f"{literal(n)}: {literal(t)}" for n, t in columns) + "}"
        swapped = ""
        if replace:
            swapped = (
                " REPLACE (" + ", ".join(f"{e} AS {ident(n)}" for n, e in replace.items()) + ")"
            )
        self.duck.execute(
            f"CREATE TABLE {target} AS SELECT *{swapped} FROM read_csv({literal(str(path))}, "
            f"columns = {spec}, header = false, auto_detect = false, quote = '\"', "
            f"escape = '\"', delim = ',', allow_quoted_nulls = false)"
        )


def _blocks(copy: Any) -> Iterator[bytes]:
    for data in copy:
        yield bytes(data)
