"""What the micro-batch load modes share: the batches of a chunk, their values, the
per-batch counts and the columns a table keeps that the contract no longer names.

A chunk is n staged batches loaded in one go. `source` holds every loadable row of all of them,
each tagged with its batch (`SEQ`, 1..n, the order the batches load in) and its ordinal in that
batch; the batches' own values (batch id, load and extraction time) are a small temp table that
the mode SQL joins on `SEQ` (or, for one batch, constants in the SQL).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from penstock.catalog import ObjectSpec
from penstock.errors import WarehouseError
from penstock.lake.read import RESERVED_PREFIX
from penstock.sql import ident, idents, literal
from penstock.warehouse.duckdb_mode_sql import scalar_counts
from penstock.warehouse.duckdb_tables import object_table

# the batch a source row belongs to (INTEGER, 1..n): the column `source` must carry
SEQ = f"{RESERVED_PREFIX}seq"
BATCH = "b"  # the alias of the batches' values in the mode SQL


@dataclass(frozen=True)
class ChunkBatch:
    """One staged batch of a chunk."""

    seq: int  # 1..n: the order the batches load in (the source's SEQ)
    batch_id: str
    extracted_at: datetime  # the batch's extraction time (SCD2's fallback `_valid_from`)
    loaded_at: datetime  # the batch's load time (a rebuild replays each batch with its own)
    rows_loaded: int  # loadable rows of the batch (replace keeps the previous snapshot at 0)


@dataclass(frozen=True)
class Chunk:
    """A chunk as the mode SQL sees it: the rows, the batches and their values."""

    source: str  # a relation: contract columns, SEQ and the record's ordinal in its batch
    items: tuple[ChunkBatch, ...]
    batches: str | None  # several batches: the temp table of their values (`batch_table`)
    prefix: str = field(
        default_factory=lambda: f"{RESERVED_PREFIX}chunk_{uuid.uuid4().hex[:12]}"
    )  # a unique prefix for the chunk's own temp tables

    @property
    def single(self) -> bool:
        """One batch: no key of the chunk can repeat across batches, so the windows that
        order a key's rows from several batches are left out of the SQL, and the batch's
        values are constants."""
        return len(self.items) == 1

    def temp(self, what: str) -> str:
        return ident(f"{self.prefix}_{what}")

    def join(self, rows: str) -> str:
        """The join that gives the rows aliased `rows` their batch's values (`value`)."""
        if self.batches is None:
            return ""
        return f" JOIN {self.batches} {BATCH} ON {BATCH}.seq = {rows}.{SEQ}"

    def value(self, name: str) -> str:
        """A row's batch's `batch_id`, `loaded_at` or `extracted_at` (after `join`)."""
        if self.batches is not None:
            return f"{BATCH}.{name}"
        return _batch_values(self.items[0])[name]


def check_batches(obj: ObjectSpec, batches: Sequence[ChunkBatch]) -> None:
    seqs = [b.seq for b in batches]
    if sorted(seqs) != list(range(1, len(seqs) + 1)):
        raise WarehouseError(
            f"object {obj.name}: a chunk's batches must be numbered 1..{len(seqs)} once each, "
            f"got seq {seqs}",
            object=obj.name,
        )


def batch_table(conn: duckdb.DuckDBPyConnection, batches: Sequence[ChunkBatch]) -> str | None:
    """Several batches: a temp table of their values (seq INTEGER, batch_id, loaded_at,
    extracted_at), which the mode SQL joins on SEQ. One batch: None, its values are inlined
    as constants (no join, no extra statement)."""
    if len(batches) == 1:
        return None
    rows = ", ".join(
        "(" + ", ".join([str(b.seq), *_batch_values(b).values()]) + ")" for b in batches
    )
    name = ident(f"{RESERVED_PREFIX}chunk_{uuid.uuid4().hex[:12]}_batches")
    conn.execute(
        f"CREATE TEMP TABLE {name} AS SELECT CAST(seq AS INTEGER) AS seq, "
        f"CAST(batch_id AS VARCHAR) AS batch_id, CAST(loaded_at AS TIMESTAMP) AS loaded_at, "
        f"CAST(extracted_at AS TIMESTAMP) AS extracted_at "
        f"FROM (VALUES {rows}) v(seq, batch_id, loaded_at, extracted_at)"
    )
    return name


def _batch_values(batch: ChunkBatch) -> dict[str, str]:
    return {
        "batch_id": literal(batch.batch_id),
        "loaded_at": _naive(batch.loaded_at),
        "extracted_at": _naive(batch.extracted_at),
    }


def _naive(value: datetime) -> str:
    # as the single-batch modes write it: the wall time, the zone dropped
    return literal(value.replace(tzinfo=None))


def counts_by_seq(conn: duckdb.DuckDBPyConnection, sql: str) -> dict[int, tuple[int, ...]]:
    """Run `sql` (its first column the batch's seq, the others counts): counts per batch."""
    rows = conn.execute(sql).fetchall()
    return {int(row[0]): tuple(int(v or 0) for v in row[1:]) for row in rows}


def per_batch(
    conn: duckdb.DuckDBPyConnection, chunk: Chunk, counts: str, relation: str
) -> dict[int, tuple[int, ...]]:
    """The aggregates `counts` over `relation` (which carries SEQ), per batch; one batch
    needs no grouping (a hash aggregate over 2M rows is not free)."""
    if chunk.single:
        return counts_by_seq(conn, f"SELECT {chunk.items[0].seq}, {counts} FROM {relation}")
    return counts_by_seq(conn, f"SELECT {SEQ}, {counts} FROM {relation} GROUP BY {SEQ}")


def insert_rows(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, chunk: Chunk, where: str = "true"
) -> int:
    """Insert the chunk's rows that `where` picks, each with its own batch's id and time."""
    cols = idents(obj.stored_columns)
    (inserted,) = scalar_counts(
        conn,
        f"INSERT INTO {object_table(obj)} ({cols}, _batch_id, _loaded_at) "
        f"SELECT {idents(obj.stored_columns, 's.')}, {chunk.value('batch_id')}, "
        f"{chunk.value('loaded_at')} FROM {chunk.source} s{chunk.join('s')} WHERE {where}",
    )
    return inserted
