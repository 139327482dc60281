"""The load modes in PostgreSQL: a chunk's staged rows applied to an object table.

The rows arrive in a temp table (`stage`: the contract's columns, the batch's place in the
chunk `SEQ`, and for SCD2 each row's `_row_hash` and `_valid_from`, computed by DuckDB with the
very SQL the DuckDB warehouse uses, so both engines hash and date a version alike). The batches
are applied one after another, in seq order, each by the single-batch definition of its mode
(tests/reference_modes.py, which DuckDB's set-based micro-batch SQL reproduces): the same rows,
the same counts. All of it runs in the caller's transaction.

- append: every row is inserted.
- replace: a batch with rows to load becomes the table; one without keeps the previous one.
- merge: new key → insert; identical in every contract column → unchanged (keeps its batch);
  not older by order_by (a stored NULL loses, a tie is a correction) → update; else stale.
  The rows are counted by one join, then one MERGE writes the inserts and updates (an update
  keeps the values of columns the contract no longer names, as DuckDB's merge carries them).
- scd2: a version per start; a late version is placed into the history, a tie corrects the
  version at that start; a version equal to the one before it adds nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from penstock.catalog import ObjectSpec
from penstock.lake.read import RESERVED_PREFIX
from penstock.sql import ident, idents, join_on, literal
from penstock.warehouse.duckdb_chunk_base import SEQ, ChunkBatch
from penstock.warehouse.duckdb_mode_sql import ModeCounts, newer_sql
from penstock.warehouse.postgres_tables import PgConnection

SCD2_WRITTEN = "_batch_id, _loaded_at, _valid_from, _valid_to, _is_current, _row_hash"


@dataclass(frozen=True)
class Target:
    """Where the rows go: the object table (quoted, schema-qualified) and its schema."""

    schema: str
    table: str  # qualified and quoted
    json_columns: frozenset[str]  # compared as text (json has no equality operator)


def _temp() -> str:
    return ident(f"{RESERVED_PREFIX}pg_{uuid.uuid4().hex[:12]}")


def _counts(conn: PgConnection, sql: str) -> tuple[int, ...]:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return tuple(int(v or 0) for v in row)


def _system_values(batch: ChunkBatch) -> str:
    """The batch's id and load time (the wall time, its zone dropped, as DuckDB writes it)."""
    return f"{literal(batch.batch_id)}, {literal(batch.loaded_at.replace(tzinfo=None))}"


def same_row_sql(obj: ObjectSpec, target: Target, new: str, old: str) -> str:
    """Every contract column equal (NULL equals NULL)."""

    def side(alias: str, column: str) -> str:
        text = "::text" if column in target.json_columns else ""
        return f"{alias}.{ident(column)}{text}"

    return " AND ".join(
        f"{side(new, c)} IS NOT DISTINCT FROM {side(old, c)}" for c in obj.stored_columns
    )


def apply_staged(
    conn: PgConnection,
    obj: ObjectSpec,
    target: Target,
    stage: str,
    batches: Sequence[ChunkBatch],
) -> list[ModeCounts]:
    """Apply the staged batches in seq order; one `ModeCounts` per batch."""
    out: list[ModeCounts] = []
    for batch in sorted(batches, key=lambda b: b.seq):
        rows = f"(SELECT * FROM {stage} WHERE {ident(SEQ)} = {batch.seq})"
        if obj.load == "append":
            out.append(ModeCounts(inserted=_insert(conn, obj, target, rows, batch)))
        elif obj.load == "replace":
            out.append(_replace(conn, obj, target, rows, batch))
        elif obj.load == "merge":
            out.append(_merge(conn, obj, target, rows, batch))
        else:
            out.append(_scd2(conn, obj, target, rows, batch))
    return out


def _insert(conn: PgConnection, obj: ObjectSpec, target: Target, rows: str, b: ChunkBatch) -> int:
    cols = idents(obj.stored_columns)
    cur = conn.execute(
        f"INSERT INTO {target.table} ({cols}, _batch_id, _loaded_at) "
        f"SELECT {cols}, {_system_values(b)} FROM {rows} s"
    )
    return max(cur.rowcount, 0)


def _replace(
    conn: PgConnection, obj: ObjectSpec, target: Target, rows: str, b: ChunkBatch
) -> ModeCounts:
    if b.rows_loaded == 0:
        return ModeCounts(kept_previous=True)
    conn.execute(f"DELETE FROM {target.table}")
    return ModeCounts(inserted=_insert(conn, obj, target, rows, b))


def _classify(obj: ObjectSpec, target: Target) -> str:
    """An incoming row `s` against its stored row `t` (the DuckDB merge's rules)."""
    return (
        f"CASE WHEN t.{ident(obj.key[0])} IS NULL THEN 'insert' "
        f"WHEN {same_row_sql(obj, target, 's', 't')} THEN 'unchanged' "
        f"WHEN {newer_sql(obj, 's', 't')} THEN 'update' ELSE 'stale' END"
    )


def _merge(
    conn: PgConnection, obj: ObjectSpec, target: Target, rows: str, b: ChunkBatch
) -> ModeCounts:
    """Count the batch's rows by what they do (one join, nothing written), then apply the
    inserts and updates with one MERGE (an update rewrites the contract's columns and the
    batch's id and time; the columns the contract no longer names keep their values)."""
    table = target.table
    on = join_on("t", "s", obj.key)
    inserted, updated, unchanged, stale = _counts(
        conn,
        "SELECT count(*) FILTER (WHERE _action = 'insert'), "
        "count(*) FILTER (WHERE _action = 'update'), "
        "count(*) FILTER (WHERE _action = 'unchanged'), "
        "count(*) FILTER (WHERE _action = 'stale') "
        f"FROM (SELECT {_classify(obj, target)} AS _action "
        f"FROM {rows} s LEFT JOIN {table} t ON {on}) c",
    )
    if not (inserted or updated):
        return ModeCounts(unchanged=unchanged, stale=stale)
    cols = list(obj.stored_columns)
    batch_id, loaded_at = literal(b.batch_id), literal(b.loaded_at.replace(tzinfo=None))
    sets = ", ".join(
        [
            *(f"{ident(c)} = s.{ident(c)}" for c in cols if c not in obj.key),
            f"_batch_id = {batch_id}",
            f"_loaded_at = {loaded_at}",
        ]
    )
    merged = conn.execute(
        f"MERGE INTO {table} t USING {rows} s ON {on} "
        f"WHEN MATCHED AND NOT ({same_row_sql(obj, target, 's', 't')}) "
        f"AND {newer_sql(obj, 's', 't')} THEN UPDATE SET {sets} "
        f"WHEN NOT MATCHED THEN INSERT ({idents(cols)}, _batch_id, _loaded_at) "
        f"VALUES ({idents(cols, 's.')}, {batch_id}, {loaded_at})"
    ).rowcount
    assert merged == inserted + updated, (merged, inserted, updated)
    return ModeCounts(inserted=inserted, updated=updated, unchanged=unchanged, stale=stale)


# an incoming row the fast path handles: the key's only version in the batch, and it opens a
# history, follows the current version, or equals the current version at its start
SIMPLE = (
    "(_versions = 1 AND (NOT _has_current OR _valid_from > _current_from "
    "OR (_valid_from = _current_from AND _row_hash = _current_hash)))"
)
# a simple row that follows the current version with other values
CHANGED = (
    "(_versions = 1 AND _has_current AND _valid_from > _current_from "
    "AND _row_hash <> _current_hash)"
)


def _scd2(
    conn: PgConnection, obj: ObjectSpec, target: Target, rows: str, b: ChunkBatch
) -> ModeCounts:
    table = target.table
    on = join_on("t", "s", obj.key)
    per_key = (
        f"count(*) OVER (PARTITION BY {idents(obj.key, 's.')})"
        if obj.versions_by_order_by
        else "1"  # without dated versions the batch holds one row per key
    )
    cols = idents(obj.stored_columns)
    versions = _temp()
    conn.execute(
        f"CREATE TEMP TABLE {versions} ON COMMIT DROP AS "
        f"SELECT {idents(obj.stored_columns, 's.')}, s._row_hash, s._valid_from, "
        f"t.{ident(obj.key[0])} IS NOT NULL AS _has_current, t._row_hash AS _current_hash, "
        f"t._valid_from AS _current_from, {per_key} AS _versions "
        f"FROM {rows} s LEFT JOIN {table} t ON {on} AND t._is_current"
    )
    inserted, updated, unchanged, n_timeline = _counts(
        conn,
        f"SELECT count(*) FILTER (WHERE {SIMPLE} AND NOT _has_current), "
        f"count(*) FILTER (WHERE {CHANGED}), "
        f"count(*) FILTER (WHERE {SIMPLE} AND _has_current AND _row_hash = _current_hash), "
        f"count(*) FILTER (WHERE NOT {SIMPLE}) FROM {versions}",
    )
    if updated:
        conn.execute(
            f"UPDATE {table} AS t SET _valid_to = s._valid_from, _is_current = false "
            f"FROM (SELECT * FROM {versions} WHERE {CHANGED}) s WHERE {on} AND t._is_current"
        )
    conn.execute(
        f"INSERT INTO {table} ({cols}, {SCD2_WRITTEN}) "
        f"SELECT {cols}, {_system_values(b)}, _valid_from, NULL, true, _row_hash "
        f"FROM {versions} WHERE ({SIMPLE} AND NOT _has_current) OR {CHANGED}"
    )
    if n_timeline:
        new_keys, stored_keys = _rebuild_timelines(conn, obj, target, versions, b)
        inserted += new_keys
        updated += stored_keys
        unchanged += n_timeline - new_keys - stored_keys
    conn.execute(f"DROP TABLE {versions}")
    return ModeCounts(inserted=inserted, updated=updated, unchanged=unchanged)


def _rebuild_timelines(
    conn: PgConnection, obj: ObjectSpec, target: Target, versions: str, b: ChunkBatch
) -> tuple[int, int]:
    """Rebuild the timeline of the keys whose incoming rows are not simple appends: stored
    and incoming versions meet per start (the incoming one survives unless both have the same
    content); a version equal to the one before it is dropped; each runs until the next."""
    table = target.table
    keys = idents(obj.key)
    cols = idents(obj.stored_columns)
    timeline = _temp()
    loaded_at = literal(b.loaded_at.replace(tzinfo=None))
    fields = f"{cols}, _batch_id, _loaded_at, _valid_from, _row_hash, _incoming, _new_key"
    conn.execute(
        f"""
        CREATE TEMP TABLE {timeline} ON COMMIT DROP AS
        WITH incoming AS (
            SELECT {cols}, {literal(b.batch_id)}::text AS _batch_id,
                   {loaded_at}::timestamp AS _loaded_at, _valid_from, _row_hash,
                   true AS _incoming, NOT _has_current AS _new_key
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
            FROM (SELECT {fields} FROM stored UNION ALL SELECT {fields} FROM incoming) u
            WINDOW start_at AS (PARTITION BY {keys}, _valid_from)
        ),
        combined AS (
            SELECT {fields} FROM (
                SELECT *, row_number() OVER (
                    PARTITION BY {keys}, _valid_from
                    ORDER BY CASE WHEN _same THEN _incoming ELSE NOT _incoming END) AS _rank
                FROM met) m
            WHERE _rank = 1
        ),
        ordered AS (
            SELECT *, lag(_row_hash) OVER (PARTITION BY {keys} ORDER BY _valid_from) AS _prev
            FROM combined
        )
        SELECT {fields},
               lead(_valid_from) OVER (PARTITION BY {keys} ORDER BY _valid_from) AS _valid_to
        FROM ordered WHERE _prev IS DISTINCT FROM _row_hash
        """
    )
    new_keys, stored_keys = _counts(
        conn,
        f"SELECT count(*) FILTER (WHERE _incoming AND _new_key), "
        f"count(*) FILTER (WHERE _incoming AND NOT _new_key) FROM {timeline}",
    )
    conn.execute(
        f"DELETE FROM {table} AS t WHERE EXISTS "
        f"(SELECT 1 FROM {timeline} n WHERE {join_on('t', 'n', obj.key)})"
    )
    conn.execute(
        f"INSERT INTO {table} ({cols}, {SCD2_WRITTEN}) "
        f"SELECT {cols}, _batch_id, _loaded_at, _valid_from, _valid_to, _valid_to IS NULL, "
        f"_row_hash FROM {timeline}"
    )
    conn.execute(f"DROP TABLE {timeline}")
    return new_keys, stored_keys
