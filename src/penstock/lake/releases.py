"""Quarantine releases: the record of which quarantined rows a release loaded, and with which
corrections.

`penstock quarantine release OBJECT` re-validates quarantined rows against the current contract
(engine/quarantine_release.py) and loads those that pass. The stage zone still holds those
rows as they were delivered, so a rebuild would quarantine a row again whose release needed a
correction (`--set COLUMN=EXPR`): each release is therefore recorded here, in
`<lake>/releases/<object>.json`, before the warehouse changes, and every later load of those
batches (a rebuild) releases the same rows again with the same corrections, so the table ends
as the release left it. Deleting the record undoes that at the next rebuild.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from penstock.errors import TerminalError
from penstock.lake.atomic import write_json_atomic

RELEASES_DIR = "releases"


@dataclass(frozen=True)
class ReleaseRecord:
    """One release: the rows it loaded, by batch (record numbers), and the corrections
    (`sets`: contract column → DuckDB SQL over the row's raw text) applied to them first."""

    object: str
    released_at: datetime
    where: str | None
    sets: dict[str, str]
    rows: dict[str, tuple[int, ...]]

    @property
    def count(self) -> int:
        return sum(len(r) for r in self.rows.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "released_at": self.released_at.isoformat(),
            "where": self.where,
            "set": dict(self.sets),
            "rows": {b: list(r) for b, r in self.rows.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReleaseRecord:
        return cls(
            object=str(data["object"]),
            released_at=datetime.fromisoformat(data["released_at"]),
            where=None if data.get("where") is None else str(data["where"]),
            sets={str(k): str(v) for k, v in dict(data.get("set") or {}).items()},
            rows={str(b): tuple(int(n) for n in r) for b, r in dict(data["rows"]).items()},
        )


def releases_path(lake_root: Path, object_name: str) -> Path:
    return lake_root / RELEASES_DIR / f"{object_name}.json"


def read_releases(lake_root: Path, object_name: str) -> list[ReleaseRecord]:
    """The object's releases, oldest first (none when the file does not exist)."""
    path = releases_path(lake_root, object_name)
    if not path.is_file():
        return []
    try:
        return [ReleaseRecord.from_dict(d) for d in json.loads(path.read_text())]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TerminalError(f"{path}: unreadable release record: {exc}", file=str(path)) from exc


def add_release(lake_root: Path, record: ReleaseRecord) -> None:
    """Append `record` to its object's releases (the file replaced atomically)."""
    records = [*read_releases(lake_root, record.object), record]
    write_json_atomic(releases_path(lake_root, record.object), [r.to_dict() for r in records])
