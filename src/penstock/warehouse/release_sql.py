"""The SQL a quarantine release runs in the warehouse, the same on both engines: the released
rows leave the quarantine, the rows still failing take their reasons now, and each batch's
ledger row moves its counts to match (`Warehouse.release_rows`)."""

from __future__ import annotations

from typing import Any

from penstock.warehouse.base import ReleaseLoad
from penstock.warehouse.duckdb_mode_sql import ModeCounts


def drop_released_sql(quarantine: str, released: str) -> str:
    """Delete the quarantine rows named in `released` (batch_id, row_number)."""
    return (
        f"DELETE FROM {quarantine} USING {released} r "
        f"WHERE {quarantine}._batch_id = r.batch_id AND {quarantine}._row_number = r.row_number"
    )


def new_reasons_sql(quarantine: str, failing: str) -> str:
    """Give the quarantine rows in `failing` (batch_id, row_number, reasons) their reasons."""
    return (
        f"UPDATE {quarantine} SET _reasons = f.reasons FROM {failing} f "
        f"WHERE {quarantine}._batch_id = f.batch_id AND {quarantine}._row_number = f.row_number"
    )


def ledger_update_sql(ledger: str, mark: str) -> str:
    """One batch's ledger row after a release (`mark`: the driver's parameter marker), with
    `ledger_updates` as its parameters."""
    return (
        f"UPDATE {ledger} SET rows_loaded = rows_loaded + {mark}, "
        f"rows_duplicate = rows_duplicate + {mark}, "
        f"rows_quarantined = rows_quarantined - {mark}, "
        f"rows_inserted = rows_inserted + {mark}, rows_updated = rows_updated + {mark}, "
        f"rows_unchanged = rows_unchanged + {mark}, rows_stale = rows_stale + {mark} "
        f"WHERE batch_id = {mark}"
    )


def ledger_updates(release: ReleaseLoad, by_batch: dict[str, ModeCounts]) -> list[tuple[Any, ...]]:
    """The parameters of `ledger_update_sql` for each batch the release touches: the rows it
    loaded (and the mode's counts of them) and the duplicates, out of its quarantined rows."""
    rows = []
    for batch_id, change in release.counts.items():
        c = by_batch.get(batch_id, ModeCounts())
        loaded, duplicate = change.loaded, change.duplicate
        stale = c.stale + change.stale
        rows.append(
            (
                loaded,
                duplicate,
                loaded + duplicate,
                c.inserted,
                c.updated,
                c.unchanged,
                stale,
                batch_id,
            )
        )
    return rows
