"""Releasing quarantined rows into a DuckDB warehouse (`DuckDBWarehouse.release_rows`), in one
transaction: the rows by the object's load mode, each as of its own batch; the released rows
out of the quarantine and the failing ones with their reasons now; each batch's ledger row
moved to match (warehouse/release_sql.py, shared with PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import duckdb

from penstock.catalog import ObjectSpec
from penstock.errors import WarehouseError, first_line
from penstock.faults import fault_point
from penstock.sql import ident, idents
from penstock.warehouse.base import ReleaseLoad
from penstock.warehouse.duckdb_mode_sql import ModeCounts
from penstock.warehouse.duckdb_tables import LEDGER, object_table, quarantine_table
from penstock.warehouse.release_sql import (
    drop_released_sql,
    ledger_update_sql,
    ledger_updates,
    new_reasons_sql,
)

if TYPE_CHECKING:
    from penstock.warehouse.duckdb import DuckDBWarehouse


def stored_versions(
    warehouse: DuckDBWarehouse, obj: ObjectSpec, columns: Sequence[str], into: str
) -> bool:
    """A temp table `into` of `columns` and `_batch_id` of the object table's rows
    (distinct); False when the table does not exist (nothing is created)."""
    if not warehouse.table_columns(obj):
        return False
    warehouse.conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {ident(into)} AS SELECT DISTINCT "
        f"{idents([*columns, '_batch_id'])} FROM {object_table(obj)}"
    )
    return True


def release_rows(
    warehouse: DuckDBWarehouse, obj: ObjectSpec, release: ReleaseLoad
) -> dict[str, ModeCounts]:
    """Load released quarantine rows in one transaction; the mode's counts by batch id."""
    conn, chunk = warehouse.conn, release.chunk
    seqs = list(range(1, len(chunk.batches) + 1))
    warehouse.forget_catalog()  # the release adds rows and moves ledger counts
    conn.execute("BEGIN TRANSACTION")
    warehouse.in_transaction = True
    try:
        counts = warehouse.apply_modes(obj, chunk, seqs, release.loaded_at)
        q = quarantine_table(obj)
        conn.execute(drop_released_sql(q, ident(release.released)))
        conn.execute(new_reasons_sql(q, ident(release.failing)))
        by_batch = {chunk.batches[s - 1].batch_id: c for s, c in counts.items()}
        updates = ledger_updates(release, by_batch)
        if updates:  # DuckDB refuses an empty executemany
            conn.executemany(ledger_update_sql(LEDGER, "?"), updates)
        fault_point("inside_release_transaction")
        conn.execute("COMMIT")
        warehouse.wrote(obj)
    except duckdb.Error as exc:
        conn.execute("ROLLBACK")
        raise WarehouseError(
            f"releasing quarantined rows into {obj.table_name} failed: {first_line(exc)}",
            object=obj.name,
        ) from exc
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        warehouse.in_transaction = False
        warehouse.forget_catalog()  # what a worker's view read meanwhile is stale now
    return by_batch
