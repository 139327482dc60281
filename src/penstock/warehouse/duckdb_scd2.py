"""SCD2 for one batch: a version history per key (the one-batch case of
`duckdb_chunk_scd2`, which places n batches at once).

The history of a key is built from the versions it received: one version per start
(`_valid_from`); at an equal start the later batch wins (a correction replaces the version at
that start; an identical one changes nothing and keeps the stored batch); versions are ordered
by start, a version equal to the one before it adds nothing (the earlier start stays), and each
is valid until the next one starts. So "as of T" finds exactly one row per key.

A version that adds nothing is not stored, so it cannot come back: stored Oslo from January,
then Oslo from March (nothing new), then a late Lima from February leaves Oslo, Lima; the same
three in the order January, February, March leave Oslo, Lima, Oslo. Apart from this and from
the later batch winning a tie, the history does not depend on the order batches arrive in.

Most batches only append to the end of histories; those rows take the fast path (close the
current version, insert the new one). A key with several versions in the batch, a late version
(older than the current one) or a differing version at the current start has its timeline
rebuilt from its stored versions plus the incoming ones (and, rewritten, its stored versions
lose the values of columns the contract no longer names).
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from penstock.catalog import ObjectSpec
from penstock.warehouse.duckdb_chunk import ChunkBatch
from penstock.warehouse.duckdb_mode_sql import ModeCounts
from penstock.warehouse.duckdb_modes import load_one

__all__ = ["scd2"]


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
    batch = ChunkBatch(1, batch_id, extracted_at, loaded_at, 0)
    return load_one(conn, obj, "scd2", source, batch)
