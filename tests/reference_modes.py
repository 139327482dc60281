"""The single-batch load modes as they were before micro-batches (commit 4059998's
`duckdb_modes.append / replace / merge` and `duckdb_scd2.scd2`, unchanged but for imports):
the definition a micro-batch load must agree with. `penstock.warehouse` now runs every load,
one batch or many, through `duckdb_chunk.apply_batches`; the tests and `bench/chunk_load.py`
compare it with this code, one batch at a time.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from penstock.catalog import ObjectSpec
from penstock.sql import ident, idents, join_on, literal
from penstock.warehouse.duckdb_mode_sql import (
    WRITTEN_BY_LOADER,
    ModeCounts,
    row_hash_sql,
)
from penstock.warehouse.duckdb_mode_sql import is_empty as _is_empty
from penstock.warehouse.duckdb_mode_sql import newer_sql as _newer
from penstock.warehouse.duckdb_mode_sql import same_row_sql as _same_row
from penstock.warehouse.duckdb_mode_sql import scalar_counts as _scalar_counts
from penstock.warehouse.duckdb_tables import existing_columns, object_table

__all__ = ["append", "merge", "replace", "scd2"]


def _system_values(batch_id: str, loaded_at: datetime) -> str:
    return f"{literal(batch_id)}, {literal(loaded_at.replace(tzinfo=None))}"


def append(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    batch_id: str,
    loaded_at: datetime,
) -> ModeCounts:
    cols = idents(obj.columns)
    (inserted,) = _scalar_counts(
        conn,
        f"INSERT INTO {object_table(obj)} ({cols}, _batch_id, _loaded_at) "
        f"SELECT {cols}, {_system_values(batch_id, loaded_at)} FROM {source}",
    )
    return ModeCounts(inserted=inserted)


def replace(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    batch_id: str,
    loaded_at: datetime,
    *,
    rows: int,
) -> ModeCounts:
    """The batch (`rows` rows to load) becomes the table, unless it has no row to load: a
    snapshot whose rows all failed (or a failed batch check), or an empty file, leaves the
    previous snapshot in place."""
    if rows == 0:
        return ModeCounts(kept_previous=True)
    conn.execute(f"DELETE FROM {object_table(obj)}")
    return append(conn, obj, source, batch_id, loaded_at)


def merge(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    batch_id: str,
    loaded_at: datetime,
) -> ModeCounts:
    table = object_table(obj)
    if _is_empty(conn, table):
        # an initial load: nothing to match, so a plain insert does the same work faster
        return append(conn, obj, source, batch_id, loaded_at)
    return _merge_into(conn, obj, table, source, batch_id, loaded_at)


def _merge_into(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    table: str,
    source: str,
    batch_id: str,
    loaded_at: datetime,
) -> ModeCounts:
    """A new key is inserted; a differing row that is not older replaces the stored one (and
    takes this batch's `_batch_id`/`_loaded_at`); an identical row is unchanged and writes
    nothing; an older differing row is stale.

    Cost in proportion to the batch: one join of the batch with the table classifies each
    incoming row; the stored rows it replaces are deleted and the new versions inserted. An
    in-place UPDATE costs far more in DuckDB when it rewrites compressed string columns
    (measured: 1.5 s against 0.15 s for 10,000 of 2M rows, see bench/README.md). A column the
    table keeps but the contract no longer names keeps its stored value, as an update would."""
    on = join_on("t", "s", obj.key)
    newer = _newer(obj, "s", "t")
    same = _same_row(obj, "s", "t")
    first_key = ident(obj.key[0])
    cols = list(obj.columns)
    declared = {c.lower() for c in cols}
    kept = [
        c
        for c in existing_columns(conn, "main", obj.table_name)
        if c.lower() not in declared and c not in WRITTEN_BY_LOADER
    ]
    kept_sql = "".join(f", t.{ident(c)}" for c in kept)
    actions = f"_merge_{batch_id.replace('-', '_')}"
    conn.execute(
        f"CREATE TEMP TABLE {actions} AS "
        f"SELECT {idents(cols, 's.')}{kept_sql}, CASE WHEN t.{first_key} IS NULL THEN 'insert' "
        f"WHEN {same} THEN 'unchanged' WHEN {newer} THEN 'update' ELSE 'stale' END AS _action "
        f"FROM {source} s LEFT JOIN {table} t ON {on}"
    )
    try:
        inserted, updated, unchanged, stale = _scalar_counts(
            conn,
            "SELECT count(*) FILTER (WHERE _action = 'insert'), "
            "count(*) FILTER (WHERE _action = 'update'), "
            "count(*) FILTER (WHERE _action = 'unchanged'), "
            f"count(*) FILTER (WHERE _action = 'stale') FROM {actions}",
        )
        if updated:
            conn.execute(
                f"DELETE FROM {table} t USING (SELECT {idents(obj.key)} FROM {actions} "
                f"WHERE _action = 'update') s WHERE {on}"
            )
        if inserted or updated:
            written = idents([*cols, *kept])
            conn.execute(
                f"INSERT INTO {table} ({written}, _batch_id, _loaded_at) "
                f"SELECT {written}, {_system_values(batch_id, loaded_at)} FROM {actions} "
                f"WHERE _action IN ('insert', 'update')"
            )
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {actions}")
    return ModeCounts(inserted=inserted, updated=updated, unchanged=unchanged, stale=stale)


def valid_from_sql(obj: ObjectSpec, alias: str, extracted_at: datetime) -> str:
    """A version's start: the row's order_by time when it is one, else its extraction time."""
    fallback = literal(extracted_at.replace(tzinfo=None))
    if obj.versions_by_order_by and obj.order_by:
        return f"coalesce(CAST({alias}.{ident(obj.order_by)} AS TIMESTAMP), {fallback})"
    return fallback


# an incoming row the fast path handles: the key's only version in the batch, and it opens a
# history, follows the current version, or equals the current version at its start
SIMPLE = (
    "(_versions = 1 AND (NOT _has_current OR _valid_from > _current_from "
    "OR (_valid_from = _current_from AND _row_hash = _current_hash)))"
)
# a simple row that follows the current version with other values (SIMPLE's first branch)
CHANGED = (
    "(_versions = 1 AND _has_current AND _valid_from > _current_from "
    "AND _row_hash <> _current_hash)"
)


def scd2(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    batch_id: str,
    loaded_at: datetime,
    extracted_at: datetime,
) -> ModeCounts:
    """Load one batch into the history. Counts: `inserted` = versions of keys that had none,
    `updated` = new versions of stored keys (corrections included), `unchanged` = rows that
    added nothing (equal to the version they would follow or replace). Never stale: a late
    version is placed, and a tie is a correction."""
    table = object_table(obj)
    on = join_on("t", "s", obj.key)
    first_key = ident(obj.key[0])
    per_key = (
        f"count(*) OVER (PARTITION BY {idents(obj.key, 's.')})"
        if obj.versions_by_order_by
        else "1"  # without dated versions the batch holds one row per key
    )
    versions = f"_scd2_{batch_id.replace('-', '_')}"
    conn.execute(
        f"""
        CREATE TEMP TABLE {versions} AS
        SELECT s.*, {row_hash_sql(obj, "s")} AS _row_hash,
               {valid_from_sql(obj, "s", extracted_at)} AS _valid_from,
               t.{first_key} IS NOT NULL AS _has_current,
               t._row_hash AS _current_hash, t._valid_from AS _current_from,
               {per_key} AS _versions
        FROM {source} s LEFT JOIN {table} t ON {on} AND t._is_current
        """
    )
    try:
        inserted, updated, unchanged, n_timeline = _scalar_counts(
            conn,
            f"SELECT count(*) FILTER (WHERE {SIMPLE} AND NOT _has_current), "
            f"count(*) FILTER (WHERE {CHANGED}), "
            f"count(*) FILTER (WHERE {SIMPLE} AND _has_current AND _row_hash = _current_hash), "
            f"count(*) FILTER (WHERE NOT {SIMPLE}) FROM {versions}",
        )
        conn.execute(
            f"UPDATE {table} AS t SET _valid_to = s._valid_from, _is_current = false "
            f"FROM (SELECT * FROM {versions} WHERE {CHANGED}) s "
            f"WHERE {on} AND t._is_current"
        )
        cols = idents(obj.columns)
        conn.execute(
            f"INSERT INTO {table} ({cols}, _batch_id, _loaded_at, _valid_from, _valid_to, "
            f"_is_current, _row_hash) "
            f"SELECT {cols}, {_system_values(batch_id, loaded_at)}, _valid_from, NULL, true, "
            f"_row_hash FROM {versions} WHERE ({SIMPLE} AND NOT _has_current) OR {CHANGED}"
        )
        if n_timeline:
            new_keys, stored_keys = _rebuild_timelines(conn, obj, versions, batch_id, loaded_at)
            inserted += new_keys
            updated += stored_keys
            unchanged += n_timeline - new_keys - stored_keys
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {versions}")
    return ModeCounts(inserted=inserted, updated=updated, unchanged=unchanged)


def _rebuild_timelines(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    versions: str,
    batch_id: str,
    loaded_at: datetime,
) -> tuple[int, int]:
    """Rebuild the timeline of the keys whose incoming rows are not simple appends.

    Stored and incoming versions meet per start: one survives (the incoming one, unless both
    have the same content, when the stored one keeps its batch); a version equal to the one
    before it is dropped; each runs until the next one starts. Returns the incoming versions
    placed for keys that had no history, and for keys that had one.
    """
    table = object_table(obj)
    keys = idents(obj.key)
    cols = idents(obj.columns)
    timeline = f"{versions}_timeline"
    conn.execute(
        f"""
        CREATE TEMP TABLE {timeline} AS
        WITH incoming AS (
            SELECT {cols}, {literal(batch_id)} AS _batch_id,
                   {literal(loaded_at.replace(tzinfo=None))} AS _loaded_at,
                   _valid_from, _row_hash, true AS _incoming, NOT _has_current AS _new_key
            FROM {versions} WHERE NOT {SIMPLE}
        ),
        stored AS (
            SELECT {cols}, _batch_id, _loaded_at, _valid_from, _row_hash,
                   false AS _incoming, false AS _new_key
            FROM {table} t
            WHERE EXISTS (SELECT 1 FROM incoming i WHERE {join_on("t", "i", obj.key)})
        ),
        met AS (
            SELECT *, min(_row_hash) OVER start_at = max(_row_hash) OVER start_at AS _same
            FROM (SELECT * FROM stored UNION ALL BY NAME SELECT * FROM incoming)
            WINDOW start_at AS (PARTITION BY {keys}, _valid_from)
        ),
        combined AS (
            SELECT * EXCLUDE (_same) FROM met
            QUALIFY row_number() OVER (
                PARTITION BY {keys}, _valid_from
                ORDER BY CASE WHEN _same THEN _incoming ELSE NOT _incoming END) = 1
        ),
        ordered AS (
            SELECT *, lag(_row_hash) OVER (PARTITION BY {keys} ORDER BY _valid_from) AS _prev
            FROM combined
        )
        SELECT * EXCLUDE (_prev),
               lead(_valid_from) OVER (PARTITION BY {keys} ORDER BY _valid_from) AS _valid_to
        FROM ordered WHERE _prev IS DISTINCT FROM _row_hash
        """
    )
    try:
        new_keys, stored_keys = _scalar_counts(
            conn,
            f"SELECT count(*) FILTER (WHERE _incoming AND _new_key), "
            f"count(*) FILTER (WHERE _incoming AND NOT _new_key) FROM {timeline}",
        )
        conn.execute(
            f"DELETE FROM {table} AS t WHERE EXISTS "
            f"(SELECT 1 FROM {timeline} n WHERE {join_on('t', 'n', obj.key)})"
        )
        conn.execute(
            f"INSERT INTO {table} ({cols}, _batch_id, _loaded_at, _valid_from, _valid_to, "
            f"_is_current, _row_hash) "
            f"SELECT {cols}, _batch_id, _loaded_at, _valid_from, _valid_to, "
            f"_valid_to IS NULL, _row_hash FROM {timeline}"
        )
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {timeline}")
    return new_keys, stored_keys
