"""`penstock quarantine purge OBJECT --before DATE`: delete the quarantined rows of the batches
loaded before DATE, for good (lake/purges.py says why a record is kept).

Order, so that a process killed at any point leaves nothing half done that the next purge or
rebuild does not finish: the record first (the lake's `purges/<object>.json`), then the
warehouse's quarantine rows (one transaction), then the lake's quarantine files (a batch's own
file removed, a chunk's file written again without those batches' rows, atomically). The
ledger is history: it keeps each batch's `rows_quarantined`, the count at its load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from penstock.catalog import Project
from penstock.defaults import DEFAULT_WAIT_SECONDS
from penstock.engine.quarantine_view import object_spec
from penstock.engine.session import Session
from penstock.instants import parse_instant
from penstock.lake.purges import PurgeRecord, add_purge, purged_batches
from penstock.lake.stage import CHUNK_PREFIX, Lake
from penstock.sql import literal
from penstock.warehouse.quarantine_files import drop_rows_from_files


@dataclass(frozen=True)
class PurgeResult:
    object: str
    before: datetime
    batches: dict[str, int]  # batch id -> its quarantined rows deleted (or to delete)
    dry_run: bool

    @property
    def rows(self) -> int:
        return sum(self.batches.values())


def parse_before(text: str) -> datetime:
    """`--before`: a date (midnight UTC) or a timestamp (UTC unless it has an offset)."""
    at = parse_instant(text, "--before")
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def purge_quarantine(
    project: Project,
    object_name: str,
    before: datetime,
    *,
    dry_run: bool = False,
    wait: float = DEFAULT_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> PurgeResult:
    """Delete (or, with `dry_run`, count) the quarantined rows of the object's batches
    loaded before `before`."""
    obj = object_spec(project, object_name)
    with Session(project, wait=wait, on_wait=on_wait, command="quarantine purge") as session:
        found = session.warehouse.quarantined_before(obj, before)
        result = PurgeResult(obj.name, before, found, dry_run)
        if dry_run or not found:
            return result
        add_purge(
            session.lake.root,
            PurgeRecord(obj.name, before, datetime.now(UTC), tuple(found), result.rows),
        )
        session.warehouse.delete_quarantine(obj, list(found))
        drop_lake_rows(session.lake, session.warehouse.conn, obj.name, set(found))
        return result


def drop_lake_rows(
    lake: Lake, conn: duckdb.DuckDBPyConnection, object_name: str, batch_ids: set[str]
) -> None:
    """Remove these batches' rows from the object's quarantine files in the lake."""
    for batch_id in batch_ids:
        lake.quarantine_path(object_name, batch_id).unlink(missing_ok=True)
    ids = ", ".join(literal(b) for b in sorted(batch_ids))
    chunks = [p for p in lake.quarantine_files(object_name) if p.name.startswith(CHUNK_PREFIX)]
    drop_rows_from_files(conn, chunks, f"q._batch_id IN ({ids})")


def purged(lake: Lake, object_name: str) -> frozenset[str]:
    """The object's batches whose quarantined rows were purged (never quarantined again)."""
    return purged_batches(lake.root, object_name)
