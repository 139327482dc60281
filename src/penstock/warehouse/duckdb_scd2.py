"""SCD2 as set-based DuckDB SQL: a version history per key.

The history of a key is a function of the versions it received: one version per start
(`_valid_from`); at an equal start the later batch wins (a correction replaces the version at
that start; an identical one changes nothing and keeps the stored batch); versions are ordered
by start, a version equal to the one before it adds nothing (the earlier start stays), and each
is valid until the next one starts. So "as of T" finds exactly one row per key, and the history
does not depend on the order batches arrive in, except where the later batch wins a tie.

Most batches only append to the end of histories; those rows take the fast path (close the
current version, insert the new one). A key with several versions in the batch, a late version
(older than the current one) or a differing version at the current start has its timeline
rebuilt from its stored versions plus the incoming ones.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from penstock.catalog import ObjectSpec
from penstock.sql import ident, idents, join_on, literal
from penstock.warehouse.duckdb_modes import (
    ModeCounts,
    _scalar_counts,
    _system_values,
    row_hash_sql,
    valid_from_sql,
)
from penstock.warehouse.duckdb_tables import object_table

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
