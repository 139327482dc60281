"""DDL for the PostgreSQL warehouse: the type mapping, object and quarantine tables, the load
ledger and what each object table was loaded with (`penstock.objects`).

The same rules as DuckDB's (`duckdb_tables`): a column the contract adds is added to the table,
a column whose type no longer matches is an error naming both types, and so is a changed load
mode, key or order_by of an object whose table holds data. Every statement runs inside the
caller's transaction (PostgreSQL's DDL is transactional): a load that fails creates nothing.

Type mapping (penstock type → PostgreSQL type, as `format_type` names it):

| penstock | PostgreSQL |
| --- | --- |
| text | text |
| boolean | boolean |
| integer | integer |
| bigint | bigint |
| double | double precision |
| decimal(p,s) | numeric(p,s) |
| date | date |
| timestamp | timestamp without time zone (the wall time, as DuckDB's TIMESTAMP) |
| timestamptz | timestamp with time zone (an instant; sessions run in UTC) |
| json | json (the text as validated: compared as text, as DuckDB compares it) |

A column with `pii: hash` or `pii: mask` is text, whatever its declared type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from penstock.catalog import ObjectSpec
from penstock.errors import ProjectError, TableMismatch, WarehouseError
from penstock.sql import ident, qualified
from penstock.warehouse.base import LEDGER_SCHEMA, LEDGER_TABLE, QUARANTINE_SCHEMA

PgConnection = psycopg.Connection[tuple[Any, ...]]

DEFAULT_SCHEMA = "public"


@dataclass(frozen=True)
class Schemas:
    """Where a warehouse's tables live. With the default schema (`public`) the ledger is
    `penstock.loads` and quarantine tables are `quarantine.<object>`, as on DuckDB; with
    `?schema=S` they are `S_penstock.loads` and `S_quarantine.<object>`, so projects that
    share a database in schemas of their own never share a ledger (batch ids are content
    hashes: a shared ledger would skip the other project's identical files)."""

    data: str
    ledger: str
    quarantine: str

    @classmethod
    def of(cls, schema: str) -> Schemas:
        if schema == DEFAULT_SCHEMA:
            return cls(schema, LEDGER_SCHEMA, QUARANTINE_SCHEMA)
        return cls(schema, f"{schema}_{LEDGER_SCHEMA}", f"{schema}_{QUARANTINE_SCHEMA}")

    @property
    def loads(self) -> str:
        return qualified(self.ledger, LEDGER_TABLE)

    @property
    def replayed(self) -> str:
        """A batch's first load time, kept across rebuilds."""
        return qualified(self.ledger, "replayed_loads")

    @property
    def objects(self) -> str:
        """What each object table was loaded with (load mode, key, order_by)."""
        return qualified(self.ledger, "objects")

    def table(self, obj: ObjectSpec) -> str:
        return qualified(self.data, obj.table_name)

    def quarantine_table(self, obj: ObjectSpec) -> str:
        return qualified(self.quarantine, obj.name)


# PostgreSQL cuts a longer identifier short (NAMEDATALEN - 1 bytes): refused, not truncated
MAX_IDENTIFIER_BYTES = 63

_SIMPLE_TYPES = {
    "VARCHAR": "text",
    "BOOLEAN": "boolean",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIMESTAMP": "timestamp without time zone",
    "TIMESTAMPTZ": "timestamp with time zone",
    "JSON": "json",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),(\d+)\)")


def _ledger_ddl(schemas: Schemas) -> list[str]:
    return [
        f"""
        CREATE TABLE IF NOT EXISTS {schemas.loads} (
            batch_id text PRIMARY KEY,
            object text NOT NULL,
            table_name text NOT NULL,
            load_mode text NOT NULL,
            source_file text,
            content_hash text,
            rows_in bigint NOT NULL,
            rows_loaded bigint NOT NULL,
            rows_quarantined bigint NOT NULL,
            rows_duplicate bigint NOT NULL,
            rows_inserted bigint NOT NULL,
            rows_updated bigint NOT NULL,
            rows_unchanged bigint NOT NULL,
            rows_stale bigint NOT NULL,
            run_id text,
            loaded_at timestamp NOT NULL,
            rows_warned bigint NOT NULL DEFAULT 0
        )
        """,
        f"CREATE TABLE IF NOT EXISTS {schemas.replayed} (batch_id text PRIMARY KEY, "
        f"object text NOT NULL, loaded_at timestamp NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {schemas.objects} (object text PRIMARY KEY, "
        f"table_name text NOT NULL, load_mode text NOT NULL, key text[] NOT NULL, order_by text)",
    ]


def postgres_type(duckdb_type: str) -> str:
    """The PostgreSQL type of a column DuckDB's validation types as `duckdb_type`."""
    simple = _SIMPLE_TYPES.get(duckdb_type.upper())
    if simple is not None:
        return simple
    match = _DECIMAL.fullmatch(duckdb_type.upper().replace(" ", ""))
    if match is not None:
        return f"numeric({match[1]},{match[2]})"
    raise WarehouseError(f"no PostgreSQL type for the DuckDB type {duckdb_type}")


def column_types(obj: ObjectSpec) -> dict[str, str]:
    """The object's stored contract columns → their PostgreSQL types."""
    return {
        name: postgres_type(spec.stored_duckdb_type)
        for name, spec in obj.columns.items()
        if spec.pii != "drop"
    }


def typed_columns(obj: ObjectSpec, prefix: str) -> str:
    """The stored contract columns for a DuckDB SELECT, each cast to the DuckDB type its
    PostgreSQL column is mapped from (binary COPY takes the bytes as that type)."""
    return ", ".join(
        f"CAST({prefix}{ident(name)} AS {spec.stored_duckdb_type}) AS {ident(name)}"
        for name, spec in obj.columns.items()
        if spec.pii != "drop"
    )


def check_identifiers(obj: ObjectSpec, schemas: Schemas) -> None:
    """Refuse names PostgreSQL would silently cut short."""
    names = [
        ("warehouse", "schema", schemas.data),
        ("warehouse", "ledger schema", schemas.ledger),
        ("warehouse", "quarantine schema", schemas.quarantine),
        (f"objects.{obj.name}", "table", obj.table_name),
        (f"objects.{obj.name}", "quarantine table", obj.name),
        *((f"objects.{obj.name}.columns.{c}", "column", c) for c in obj.columns),
    ]
    for key_path, what, name in names:
        if len(name.encode()) > MAX_IDENTIFIER_BYTES:
            raise ProjectError(
                f"{what} name {name!r} is {len(name.encode())} bytes long: a PostgreSQL "
                f"warehouse keeps {MAX_IDENTIFIER_BYTES} bytes of a name; shorten it",
                file="penstock.yml",
                key_path=key_path,
            )


def ensure_ledger(conn: PgConnection, schemas: Schemas) -> None:
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schemas.ledger)}")
    for ddl in _ledger_ddl(schemas):
        conn.execute(ddl)


def existing_columns(conn: PgConnection, schema: str, table: str) -> dict[str, str]:
    """A table's columns → their types (`format_type`), in order; empty when it does not
    exist. Reads the catalog, so it is safe inside a transaction."""
    rows = conn.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p') "
        "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        [schema, table],
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def object_columns(obj: ObjectSpec) -> list[tuple[str, str]]:
    cols = list(column_types(obj).items())
    cols += [("_batch_id", "text"), ("_loaded_at", "timestamp without time zone")]
    if obj.load == "scd2":
        cols += [
            ("_valid_from", "timestamp without time zone"),
            ("_valid_to", "timestamp without time zone"),
            ("_is_current", "boolean"),
            ("_row_hash", "text"),
        ]
    return cols


QUARANTINE_DEFAULTS = {"_loaded": "false"}
# the quarantine table's PostgreSQL types → the DuckDB types its rows are copied as
QUARANTINE_DUCKDB_TYPES = {
    "text": "VARCHAR",
    "text[]": "VARCHAR[]",
    "boolean": "BOOLEAN",
    "bigint": "BIGINT",
}


def quarantine_columns(obj: ObjectSpec) -> list[tuple[str, str]]:
    cols = [(name, "text") for name in obj.columns]
    cols += [
        ("_reasons", "text[]"),
        ("_loaded", "boolean"),
        ("_batch_id", "text"),
        ("_row_number", "bigint"),
        ("_raw_line", "text"),
        ("_error", "text"),
    ]
    return cols


def ensure_object_tables(conn: PgConnection, obj: ObjectSpec, schemas: Schemas) -> None:
    """The object's table (in `schemas.data`) and its quarantine table, created or completed."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schemas.data)}")
    _ensure_table(conn, obj, schemas.data, obj.table_name, object_columns(obj))
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(schemas.quarantine)}")
    _ensure_table(
        conn, obj, schemas.quarantine, obj.name, quarantine_columns(obj), QUARANTINE_DEFAULTS
    )


def ensure_key_index(conn: PgConnection, obj: ObjectSpec, schemas: Schemas) -> None:
    """Merge and SCD2 look stored rows up by key: the table gets an index on it, built after
    its first load (one sorted build costs 0.9 s for 2M rows where keeping the index up to
    date during that COPY cost 6 s)."""
    if not obj.key or obj.load not in ("merge", "scd2"):
        return
    found = conn.execute(
        "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        [schemas.data, obj.table_name],
    ).fetchone()
    if found is None:  # PostgreSQL names the index after the table, uniquely
        conn.execute(
            f"CREATE INDEX ON {schemas.table(obj)} ({', '.join(ident(k) for k in obj.key)})"
        )


def _ensure_table(
    conn: PgConnection,
    obj: ObjectSpec,
    schema: str,
    table: str,
    columns: list[tuple[str, str]],
    defaults: Mapping[str, str] | None = None,
) -> None:
    """Create the table, or add the columns it lacks (with their default)."""
    name = qualified(schema, table)
    current = existing_columns(conn, schema, table)
    defaults = defaults or {}

    def definition(column: str, declared: str) -> str:
        default = f" DEFAULT {defaults[column]}" if column in defaults else ""
        return f"{ident(column)} {declared}{default}"

    if not current:
        body = ", ".join(definition(c, t) for c, t in columns)
        conn.execute(f"CREATE TABLE {name} ({body})")
        return
    for column, declared in columns:
        if column not in current:
            conn.execute(f"ALTER TABLE {name} ADD COLUMN {definition(column, declared)}")
            continue
        actual = current[column]
        if actual != declared:
            raise TableMismatch(
                f"table {schema}.{table}: column {column} is {actual} in the warehouse but "
                f"{declared} in the contract; change it back, or run `penstock rebuild --select "
                f"{obj.name}` to recreate the table from the stage zone",
                table=f"{schema}.{table}",
                column=column,
            )


def check_load_spec(conn: PgConnection, obj: ObjectSpec, schemas: Schemas) -> None:
    """As `duckdb_tables.check_load_spec`: refuse a changed load mode, key or order_by while
    the table holds rows loaded under the old one; record them when new."""
    declared: tuple[str, list[str], str | None] = (obj.load, list(obj.key), obj.order_by)
    row = conn.execute(
        f"SELECT load_mode, key, order_by, table_name FROM {schemas.objects} WHERE object = %s",
        [obj.name],
    ).fetchone()
    recorded = (
        [] if row is None else [("load", row[0]), ("key", list(row[1])), ("order_by", row[2])]
    )
    now = dict(zip(("load", "key", "order_by"), declared, strict=True))
    changed = [(what, old, now[what]) for what, old in recorded if old != now[what]]
    if changed and has_rows(conn, schemas.data, obj.table_name):
        what, old, new = changed[0]
        raise TableMismatch(
            f"object {obj.name}: {what} changed from {_show(old)} to {_show(new)}, but table "
            f"{obj.table_name} holds rows loaded with {what} {_show(old)}; change it back, or run "
            f"`penstock rebuild --select {obj.name}` to reload the table from the stage zone",
            object=obj.name,
            table=obj.table_name,
        )
    if row is not None and not changed and row[3] == obj.table_name:
        return
    conn.execute(f"DELETE FROM {schemas.objects} WHERE object = %s", [obj.name])
    conn.execute(
        f"INSERT INTO {schemas.objects} VALUES (%s, %s, %s, %s, %s)",
        [obj.name, obj.table_name, *declared],
    )


def forget_load_spec(conn: PgConnection, schemas: Schemas, object_name: str) -> None:
    conn.execute(f"DELETE FROM {schemas.objects} WHERE object = %s", [object_name])


def has_rows(conn: PgConnection, schema: str, table: str) -> bool:
    if not existing_columns(conn, schema, table):
        return False
    return conn.execute(f"SELECT 1 FROM {qualified(schema, table)} LIMIT 1").fetchone() is not None


def _show(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)
