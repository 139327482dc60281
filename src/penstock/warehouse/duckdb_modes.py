"""The load modes for one batch: append, replace, merge (SCD2 in `duckdb_scd2`).

Each is the one-batch case of `duckdb_chunk.apply_batches`, which loads n batches at once; the
SQL they share (counts, the merge rules, the SCD2 row hash) is in `duckdb_mode_sql`. `source`
is a relation of the batch's validated, deduplicated rows (the contract's columns).
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from penstock.catalog import ObjectSpec
from penstock.catalog.objects import LoadMode
from penstock.warehouse.duckdb_chunk import SEQ, ChunkBatch, apply_mode
from penstock.warehouse.duckdb_mode_sql import (
    WRITTEN_BY_LOADER,
    ModeCounts,
    row_hash_sql,
    valid_from_sql,
)

__all__ = [
    "WRITTEN_BY_LOADER",
    "ModeCounts",
    "append",
    "load_one",
    "merge",
    "replace",
    "row_hash_sql",
    "valid_from_sql",
]


def load_one(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    load: LoadMode,
    source: str,
    batch: ChunkBatch,
) -> ModeCounts:
    """Load one batch (`source`: its rows, without the chunk's seq column) by mode `load`."""
    tagged = f"(SELECT *, CAST({batch.seq} AS INTEGER) AS {SEQ} FROM {source})"
    (counts,) = apply_mode(conn, obj, load, tagged, [batch])
    return counts


def _batch(
    batch_id: str, loaded_at: datetime, extracted_at: datetime | None = None, rows: int = 0
) -> ChunkBatch:
    return ChunkBatch(1, batch_id, extracted_at or loaded_at, loaded_at, rows)


def append(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    batch_id: str,
    loaded_at: datetime,
) -> ModeCounts:
    return load_one(conn, obj, "append", source, _batch(batch_id, loaded_at))


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
    return load_one(conn, obj, "replace", source, _batch(batch_id, loaded_at, rows=rows))


def merge(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    batch_id: str,
    loaded_at: datetime,
) -> ModeCounts:
    """A new key is inserted; a differing row that is not older replaces the stored one (and
    takes this batch's `_batch_id`/`_loaded_at`); an identical row is unchanged and writes
    nothing; an older differing row is stale (`duckdb_chunk_merge`)."""
    return load_one(conn, obj, "merge", source, _batch(batch_id, loaded_at))
