"""merge for a micro-batch: n batches' rows classified and applied in one pass.

Applied one at a time, a batch's row for a key is compared with the key's stored row: new key
-> insert; identical in every contract column -> unchanged (the stored row keeps its batch);
not older (`newer_sql`: a stored NULL order_by loses, an equal order_by is a correction) ->
update; else stale. What the key holds after each batch is therefore the greatest of its rows
so far by (order_by, NULL lowest; then seq, the stored row counting as seq 0), so one window
over the chunk's rows finds, for each incoming row, the row it is compared with: the greatest
before it. The last insert or update of a key is what the table holds at the end; it replaces
the stored row (delete + insert: an in-place UPDATE of compressed string columns costs far more
in DuckDB, bench/README.md) and carries over the columns the table keeps that the contract
dropped.

A key that occurs in one batch of the chunk only (every key when n=1) skips the windows: it is
classified against the stored row alone, exactly like the single-batch merge.

A chunk of one batch, on an object with an `order_by` column, is classified first from the
stored rows' key and order_by alone: an incoming row whose order_by differs from the stored
one's differs from it, so it is an update or stale without comparing the rest. Only the rows
whose order_by equals the stored one's (both NULL included) are compared in every column, in a
second statement that reads the stored rows' other columns for those keys only; a batch of
changes that each carry a newer order_by never reads them (decoding every column of a large
table's vectors was most of a small merge's statement, bench/README.md).
"""

from __future__ import annotations

import duckdb

from penstock.catalog import ObjectSpec
from penstock.lake.read import RESERVED_PREFIX
from penstock.sql import ident, idents, join_on
from penstock.warehouse.duckdb_chunk_base import (
    SEQ,
    Chunk,
    insert_rows,
    per_batch,
)
from penstock.warehouse.duckdb_mode_sql import (
    ModeCounts,
    is_empty,
    kept_columns,
    newer_sql,
    same_row_sql,
)
from penstock.warehouse.duckdb_tables import object_table

ACTION = ident(f"{RESERVED_PREFIX}action")
TIE = "'tie'"  # an action until settled: the incoming order_by equals the stored one
FINAL = ident(f"{RESERVED_PREFIX}final")  # the key's last insert or update: the row that stays
STORED = ident(f"{RESERVED_PREFIX}stored")  # the key has a stored row
REPEATS = ident(f"{RESERVED_PREFIX}repeats")  # the key's rows in the chunk
RANK = ident(f"{RESERVED_PREFIX}rank")
BEST = ident(f"{RESERVED_PREFIX}best")  # the seq of the greatest row before this one
WRITES = f"{ACTION} IN ('insert', 'update')"


def _stored_name(index: int) -> str:
    """The stored row's value of the contract's `index`-th column, beside the incoming one."""
    return f"{RESERVED_PREFIX}stored_{index}"


def _classify(obj: ObjectSpec, new: str, old: str, old_key: str) -> str:
    return (
        f"CASE WHEN {old_key} IS NULL THEN 'insert' "
        f"WHEN {same_row_sql(obj, new, old)} THEN 'unchanged' "
        f"WHEN {newer_sql(obj, new, old)} THEN 'update' ELSE 'stale' END"
    )


def merge_chunk(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, chunk: Chunk
) -> dict[int, ModeCounts]:
    table = object_table(obj)
    if chunk.single and is_empty(conn, table):
        # an initial load of one batch: every row is new, so a plain insert does the work
        (batch,) = chunk.items
        return {batch.seq: ModeCounts(inserted=insert_rows(conn, obj, chunk))}
    kept = kept_columns(conn, obj)
    actions = chunk.temp("merge")
    conn.execute(f"CREATE TEMP TABLE {actions} AS {_actions_sql(obj, chunk, table, kept)}")
    try:
        if _splits_ties(obj, chunk):
            _settle_ties(conn, obj, actions, table)
        counts = per_batch(
            conn,
            chunk,
            f"count(*) FILTER ({ACTION} = 'insert'), count(*) FILTER ({ACTION} = 'update'), "
            f"count(*) FILTER ({ACTION} = 'unchanged'), count(*) FILTER ({ACTION} = 'stale')",
            actions,
        )
        updated = sum(c[1] for c in counts.values())
        written = sum(c[0] + c[1] for c in counts.values())
        on = join_on("t", "s", obj.key)
        if updated:
            conn.execute(
                f"DELETE FROM {table} t USING (SELECT {idents(obj.key)} FROM {actions} "
                f"WHERE {FINAL} AND {STORED}) s WHERE {on}"
            )
        if written:
            columns = idents([*obj.stored_columns, *kept])
            conn.execute(
                f"INSERT INTO {table} ({columns}, _batch_id, _loaded_at) "
                f"SELECT {idents([*obj.stored_columns, *kept], 'a.')}, {chunk.value('batch_id')}, "
                f"{chunk.value('loaded_at')} FROM {actions} a{chunk.join('a')} WHERE a.{FINAL}"
            )
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {actions}")
    return {
        seq: ModeCounts(inserted=i, updated=u, unchanged=n, stale=s)
        for seq, (i, u, n, s) in counts.items()
    }


def _splits_ties(obj: ObjectSpec, chunk: Chunk) -> bool:
    """Whether the chunk's rows are classified by order_by first (see the module's doc): one
    batch, and an order_by that is a contract column (so a row whose order_by differs from
    the stored one is never the same row)."""
    return chunk.single and obj.order_by is not None and obj.order_by in obj.stored_columns


def _classify_by_order(obj: ObjectSpec, old_key: str) -> str:
    """`_classify` without the full comparison: a row whose order_by equals the stored one's is
    a tie, for `_settle_ties`."""
    ob = ident(obj.order_by or "")
    return (
        f"CASE WHEN {old_key} IS NULL THEN 'insert' "
        f"WHEN s.{ob} IS NOT DISTINCT FROM t.{ob} THEN {TIE} "
        f"WHEN {newer_sql(obj, 's', 't')} THEN 'update' ELSE 'stale' END"
    )


def _settle_ties(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, actions: str, table: str
) -> None:
    """The tied rows: unchanged when every contract column equals the stored row's, else an
    update (at an equal order_by the later batch wins: a correction), as `_classify` says."""
    (ties,) = conn.execute(f"SELECT count(*) FROM {actions} WHERE {ACTION} = {TIE}").fetchone()  # type: ignore[misc]
    if not ties:
        return
    same = same_row_sql(obj, "a", "t")
    conn.execute(
        f"UPDATE {actions} AS a SET {ACTION} = CASE WHEN {same} THEN 'unchanged' ELSE 'update' "
        f"END, {FINAL} = NOT ({same}) FROM {table} t "
        f"WHERE {join_on('t', 'a', obj.key)} AND a.{ACTION} = {TIE}"
    )


def _actions_sql(obj: ObjectSpec, chunk: Chunk, table: str, kept: list[str]) -> str:
    """Each incoming row with its action, whether it is its key's final row, whether the key
    is stored, and the kept columns' stored values."""
    cols = list(obj.stored_columns)
    keys = idents(obj.key, "s.")
    first_key = f"t.{ident(obj.key[0])}"
    kept_sql = "".join(f", t.{ident(c)}" for c in kept)
    classify = (
        _classify_by_order(obj, first_key)
        if _splits_ties(obj, chunk)
        else _classify(obj, "s", "t", first_key)
    )
    head = (
        f"SELECT {idents(cols, 's.')}, s.{SEQ}{kept_sql}, {first_key} IS NOT NULL AS {STORED}, "
        f"{classify} AS {ACTION}"
    )
    joined = f"FROM {chunk.source} s LEFT JOIN {table} t ON {join_on('t', 's', obj.key)}"
    if chunk.single:
        return f"{head}, {ACTION} IN ('insert', 'update') AS {FINAL} {joined}"
    stored_values = "".join(
        f", t.{ident(c)} AS {ident(_stored_name(i))}" for i, c in enumerate(cols)
    )
    rest = [ident(c) for c in [*cols, SEQ, *kept]]
    rest_sql = ", ".join([*rest, STORED])
    order = (
        f"{ident(obj.order_by)} ASC NULLS FIRST, {SEQ}" if obj.order_by else SEQ
    )  # the greatest row wins
    stored_row = ", ".join(
        [
            *(ident(k) for k in obj.key),
            *(
                f"{ident(_stored_name(i))} AS {ident(c)}"
                for i, c in enumerate(cols)
                if c not in obj.key
            ),
            f"0 AS {SEQ}",
            *(ident(c) for c in kept),
            f"true AS {STORED}",
        ]
    )
    pkeys = idents(obj.key)
    return f"""
        WITH joined AS (
            {head}{stored_values}, count(*) OVER (PARTITION BY {keys}) AS {REPEATS} {joined}
        ),
        -- a key in one batch of the chunk: classified against the stored row alone
        single AS (
            SELECT {rest_sql}, {ACTION}, {WRITES} AS {FINAL} FROM joined WHERE {REPEATS} = 1
        ),
        -- a key in several batches: its stored row (seq 0) and its incoming rows in seq order
        timeline AS (
            SELECT {rest_sql} FROM joined WHERE {REPEATS} > 1
            UNION ALL BY NAME
            SELECT DISTINCT {stored_row} FROM joined WHERE {REPEATS} > 1 AND {STORED}
        ),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY {pkeys} ORDER BY {order}) AS {RANK}
            FROM timeline
        ),
        compared AS (
            SELECT *, arg_max({SEQ}, {RANK}) OVER (
                PARTITION BY {pkeys} ORDER BY {SEQ}
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS {BEST}
            FROM ranked
        ),
        repeated AS (
            SELECT {", ".join(f"p.{c}" for c in rest)}, p.{STORED},
                   {_classify(obj, "p", "r", f"r.{SEQ}")} AS {ACTION}
            FROM compared p LEFT JOIN ranked r ON {join_on("p", "r", obj.key)}
                 AND r.{SEQ} = p.{BEST}
            WHERE p.{SEQ} > 0
        )
        SELECT * FROM single
        UNION ALL BY NAME
        SELECT *, {WRITES} AND {SEQ} = max(CASE WHEN {WRITES} THEN {SEQ} END)
                  OVER (PARTITION BY {pkeys}) AS {FINAL}
        FROM repeated
    """
