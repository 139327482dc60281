"""What every warehouse adapter offers, and what a load reports back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import duckdb

from penstock.catalog import ObjectSpec
from penstock.quality.validate import ChunkValidation
from penstock.warehouse.partition_ledger import PartitionReplace
from penstock.warehouse.quarantine import QuarantinePage, QuarantineSelection

if TYPE_CHECKING:
    from penstock.warehouse.duckdb_mode_sql import ModeCounts

LEDGER_SCHEMA = "penstock"
LEDGER_TABLE = "loads"
QUARANTINE_SCHEMA = "quarantine"
SYSTEM_COLUMNS = ("_batch_id", "_loaded_at")
SCD2_COLUMNS = ("_valid_from", "_valid_to", "_is_current", "_row_hash")


@dataclass(frozen=True)
class LoadResult:
    """What one batch did to its table. `skipped` means the ledger already had it."""

    batch_id: str
    skipped: bool
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_stale: int = 0
    loaded_at: datetime | None = None
    kept_previous: bool = False  # replace: nothing to load, the previous snapshot stays


@dataclass(frozen=True)
class ReleaseCounts:
    """What a release does to one batch's accounting: rows leaving its quarantine into the
    table (`loaded`, of which `stale` lost to a stored row before the load) and rows that
    leave it as duplicates of a released row of the same key and batch."""

    loaded: int = 0
    duplicate: int = 0
    stale: int = 0


@dataclass(frozen=True)
class ReleaseLoad:
    """Quarantined rows that now pass, ready for `Warehouse.release_rows` (one transaction).

    `chunk.load_table` holds the rows to load by the load mode (`SEQ` i + 1 is the batch
    `chunk.batches[i]`, applied with its own batch id and `loaded_at[i]`, its ledger load
    time); `released` (batch_id, row_number) the rows that leave the quarantine; `failing`
    (batch_id, row_number, reasons) the rows that stay, with their reasons now. Both are
    tables of the adapter's DuckDB `conn`."""

    chunk: ChunkValidation
    loaded_at: list[datetime]
    released: str
    failing: str
    counts: dict[str, ReleaseCounts]


class Warehouse(Protocol):
    """One adapter per engine; capabilities are class constants.

    Validation runs in DuckDB whatever the warehouse engine: `conn` is that DuckDB (the DuckDB
    adapter validates in its own connection; a server engine holds an embedded, in-memory
    one) and `load_chunk` takes what it validated.
    """

    engine: ClassVar[str]
    supports_merge: ClassVar[bool]
    supports_transactional_ddl: ClassVar[bool]
    conn: duckdb.DuckDBPyConnection

    def ledger(self, since: datetime | None = None) -> list[dict[str, Any]]: ...

    def loaded_batches(self, object_name: str) -> set[str]: ...

    def loaded_batch_count(self, object_name: str) -> int: ...

    def batch_files(self, object_name: str) -> list[tuple[str, str | None]]: ...

    def load_chunk(
        self,
        obj: ObjectSpec,
        chunk: ChunkValidation,
        *,
        run_id: str,
        loaded_at: Sequence[datetime],
        replacing: PartitionReplace | None = None,
    ) -> list[LoadResult]: ...

    def clear_partition(
        self, obj: ObjectSpec, replacing: PartitionReplace, run_id: str
    ) -> None: ...

    def partitions(self, object_name: str) -> dict[str, dict[str, Any]]: ...

    def table_columns(self, obj: ObjectSpec) -> list[str]: ...

    def table_rows(self, obj: ObjectSpec) -> int | None: ...

    def quarantine_page(
        self, obj: ObjectSpec, selection: QuarantineSelection
    ) -> QuarantinePage: ...

    def quarantine_reasons(self, obj: ObjectSpec) -> list[tuple[str, int]]: ...

    def write_quarantine_file(
        self, chunk: ChunkValidation, seqs: Sequence[int], target: Path
    ) -> None: ...

    def quarantine_count(self, obj: ObjectSpec, *, loaded: bool | None = None) -> int: ...

    def quarantined_before(self, obj: ObjectSpec, before: datetime) -> dict[str, int]: ...

    def delete_quarantine(self, obj: ObjectSpec, batch_ids: list[str]) -> None: ...

    def stored_versions(self, obj: ObjectSpec, columns: Sequence[str], into: str) -> bool: ...

    def release_rows(self, obj: ObjectSpec, release: ReleaseLoad) -> dict[str, ModeCounts]: ...

    def reset_object(self, obj: ObjectSpec) -> dict[str, datetime]: ...

    def original_load_times(self, obj: ObjectSpec) -> dict[str, datetime]: ...

    def for_worker(self) -> Warehouse: ...

    def close_worker(self) -> None: ...

    def close(self) -> None: ...
