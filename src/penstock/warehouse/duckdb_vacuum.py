"""Whether the checkpoint that closes a DuckDB warehouse may vacuum the tables a session wrote.

A checkpoint after deletes (a merge replaces an updated row by delete + insert) vacuums: it
rewrites row groups to reclaim deleted rows and merges the small row group each load appends.
On the 2M-row orders table that rewrite costs 0.3-0.45 s whatever the batch's size, while the
rest of the checkpoint takes 0.03 s: a 1% incremental run would spend more closing the
warehouse than loading (bench/README.md). The dead rows and extra row groups it reclaims
cost space and scan time only when they add up, so the vacuum is deferred while every table
the session wrote stays compact: under `DEAD_ROWS` of its rows deleted and at most
`EXTRA_ROW_GROUPS` (or 2) more row groups than its rows need. The first checkpoint after a
table crosses either line vacuums as DuckDB always would, so its cost is paid once every
several small runs instead of in each. Deferring changes no row a query sees.

The vacuum is the checkpoint's, for every table at once: a small table that crosses its line
vacuums the large ones too. Each load appends a row group of its own to the ledger (one row)
and to the quarantine, so with 2 extra groups allowed the ledger alone brought the 2M table's
vacuum back every third run. A table under one row group's rows may therefore have
`SMALL_TABLE_EXTRA_ROW_GROUPS` extra groups: reading a table of 64 one-row groups costs ~10 ms
more than one group the first time in a process, 8 cost little.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterable, Mapping

import duckdb

from penstock.sql import qualified

DEAD_ROWS = 0.10
EXTRA_ROW_GROUPS = 0.25
SMALL_TABLE_EXTRA_ROW_GROUPS = 8  # a table under ROW_GROUP_ROWS live rows
ROW_GROUP_ROWS = 122_880  # DuckDB's row group size (penstock keeps the default)


def table_is_compact(
    conn: duckdb.DuckDBPyConnection,
    schema: str,
    table: str,
    *,
    stored: int | None = None,
    live: int | None = None,
) -> bool:
    """True when `schema.table` has few dead rows and few extra row groups (a table that
    does not exist is compact). `stored` (its `estimated_size`) and `live` (its row count),
    when the caller knows them, are not asked again."""
    if stored is None:
        found = stored_rows(conn).get((schema, table))
        if found is None:
            return True
        stored = found
    if live is None:
        live = int(conn.execute(f"SELECT count(*) FROM {qualified(schema, table)}").fetchone()[0])  # type: ignore[index]
    if stored and (stored - live) / stored >= DEAD_ROWS:
        return False
    groups = row_groups(conn, schema, table)
    needed = max(1, math.ceil(live / ROW_GROUP_ROWS))
    if live < ROW_GROUP_ROWS:
        return groups - needed <= SMALL_TABLE_EXTRA_ROW_GROUPS
    return groups - needed <= max(2, math.floor(needed * EXTRA_ROW_GROUPS))


def stored_rows(conn: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], int]:
    """Every table's rows in its row groups, deleted ones included (`estimated_size`), by
    (schema, name): one catalog query for all the tables a session wrote."""
    rows = conn.execute(
        "SELECT schema_name, table_name, estimated_size FROM duckdb_tables() "
        "WHERE database_name = current_database() AND NOT temporary"
    ).fetchall()
    return {(str(s), str(t)): int(n or 0) for s, t, n in rows}


def row_groups(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> int:
    """How many row groups `schema.table` has (outside a transaction that appended to it).

    Read from the profile of a scan that skips every row group (`rowid < 0`): its
    `total_row_groups_to_scan`, ~1 ms. `pragma_storage_info` lists every segment of every
    column with its statistics: 13-25 ms on the 2M-row orders table, most of what deciding
    the vacuum cost each run. It stays the answer when the profile lacks the metric (an
    empty table; another DuckDB version)."""
    with contextlib.suppress(duckdb.Error, ValueError, TypeError, IndexError):
        row = conn.execute(
            f"EXPLAIN (ANALYZE, FORMAT json) SELECT 1 FROM {qualified(schema, table)} "
            "WHERE rowid < 0"
        ).fetchone()
        found = _metric(json.loads(row[1]), "total_row_groups_to_scan") if row else None
        if found is not None:
            return found
    return int(
        conn.execute(
            "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info(?) WHERE column_id = 0",
            [f"{schema}.{table}"],
        ).fetchone()[0]  # type: ignore[index]
    )


def _metric(node: object, name: str) -> int | None:
    """The first integer `name` in a JSON profile (a tree of objects and lists)."""
    if isinstance(node, dict):
        value = node.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        children: Iterable[object] = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _metric(child, name)
        if found is not None:
            return found
    return None


def defer_vacuum(
    conn: duckdb.DuckDBPyConnection,
    tables: Iterable[tuple[str, str]],
    counted: Mapping[tuple[str, str], int] | None = None,
) -> bool:
    """Set the connection's checkpoints not to vacuum when every table in `tables` (schema,
    name) is compact; True when they will not. `counted`: the live rows of tables the
    session counted since it last wrote them (the run counts each object it loaded), which
    need no second count(*) (7-13 ms on the 2M-row orders table after a merge)."""
    written = sorted(set(tables))
    if not written:
        return False
    sizes = stored_rows(conn)
    known = counted or {}
    for schema, table in written:
        stored = sizes.get((schema, table))
        if stored is None:
            continue  # no such table: compact
        if not table_is_compact(
            conn, schema, table, stored=stored, live=known.get((schema, table))
        ):
            return False
    conn.execute("SET max_vacuum_tasks = 0")
    return True
