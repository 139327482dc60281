"""Quarantine purges: the record of which batches' quarantined rows were deleted, and when.

`penstock quarantine purge OBJECT --before DATE` deletes the quarantined rows of the batches
loaded before DATE (engine/quarantine_purge.py). The stage zone still holds those batches'
raw rows, so a rebuild (or a load a rebuild left to the next run) would quarantine them
again: the purge is therefore recorded here, in `<lake>/purges/<object>.json`, before anything
is deleted, and every later load of those batches leaves their rows out of the quarantine.
Deleting the record brings them back at the next rebuild.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from penstock.errors import TerminalError
from penstock.lake.atomic import write_json_atomic

PURGES_DIR = "purges"


@dataclass(frozen=True)
class PurgeRecord:
    """One purge: the batches whose quarantined rows it deleted (`rows` of them then)."""

    object: str
    before: datetime
    purged_at: datetime
    batch_ids: tuple[str, ...]
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "before": self.before.isoformat(),
            "purged_at": self.purged_at.isoformat(),
            "batch_ids": list(self.batch_ids),
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PurgeRecord:
        return cls(
            object=str(data["object"]),
            before=datetime.fromisoformat(data["before"]),
            purged_at=datetime.fromisoformat(data["purged_at"]),
            batch_ids=tuple(str(b) for b in data["batch_ids"]),
            rows=int(data["rows"]),
        )


def purges_path(lake_root: Path, object_name: str) -> Path:
    return lake_root / PURGES_DIR / f"{object_name}.json"


def read_purges(lake_root: Path, object_name: str) -> list[PurgeRecord]:
    """The object's purges, oldest first (none when the file does not exist)."""
    path = purges_path(lake_root, object_name)
    if not path.is_file():
        return []
    try:
        return [PurgeRecord.from_dict(d) for d in json.loads(path.read_text())]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TerminalError(f"{path}: unreadable purge record: {exc}", file=str(path)) from exc


def purged_batches(lake_root: Path, object_name: str) -> frozenset[str]:
    """Every batch whose quarantined rows a purge deleted."""
    return frozenset(b for p in read_purges(lake_root, object_name) for b in p.batch_ids)


def add_purge(lake_root: Path, record: PurgeRecord) -> None:
    """Append `record` to its object's purges (the file replaced atomically)."""
    records = [*read_purges(lake_root, record.object), record]
    write_json_atomic(purges_path(lake_root, record.object), [r.to_dict() for r in records])
