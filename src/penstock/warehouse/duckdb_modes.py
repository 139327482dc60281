"""The four load modes as set-based DuckDB SQL, from a temp table of validated, deduped rows.

Keys are compared column by column (tuples), never as concatenated strings. The SCD2 row hash
is the md5 of the row's non-key columns encoded as a JSON object: values are quoted and
escaped, NULL is distinct from 'null' or '', so no two different rows share an encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from penstock.catalog import ObjectSpec
from penstock.sql import ident, idents, join_on, literal
from penstock.warehouse.duckdb_tables import object_table


@dataclass(frozen=True)
class ModeCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    kept_previous: bool = False  # replace: no rows to load, the previous snapshot stays


def _scalar_counts(conn: duckdb.DuckDBPyConnection, sql: str) -> tuple[int, ...]:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return tuple(int(v or 0) for v in row)


def _is_empty(conn: duckdb.DuckDBPyConnection, table: str) -> bool:
    return conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None


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
) -> ModeCounts:
    """The batch becomes the table, unless it has no row to load: a snapshot whose rows all
    failed (or a failed batch check), or an empty file, leaves the previous snapshot in place."""
    if _is_empty(conn, source):
        return ModeCounts(kept_previous=True)
    conn.execute(f"DELETE FROM {object_table(obj)}")
    return append(conn, obj, source, batch_id, loaded_at)


def _newer(obj: ObjectSpec, new: str, old: str) -> str:
    """When does the incoming row win over the stored one? Late data loses."""
    if not obj.order_by:
        return "true"
    ob = ident(obj.order_by)
    return f"({old}.{ob} IS NULL OR ({new}.{ob} IS NOT NULL AND {new}.{ob} >= {old}.{ob}))"


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
    on = join_on("t", "s", obj.key)
    newer = _newer(obj, "s", "t")
    first_key = ident(obj.key[0])
    inserted, updated, stale = _scalar_counts(
        conn,
        f"SELECT count(*) FILTER (WHERE t.{first_key} IS NULL), "
        f"count(*) FILTER (WHERE t.{first_key} IS NOT NULL AND {newer}), "
        f"count(*) FILTER (WHERE t.{first_key} IS NOT NULL AND NOT {newer}) "
        f"FROM {source} s LEFT JOIN {table} t ON {on}",
    )
    cols = list(obj.columns)
    updates = ", ".join(f"{ident(c)} = s.{ident(c)}" for c in cols if c not in obj.key)
    system = (
        f"_batch_id = {literal(batch_id)}, _loaded_at = {literal(loaded_at.replace(tzinfo=None))}"
    )
    set_clause = f"{updates}, {system}" if updates else system
    conn.execute(
        f"""
        MERGE INTO {table} t USING {source} s ON ({on})
        WHEN MATCHED AND {newer} THEN UPDATE SET {set_clause}
        WHEN NOT MATCHED THEN INSERT ({idents(cols)}, _batch_id, _loaded_at)
            VALUES ({idents(cols, "s.")}, {_system_values(batch_id, loaded_at)})
        """
    )
    return ModeCounts(inserted=inserted, updated=updated, stale=stale)


def row_hash_sql(obj: ObjectSpec, alias: str) -> str:
    """md5 over the tracked columns as a JSON object (unambiguous field separation).

    Tracked: every column but the key and `order_by`; the order_by value dates a version
    (`_valid_from`), so a re-delivery with a newer timestamp and the same values is no change.
    """
    skip = {*obj.key, obj.order_by}
    attrs = [c for c in obj.columns if c not in skip] or list(obj.columns)
    fields = ", ".join(f"{ident(c)} := {alias}.{ident(c)}" for c in attrs)
    return f"md5(to_json(struct_pack({fields})))"


def valid_from_sql(obj: ObjectSpec, alias: str, extracted_at: datetime) -> str:
    """A version's start: the row's order_by time when it is one, else its extraction time."""
    fallback = literal(extracted_at.replace(tzinfo=None))
    if obj.order_by and obj.columns[obj.order_by].column_type.family in ("date", "timestamp"):
        return f"coalesce(CAST({alias}.{ident(obj.order_by)} AS TIMESTAMP), {fallback})"
    return fallback


def scd2(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    batch_id: str,
    loaded_at: datetime,
    extracted_at: datetime,
) -> ModeCounts:
    """Version history by key. Each incoming row is compared with the key's current version:

    * a new key opens its first version;
    * a later version that differs closes the current one and opens a new one; the same
      content writes nothing;
    * a version starting at the same time as the current one keeps the stored one (a
      differing one counts as stale);
    * a late version (older than the current one) is placed into the history: the key's
      timeline is rebuilt from its stored versions plus the late one.

    So the history is the same whatever order the batches arrive in.
    """
    table = object_table(obj)
    on = join_on("t", "s", obj.key)
    first_key = ident(obj.key[0])
    versions = f"_scd2_{batch_id.replace('-', '_')}"
    conn.execute(
        f"""
        CREATE TEMP TABLE {versions} AS
        SELECT s.*, {row_hash_sql(obj, "s")} AS _row_hash,
               {valid_from_sql(obj, "s", extracted_at)} AS _valid_from,
               t.{first_key} IS NOT NULL AS _has_current,
               t._row_hash AS _current_hash, t._valid_from AS _current_from
        FROM {source} s LEFT JOIN {table} t ON {on} AND t._is_current
        """
    )
    changed = "_has_current AND _valid_from > _current_from AND _row_hash <> _current_hash"
    late = "_has_current AND _valid_from < _current_from"
    try:
        inserted, updated, unchanged, stale, n_late = _scalar_counts(
            conn,
            f"SELECT count(*) FILTER (WHERE NOT _has_current), "
            f"count(*) FILTER (WHERE {changed}), "
            f"count(*) FILTER (WHERE _has_current AND _valid_from >= _current_from "
            f"AND _row_hash = _current_hash), "
            f"count(*) FILTER (WHERE _has_current AND _valid_from = _current_from "
            f"AND _row_hash <> _current_hash), "
            f"count(*) FILTER (WHERE {late}) FROM {versions}",
        )
        conn.execute(
            f"UPDATE {table} AS t SET _valid_to = s._valid_from, _is_current = false "
            f"FROM (SELECT * FROM {versions} WHERE {changed}) s "
            f"WHERE {on} AND t._is_current"
        )
        cols = idents(obj.columns)
        conn.execute(
            f"INSERT INTO {table} ({cols}, _batch_id, _loaded_at, _valid_from, _valid_to, "
            f"_is_current, _row_hash) "
            f"SELECT {cols}, {_system_values(batch_id, loaded_at)}, _valid_from, NULL, true, "
            f"_row_hash FROM {versions} WHERE NOT _has_current OR ({changed})"
        )
        if n_late:
            placed, late_stale = _place_late_versions(
                conn, obj, versions, late, batch_id, loaded_at
            )
            updated += placed
            stale += late_stale
            unchanged += n_late - placed - late_stale
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {versions}")
    return ModeCounts(inserted=inserted, updated=updated, unchanged=unchanged, stale=stale)


def _place_late_versions(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    versions: str,
    late: str,
    batch_id: str,
    loaded_at: datetime,
) -> tuple[int, int]:
    """Rebuild the timeline of the keys that received a late version.

    Stored versions and late ones are ordered by start; at an equal start the stored one
    stays; a version equal to the one before it adds nothing (the earlier start wins); each
    version is valid until the next one starts. Returns (late versions placed, late versions
    that lost a tie with a differing stored version).
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
                   _valid_from, _row_hash, true AS _late
            FROM {versions} WHERE {late}
        ),
        stored AS (
            SELECT {cols}, _batch_id, _loaded_at, _valid_from, _row_hash, false AS _late
            FROM {table} t
            WHERE EXISTS (SELECT 1 FROM incoming i WHERE {join_on("t", "i", obj.key)})
        ),
        combined AS (
            SELECT * FROM (SELECT * FROM stored UNION ALL BY NAME SELECT * FROM incoming)
            QUALIFY row_number() OVER (PARTITION BY {keys}, _valid_from ORDER BY _late) = 1
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
        (placed,) = _scalar_counts(conn, f"SELECT count(*) FROM {timeline} WHERE _late")
        (lost,) = _scalar_counts(
            conn,
            f"SELECT count(*) FROM {versions} v WHERE {late} AND EXISTS ("
            f"SELECT 1 FROM {table} t WHERE {join_on('t', 'v', obj.key)} "
            f"AND t._valid_from = v._valid_from AND t._row_hash <> v._row_hash)",
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
    return placed, lost
