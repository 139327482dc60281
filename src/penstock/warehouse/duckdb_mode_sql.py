"""The SQL pieces every load mode shares: what a load counts, when an incoming row wins over
a stored one, when it changes nothing, the SCD2 row hash and start, and the columns a table
keeps that the contract no longer names.

Keys are compared column by column (tuples), never as concatenated strings. The SCD2 row hash
is the md5 of the row's non-key columns encoded as a JSON object: values are quoted and
escaped, NULL is distinct from 'null' or '', so no two different rows share an encoding.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from penstock.catalog import ObjectSpec
from penstock.sql import ident, literal
from penstock.warehouse.base import SCD2_COLUMNS, SYSTEM_COLUMNS
from penstock.warehouse.duckdb_tables import existing_columns

# what the loader writes besides the contract's columns (merge tables have the first two)
WRITTEN_BY_LOADER = frozenset((*SYSTEM_COLUMNS, *SCD2_COLUMNS))


@dataclass(frozen=True)
class ModeCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    kept_previous: bool = False  # replace: no rows to load, the previous snapshot stays


def scalar_counts(conn: duckdb.DuckDBPyConnection, sql: str) -> tuple[int, ...]:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return tuple(int(v or 0) for v in row)


def is_empty(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    return conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None


def newer_sql(obj: ObjectSpec, new: str, old: str) -> str:
    """merge: when does the incoming row win over the stored one? Late data loses; at an equal
    order_by value the later batch wins (a correction); a stored NULL order_by loses."""
    if not obj.order_by:
        return "true"
    ob = ident(obj.order_by)
    return f"({old}.{ob} IS NULL OR ({new}.{ob} IS NOT NULL AND {new}.{ob} >= {old}.{ob}))"


def same_row_sql(obj: ObjectSpec, new: str, old: str) -> str:
    """Every contract column equal (NULL equals NULL): the incoming row changes nothing."""
    return " AND ".join(
        f"{new}.{ident(c)} IS NOT DISTINCT FROM {old}.{ident(c)}" for c in obj.stored_columns
    )


def kept_columns(conn: duckdb.DuckDBPyConnection, obj: ObjectSpec) -> list[str]:
    """The table's columns the contract no longer names (and the loader does not write)."""
    declared = {c.lower() for c in obj.stored_columns}
    return [
        c
        for c in existing_columns(conn, "main", obj.table_name)
        if c.lower() not in declared and c not in WRITTEN_BY_LOADER
    ]


def row_hash_sql(obj: ObjectSpec, alias: str) -> str:
    """md5 over the tracked columns as a JSON object (unambiguous field separation).

    Tracked: every column but the key and `order_by`; the order_by value dates a version
    (`_valid_from`), so a re-delivery with a newer timestamp and the same values is no change.
    A NULL value is left out of the object, so a column the contract adds (NULL in old data)
    does not change the hash of a row that lacks it: history loaded before the column came
    and history rebuilt after it are the same. For a row without NULLs the text is exactly
    `to_json(struct_pack(...))`; '' and NULL still differ (`"c":""` vs no field).
    """
    skip = {*obj.key, obj.order_by}
    attrs = [c for c in obj.stored_columns if c not in skip] or list(obj.stored_columns)
    fields = ", ".join(
        f"CASE WHEN {alias}.{ident(c)} IS NOT NULL "
        f"THEN {literal(chr(34) + c + chr(34) + ':')} || to_json({alias}.{ident(c)}) END"
        for c in attrs
    )
    return f"md5('{{' || concat_ws(',', {fields}) || '}}')"


def valid_from_sql(obj: ObjectSpec, alias: str, extracted_at: str) -> str:
    """A version's start: the row's order_by time when it is one, else `extracted_at` (SQL:
    the batch's extraction time)."""
    if obj.versions_by_order_by and obj.order_by:
        return f"coalesce(CAST({alias}.{ident(obj.order_by)} AS TIMESTAMP), {extracted_at})"
    return extracted_at
