"""Replacing one partition of an object, inside the load's transaction, on any warehouse.

A backfill (engine/backfill.py) loads a partition's batches with `PartitionReplace`: before
they load, in the same transaction, the partition's rows go from the object table (the rows
of the batches it loaded before, of the batches being loaded, and, with a partition column,
every row whose column falls in it), with those batches' quarantine rows and ledger rows; after
they load, `penstock.partitions` records the partition (its batches, rows, run). A failure
rolls all of it back: the partition is as it was. The SQL is plain enough for DuckDB and
PostgreSQL alike (literals quoted by penstock.sql).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from penstock.sql import ident, literal

PARTITIONS_TABLE = "partitions"


@dataclass(frozen=True)
class PartitionReplace:
    """What a partition's load replaces (see the module docstring)."""

    key: str  # 2026-01-03
    grain: str
    start: datetime  # naive, UTC
    end: datetime
    column: str | None  # rows whose column is in [start, end) go
    column_type: str | None  # date | timestamp | timestamptz
    batch_ids: tuple[str, ...]  # batches whose rows go (loaded before for the partition)

    def condition(self, batch_ids: Sequence[str]) -> str:
        """The rows of the object table the partition replaces."""
        ids = sorted({*self.batch_ids, *batch_ids})
        parts = []
        if ids:
            parts.append(f"_batch_id IN ({', '.join(literal(i) for i in ids)})")
        if self.column is not None:
            parts.append(self.within())
        return " OR ".join(parts) or "FALSE"

    def within(self) -> str:
        """The rows whose partition column falls in the partition."""
        assert self.column is not None
        col = ident(self.column)
        return f"({col} >= {self._bound(self.start)} AND {col} < {self._bound(self.end)})"

    def _bound(self, at: datetime) -> str:
        text = at.isoformat(sep=" ")
        if self.column_type == "timestamptz":
            return f"CAST('{text}+00' AS TIMESTAMP WITH TIME ZONE)"
        return f"CAST('{text}' AS TIMESTAMP)"


def partitions_ddl(table: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (object VARCHAR NOT NULL, "
        "partition_key VARCHAR NOT NULL, grain VARCHAR NOT NULL, starts_at TIMESTAMP NOT NULL, "
        "ends_at TIMESTAMP NOT NULL, batch_ids VARCHAR NOT NULL, rows_loaded BIGINT NOT NULL, "
        "rows_quarantined BIGINT NOT NULL, run_id VARCHAR NOT NULL, loaded_at TIMESTAMP NOT NULL, "
        "PRIMARY KEY (object, partition_key))"
    )


def replace_partition(
    run: Callable[[str], object],
    *,
    object_name: str,
    table: str | None,
    quarantine: str | None,
    ledger: str,
    partitions: str,
    replacing: PartitionReplace,
    batch_ids: Sequence[str],
) -> None:
    """Delete what the partition replaces (`table`/`quarantine`: None when they do not exist
    yet), inside the caller's transaction."""
    gone = sorted({*replacing.batch_ids, *batch_ids})
    if table is not None:
        run(f"DELETE FROM {table} WHERE {replacing.condition(batch_ids)}")
    if gone:
        ids = ", ".join(literal(i) for i in gone)
        if quarantine is not None:
            run(f"DELETE FROM {quarantine} WHERE _batch_id IN ({ids})")
        run(f"DELETE FROM {ledger} WHERE object = {literal(object_name)} AND batch_id IN ({ids})")
    run(partitions_ddl(partitions))


def record_partition(
    run: Callable[[str], object],
    *,
    object_name: str,
    partitions: str,
    replacing: PartitionReplace,
    batch_ids: Sequence[str],
    rows_loaded: int,
    rows_quarantined: int,
    run_id: str,
    loaded_at: datetime,
) -> None:
    """The partition's row in `penstock.partitions`, replacing the one before."""
    run(
        f"DELETE FROM {partitions} WHERE object = {literal(object_name)} "
        f"AND partition_key = {literal(replacing.key)}"
    )
    values = [
        object_name,
        replacing.key,
        replacing.grain,
        replacing.start,
        replacing.end,
        json.dumps(list(batch_ids)),
        rows_loaded,
        rows_quarantined,
        run_id,
        loaded_at.replace(tzinfo=None),
    ]
    run(f"INSERT INTO {partitions} VALUES ({', '.join(literal(v) for v in values)})")


def read_partitions(
    rows: Sequence[Sequence[object]],
) -> dict[str, dict[str, object]]:
    """`SELECT partition_key, batch_ids, rows_loaded, rows_quarantined, run_id, loaded_at`
    rows by partition key, with batch_ids as a list."""
    out: dict[str, dict[str, object]] = {}
    for key, ids, loaded, quarantined, run_id, at in rows:
        out[str(key)] = {
            "batch_ids": json.loads(str(ids)),
            "rows_loaded": loaded,
            "rows_quarantined": quarantined,
            "run_id": run_id,
            "loaded_at": at.replace(tzinfo=UTC) if isinstance(at, datetime) else at,  # UTC
        }
    return out


PARTITION_COLUMNS = "partition_key, batch_ids, rows_loaded, rows_quarantined, run_id, loaded_at"
