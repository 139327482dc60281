"""SCD2 for a micro-batch: n batches placed into the version histories at once.

Applied one at a time (`duckdb_scd2.scd2`), a batch changes a key's history H into
`drop(choose(H + the batch's versions))`: `choose` keeps one version per start (the incoming one,
unless both have the same content: then the stored one and its batch); `drop` removes a version
equal to the one before it; each remaining version runs until the next starts. A version that
`drop` removes is forgotten, so a later batch can make a different history than if it had come
first; the chunk therefore reproduces the batches' order, key by key:

* **Easy keys** (almost all of them): in every batch of the chunk the key has one version that
  opens its history, follows the current version, or equals the current version at its start:
  the single-batch fast path. Its outcome follows from windows over the key's rows in seq order:
  a row adds a version when its content differs from the row before it (or, for the first, from
  the stored current version); the current version it follows started at the last row that
  added one. The stored current version is closed by the first added version, each added
  version by the next.
* **Other keys** (several versions in one batch, a late version, a correction of the current
  start): their stored versions and the chunk's versions are folded batch by batch in SQL
  (`list_reduce` over the key's batches, `choose` and `drop` as list functions); the key's
  stored versions are deleted and the folded history inserted, as the single-batch timeline
  rebuild does (which also leaves the kept columns of such a key's stored versions NULL).

Counts per batch as the single-batch calls give them: a version that enters the history is
`inserted` when the key had no history before that batch, else `updated`; the others are
`unchanged`.
"""

from __future__ import annotations

import duckdb

from penstock.catalog import ObjectSpec
from penstock.lake.read import RESERVED_PREFIX
from penstock.sql import ident, idents, join_on
from penstock.warehouse.duckdb_chunk_base import SEQ, Chunk, per_batch
from penstock.warehouse.duckdb_mode_sql import ModeCounts, row_hash_sql, valid_from_sql
from penstock.warehouse.duckdb_tables import object_table


def _name(what: str) -> str:
    return ident(f"{RESERVED_PREFIX}{what}")


HASH, START = _name("hash"), _name("start")  # the incoming row's `_row_hash`, `_valid_from`
HAS_CURRENT, CURRENT_HASH, CURRENT_FROM = _name("has_current"), _name("cur_hash"), _name("cur_from")
VERSIONS = _name("versions")  # the key's versions in this row's batch
BASE_HASH, BASE_FROM = _name("base_hash"), _name("base_from")  # the current version it follows
ADDS = _name("adds")  # an easy row that adds a version
EASY = _name("easy")  # every row of the key takes the fast path
ACC, UNTIL, CLOSE = _name("acc"), _name("until"), _name("close")

# a folded history: versions by start; `seq` 0 for a stored version, else the batch's
POINT = "STRUCT(f TIMESTAMP, inc BOOLEAN, h VARCHAR, seq INTEGER)"
LOGGED = "STRUCT(seq INTEGER, f TIMESTAMP, new BOOLEAN)"  # a version that entered, when
WRITTEN = "_batch_id, _loaded_at, _valid_from, _valid_to, _is_current, _row_hash"


def scd2_chunk(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, chunk: Chunk
) -> dict[int, ModeCounts]:
    table = object_table(obj)
    versions = chunk.temp("scd2")
    stored, folded = chunk.temp("scd2_stored"), chunk.temp("scd2_folded")
    created = [versions]
    conn.execute(f"CREATE TEMP TABLE {versions} AS {_versions_sql(obj, chunk, table)}")
    try:
        easy = per_batch(
            conn,
            chunk,
            f"count(*) FILTER ({EASY} AND {ADDS} AND {BASE_HASH} IS NULL), "
            f"count(*) FILTER ({EASY} AND {ADDS} AND {BASE_HASH} IS NOT NULL), "
            f"count(*) FILTER ({EASY} AND NOT {ADDS}), count(*) FILTER (NOT {EASY}), "
            f"count(*) FILTER ({EASY} AND {ADDS} AND {HAS_CURRENT})",
            versions,
        )
        hard = any(c[3] for c in easy.values())
        counts = {
            seq: ModeCounts(inserted=c[0], updated=c[1], unchanged=c[2]) for seq, c in easy.items()
        }
        if hard:
            created += [stored, folded]
            _fold(conn, obj, table, versions, stored, folded)
            for seq, (i, u, n) in _folded_counts(conn, obj, chunk, versions, folded).items():
                c = counts[seq]
                counts[seq] = ModeCounts(
                    inserted=c.inserted + i, updated=c.updated + u, unchanged=c.unchanged + n
                )
            conn.execute(
                f"DELETE FROM {table} t USING {folded} k WHERE {join_on('t', 'k', obj.key)}"
            )
        if any(c[4] for c in easy.values()):
            _close_current(conn, obj, chunk, table, versions)
        cols = idents(obj.stored_columns)
        placed = (
            f" UNION ALL {_folded_rows_sql(obj, chunk, versions, stored, folded)}" if hard else ""
        )
        conn.execute(
            f"INSERT INTO {table} ({cols}, {WRITTEN}) "
            f"SELECT {cols}, _batch_id, _loaded_at, _valid_from, _valid_to, _valid_to IS NULL, "
            f"_row_hash FROM ({_easy_rows_sql(obj, chunk, versions)}{placed})"
        )
    finally:
        for name in created:
            conn.execute(f"DROP TABLE IF EXISTS {name}")
    return counts


def _versions_sql(obj: ObjectSpec, chunk: Chunk, table: str) -> str:
    """Each incoming row with its hash and start, the key's stored current version, and
    whether its key is easy (module docstring)."""
    keys = idents(obj.key, "i.")
    first_key = ident(obj.key[0])
    start = valid_from_sql(obj, "s", chunk.value("extracted_at"))
    # without dated versions a batch holds one row per key
    per_batch_key = keys if chunk.single else f"{keys}, i.{SEQ}"
    versions = f"count(*) OVER (PARTITION BY {per_batch_key})" if obj.versions_by_order_by else "1"
    by_seq = f"PARTITION BY {idents(obj.key)} ORDER BY {SEQ}"
    if chunk.single:
        prev_hash, last_added, easy = "NULL::VARCHAR", "NULL::TIMESTAMP", "{fast}"
    else:
        prev_hash = f"lag(i.{HASH}) OVER (PARTITION BY {keys} ORDER BY i.{SEQ})"
        last_added = (
            f"last_value(CASE WHEN {ADDS} THEN {START} END IGNORE NULLS) OVER ({by_seq} "
            f"ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
        )
        easy = f"bool_and({{fast}}) OVER (PARTITION BY {idents(obj.key)})"
    fast = (
        f"{VERSIONS} = 1 AND ({BASE_HASH} IS NULL OR {START} > {BASE_FROM} "
        f"OR ({START} = {BASE_FROM} AND {HASH} = {BASE_HASH}))"
    )
    return f"""
        WITH incoming AS (
            SELECT {idents(obj.stored_columns, "s.")}, CAST(s.{SEQ} AS INTEGER) AS {SEQ},
                   {row_hash_sql(obj, "s")} AS {HASH},
                   {start} AS {START}
            FROM {chunk.source} s{chunk.join("s")}
        ),
        joined AS (
            SELECT i.*, t.{first_key} IS NOT NULL AS {HAS_CURRENT}, t._row_hash AS {CURRENT_HASH},
                   t._valid_from AS {CURRENT_FROM}, {versions} AS {VERSIONS},
                   coalesce({prev_hash}, t._row_hash) AS {BASE_HASH}
            FROM incoming i LEFT JOIN {table} t ON {join_on("t", "i", obj.key)} AND t._is_current
        ),
        added AS (SELECT *, {HASH} IS DISTINCT FROM {BASE_HASH} AS {ADDS} FROM joined),
        based AS (SELECT *, coalesce({last_added}, {CURRENT_FROM}) AS {BASE_FROM} FROM added)
        SELECT *, {easy.replace("{fast}", fast)} AS {EASY} FROM based
    """


def _easy_rows_sql(obj: ObjectSpec, chunk: Chunk, versions: str) -> str:
    """The versions easy keys add, each valid until the key's next added version."""
    until = (
        "NULL::TIMESTAMP"
        if chunk.single
        else f"lead(v.{START}) OVER (PARTITION BY {idents(obj.key, 'v.')} ORDER BY v.{SEQ})"
    )
    return (
        f"SELECT {idents(obj.stored_columns, 'v.')}, {chunk.value('batch_id')} AS _batch_id, "
        f"{chunk.value('loaded_at')} AS _loaded_at, "
        f"v.{START} AS _valid_from, {until} AS _valid_to, v.{HASH} AS _row_hash "
        f"FROM {versions} v{chunk.join('v')} WHERE v.{EASY} AND v.{ADDS}"
    )


def _close_current(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, chunk: Chunk, table: str, versions: str
) -> None:
    """An easy key's stored current version ends where its first added version starts (one
    batch adds at most one per key)."""
    added = f"FROM {versions} WHERE {EASY} AND {ADDS} AND {HAS_CURRENT}"
    first = (
        f"SELECT {idents(obj.key)}, {START} AS {CLOSE} {added}"
        if chunk.single
        else f"SELECT {idents(obj.key)}, min({START}) AS {CLOSE} {added} GROUP BY ALL"
    )
    conn.execute(
        f"UPDATE {table} AS t SET _valid_to = c.{CLOSE}, _is_current = false "
        f"FROM ({first}) c WHERE {join_on('t', 'c', obj.key)} AND t._is_current"
    )


def _step_sql() -> str:
    """One batch folded into a key's history: `acc` {state: POINT[], log: LOGGED[]}, `b` the
    batch's versions of the key (POINT[], inc = true). `list_transform([e], lambda x: ...)[1]`
    binds e to x once (a let)."""
    candidates = (
        "list_sort(list_concat(list_transform(acc.state, "
        "lambda s: {'f': s.f, 'inc': false, 'h': s.h, 'seq': s.seq}), b))"
    )
    # one version per start (sorted by start, stored first): the incoming one, unless the
    # stored one has the same content
    choose = (
        "list_filter(c, lambda x, i: CASE WHEN x.inc "
        "THEN i = 1 OR c[i - 1].f <> x.f OR c[i - 1].h <> x.h "
        "ELSE i = len(c) OR c[i + 1].f <> x.f OR c[i + 1].h = x.h END)"
    )
    # a version equal to the one before it adds nothing
    drop = "list_filter(k, lambda x, i: i = 1 OR k[i - 1].h <> x.h)"
    entered = "[{'seq': x.seq, 'f': x.f, 'new': len(acc.state) = 0} for x in st if x.inc]"
    return (
        f"list_transform([{candidates}], lambda c: list_transform([{choose}], lambda k: "
        f"list_transform([{drop}], lambda st: "
        f"{{'state': st, 'log': list_concat(acc.log, {entered})}})[1])[1])[1]"
    )


def _fold(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    table: str,
    versions: str,
    stored: str,
    folded: str,
) -> None:
    """`stored`: the stored versions of the keys that are not easy; `folded`: each such key's
    history after the chunk's batches, and which incoming versions entered it (`ACC`)."""
    keys = idents(obj.key)
    conn.execute(
        f"CREATE TEMP TABLE {stored} AS "
        f"SELECT {idents(obj.stored_columns, 't.')}, t._batch_id, t._loaded_at, t._valid_from, "
        f"t._row_hash FROM {table} t SEMI JOIN (SELECT DISTINCT {keys} FROM {versions} "
        f"WHERE NOT {EASY}) k ON {join_on('t', 'k', obj.key)}"
    )
    conn.execute(
        f"""
        CREATE TEMP TABLE {folded} AS
        WITH initial AS (
            SELECT {keys}, list({{'f': _valid_from, 'inc': false, 'h': _row_hash, 'seq': 0}}
                                 ORDER BY _valid_from) AS {ACC}
            FROM {stored} GROUP BY ALL
        ),
        points AS (
            SELECT {keys}, {SEQ},
                   list({{'f': {START}, 'inc': true, 'h': {HASH}, 'seq': {SEQ}}}) AS {ACC}
            FROM {versions} WHERE NOT {EASY} GROUP BY ALL
        ),
        batches AS (SELECT {keys}, list({ACC} ORDER BY {SEQ}) AS {ACC} FROM points GROUP BY ALL)
        SELECT {idents(obj.key, "p.")}, list_reduce(p.{ACC}, lambda acc, b: {_step_sql()},
               {{'state': coalesce(q.{ACC}, []::{POINT}[]), 'log': []::{LOGGED}[]}}) AS {ACC}
        FROM batches p LEFT JOIN initial q ON {join_on("p", "q", obj.key)}
        """
    )


def _folded_counts(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, chunk: Chunk, versions: str, folded: str
) -> dict[int, tuple[int, ...]]:
    """Per batch, the folded keys' incoming versions that entered a new key's history, that
    entered a stored key's, and that did not enter."""
    keys = idents(obj.key)
    entered = f"""(
        SELECT v.{SEQ}, l.e FROM (SELECT {keys}, {SEQ}, {START} FROM {versions} WHERE NOT {EASY}) v
        LEFT JOIN (SELECT {keys}, unnest({ACC}.log) AS e FROM {folded}) l
             ON {join_on("v", "l", obj.key)} AND l.e.seq = v.{SEQ} AND l.e.f = v.{START})"""
    return per_batch(
        conn,
        chunk,
        "count(*) FILTER (e.new), count(*) FILTER (NOT e.new), count(*) FILTER (e IS NULL)",
        entered,
    )


def _folded_rows_sql(obj: ObjectSpec, chunk: Chunk, versions: str, stored: str, folded: str) -> str:
    """The folded histories as rows: a stored version keeps its batch, an incoming one takes
    its own; each runs until the next starts."""
    keys = idents(obj.key)
    placed = (
        f"(SELECT {keys}, e.f AS {START}, e.h AS {HASH}, e.seq AS {SEQ}, "
        f"lead(e.f) OVER (PARTITION BY {keys} ORDER BY e.f) AS {UNTIL} "
        f"FROM (SELECT {keys}, unnest({ACC}.state) AS e FROM {folded}))"
    )
    return (
        f"SELECT {idents(obj.stored_columns, 'h.')}, h._batch_id, h._loaded_at, "
        f"p.{START} AS _valid_from, "
        f"p.{UNTIL} AS _valid_to, p.{HASH} AS _row_hash "
        f"FROM {placed} p JOIN {stored} h ON {join_on('p', 'h', obj.key)} "
        f"AND h._valid_from = p.{START} WHERE p.{SEQ} = 0 "
        f"UNION ALL "
        f"SELECT {idents(obj.stored_columns, 'v.')}, {chunk.value('batch_id')}, "
        f"{chunk.value('loaded_at')}, p.{START}, p.{UNTIL}, "
        f"p.{HASH} FROM {placed} p JOIN {versions} v ON {join_on('p', 'v', obj.key)} "
        f"AND v.{SEQ} = p.{SEQ} AND v.{START} = p.{START} "
        f"{chunk.join('p')} WHERE p.{SEQ} > 0"
    )
