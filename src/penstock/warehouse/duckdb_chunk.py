"""The load modes for a micro-batch: n staged batches applied to an object table at once.

`apply_batches` leaves the table, and returns for each batch the counts, exactly as loading the
batches one at a time in seq order does, each with its own batch id, load time and extraction
time (the definition: the single-batch modes as they were before micro-batches, kept in
tests/reference_modes.py, against which the property tests run). The number of statements
does not grow with n: every mode is set-based SQL over the chunk's rows (windows over the
chunk's keys order a key's rows across batches), and only the stored rows whose keys the chunk
holds are read or rewritten. One batch (`duckdb_modes`, `duckdb_scd2`) runs the same SQL with
the cross-batch windows left out and the batch's values as constants.

The function opens no transaction: the caller's load transaction (data, quarantine and one
ledger row per batch) holds it. Its temp tables are named `__penstock_chunk_<hex>_*` (the
batches' values when there are several; merge's classified rows; SCD2's versions and, for keys
it folds, their stored versions and folded histories) and are dropped before it returns, also
when a statement fails.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from penstock.catalog import ObjectSpec
from penstock.catalog.objects import LoadMode
from penstock.warehouse.duckdb_chunk_base import (
    SEQ,
    Chunk,
    ChunkBatch,
    batch_table,
    check_batches,
    counts_by_seq,
    insert_rows,
)
from penstock.warehouse.duckdb_chunk_merge import merge_chunk
from penstock.warehouse.duckdb_chunk_scd2 import scd2_chunk
from penstock.warehouse.duckdb_mode_sql import ModeCounts
from penstock.warehouse.duckdb_tables import object_table

__all__ = ["SEQ", "ChunkBatch", "apply_batches", "apply_mode"]


def apply_batches(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    batches: Sequence[ChunkBatch],
) -> list[ModeCounts]:
    """Load the chunk's rows into `obj`'s table by its load mode; one `ModeCounts` per batch,
    in `batches` order.

    `source` is a relation (a temp table or view name, or a parenthesised query) with the
    contract's columns, `SEQ` (INTEGER: the batch's `seq`) and the record's ordinal within its
    batch; each batch's rows are validated and deduplicated within the batch as the one-batch
    load view does (merge: one row per key; SCD2 dated by order_by: one row per key and
    order_by value), and no key column is NULL (validation holds such rows back); the ordinal
    is not read. The object table exists (`ensure_object_tables`) and holds one row per key
    (merge) or valid histories (SCD2), as the loader leaves it. `rows_loaded` only decides
    replace's kept_previous; every count comes from the rows themselves.
    """
    return apply_mode(conn, obj, obj.load, source, batches)


def apply_mode(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    load: LoadMode,
    source: str,
    batches: Sequence[ChunkBatch],
) -> list[ModeCounts]:
    """`apply_batches` by the load mode `load` (the single-batch functions name theirs)."""
    check_batches(obj, batches)
    if not batches:
        return []
    table = batch_table(conn, batches)
    chunk = Chunk(source, tuple(batches), table)
    try:
        if load == "append":
            by_seq = _append(conn, obj, chunk)
        elif load == "replace":
            by_seq = _replace(conn, obj, chunk)
        elif load == "merge":
            by_seq = merge_chunk(conn, obj, chunk)
        else:
            by_seq = scd2_chunk(conn, obj, chunk)
    finally:
        if table is not None:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    return [by_seq.get(b.seq, ModeCounts()) for b in batches]


def _rows_per_batch(
    conn: duckdb.DuckDBPyConnection, chunk: Chunk, seqs: Sequence[int]
) -> dict[int, int]:
    if not seqs:
        return {}
    listed = ", ".join(str(s) for s in seqs)
    counts = counts_by_seq(
        conn, f"SELECT {SEQ}, count(*) FROM {chunk.source} WHERE {SEQ} IN ({listed}) GROUP BY ALL"
    )
    return {seq: values[0] for seq, values in counts.items()}


def _append(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, chunk: Chunk
) -> dict[int, ModeCounts]:
    """Every row is inserted. One batch: the insert's own count; several: counted per batch
    first (a scan of the chunk's rows)."""
    if chunk.single:
        return {chunk.items[0].seq: ModeCounts(inserted=insert_rows(conn, obj, chunk))}
    rows = _rows_per_batch(conn, chunk, [b.seq for b in chunk.items])
    insert_rows(conn, obj, chunk)
    return {seq: ModeCounts(inserted=n) for seq, n in rows.items()}


def _replace(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, chunk: Chunk
) -> dict[int, ModeCounts]:
    """Each batch with rows to load replaces the table, so the last of them is what stays; a
    batch without (`rows_loaded` 0) keeps the previous snapshot. The earlier snapshots are
    counted, never written."""
    snapshots = sorted((b for b in chunk.items if b.rows_loaded > 0), key=lambda b: b.seq)
    counts = {b.seq: ModeCounts(kept_previous=True) for b in chunk.items if b.rows_loaded == 0}
    if not snapshots:
        return counts
    last = snapshots[-1]
    earlier = _rows_per_batch(conn, chunk, [b.seq for b in snapshots[:-1]])
    counts.update({b.seq: ModeCounts(inserted=earlier.get(b.seq, 0)) for b in snapshots[:-1]})
    conn.execute(f"DELETE FROM {object_table(obj)}")
    counts[last.seq] = ModeCounts(inserted=insert_rows(conn, obj, chunk, f"s.{SEQ} = {last.seq}"))
    return counts
