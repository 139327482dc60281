"""What the micro-batch load modes share: the batches of a chunk, their temp table, the
per-batch counts and the columns a table keeps that the contract no longer names.

A chunk is n staged batches loaded in one go. `source` holds every loadable row of all of them,
each tagged with its batch (`SEQ`, 1..n, the order the batches load in) and its ordinal in that
batch; the batches' own values (batch id, load and extraction time) are a small relation that
the mode SQL joins on `SEQ`.
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
    """A chunk as the mode SQL sees it: the rows, the batches' temp table, the batches."""

    source: str  # a relation: contract columns, SEQ and the record's ordinal in its batch
    batches: str  # a relation: (seq INTEGER, batch_id, loaded_at, extracted_at)
    items: tuple[ChunkBatch, ...]
    prefix: str = field(
        default_factory=lambda: f"{RESERVED_PREFIX}chunk_{uuid.uuid4().hex[:12]}"
    )  # a unique prefix for the chunk's own temp tables

    @property
    def single(self) -> bool:
        """One batch: no key of the chunk can repeat across batches, so the windows that
        order a key's rows from several batches are left out of the SQL."""
        return len(self.items) == 1

    def temp(self, what: str) -> str:
        return ident(f"{self.prefix}_{what}")


def check_batches(obj: ObjectSpec, batches: Sequence[ChunkBatch]) -> None:
    seqs = [b.seq for b in batches]
    if sorted(seqs) != list(range(1, len(seqs) + 1)):
        raise WarehouseError(
            f"object {obj.name}: a chunk's batches must be numbered 1..{len(seqs)} once each, "
            f"got seq {seqs}",
            object=obj.name,
        )


def batch_relation(
    conn: duckdb.DuckDBPyConnection, batches: Sequence[ChunkBatch]
) -> tuple[str, str | None]:
    """The batches' own values as a relation (seq INTEGER, batch_id, loaded_at,
    extracted_at): (its SQL, the temp table that holds it, to drop, if any).

    One batch is inlined into the statements that read it; several go to a temp table, as
    DuckDB takes ~30 ms to parse a VALUES list of 1,000 rows, which 3 statements would pay."""
    rows = ", ".join(
        f"({b.seq}, {literal(b.batch_id)}, {_naive(b.loaded_at)}, {_naive(b.extracted_at)})"
        for b in batches
    )
    relation = (
        f"(SELECT CAST(seq AS INTEGER) AS seq, CAST(batch_id AS VARCHAR) AS batch_id, "
        f"CAST(loaded_at AS TIMESTAMP) AS loaded_at, "
        f"CAST(extracted_at AS TIMESTAMP) AS extracted_at "
        f"FROM (VALUES {rows}) v(seq, batch_id, loaded_at, extracted_at))"
    )
    if len(batches) == 1:
        return relation, None
    name = ident(f"{RESERVED_PREFIX}chunk_{uuid.uuid4().hex[:12]}_batches")
    conn.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {relation}")
    return name, name


def _naive(value: datetime) -> str:
    # as the single-batch modes write it: the wall time, the zone dropped
    return literal(value.replace(tzinfo=None))


def counts_by_seq(conn: duckdb.DuckDBPyConnection, sql: str) -> dict[int, tuple[int, ...]]:
    """Run `sql` (its first column the batch's seq, the others counts): counts per batch."""
    return {
        int(row[0]): tuple(int(v or 0) for v in row[1:]) for row in conn.execute(sql).fetchall()
    }


def insert_rows(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, chunk: Chunk, where: str = "true"
) -> int:
    """Insert the chunk's rows that `where` picks, each with its own batch's id and time."""
    cols = idents(obj.columns)
    (inserted,) = scalar_counts(
        conn,
        f"INSERT INTO {object_table(obj)} ({cols}, _batch_id, _loaded_at) "
        f"SELECT {idents(obj.columns, 's.')}, b.batch_id, b.loaded_at "
        f"FROM {chunk.source} s JOIN {chunk.batches} b ON b.seq = s.{SEQ} WHERE {where}",
    )
    return inserted
