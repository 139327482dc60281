"""Windows of a database object: what one extraction reads, and the watermark it advances.

A window is `cursor >= low AND cursor <= high` (both inclusive; `low` None: from the first
row) plus the rows whose cursor is NULL (no window would hold them otherwise; the key makes
them unchanged when read again), or the whole relation when the object has no cursor. `high`
is the relation's `max(cursor)` when the window was planned, so a window's rows are fixed by
its bounds (and by what was committed when it was read). The watermark is the `high` of the
latest staged batch of the same read (`read`: a hash of the source, the table or query and
the cursor): it lives in that batch's manifest, which is committed before the batch loads
and loads in the warehouse ledger's transaction. A run killed before the manifest is written
left nothing (the window is read again, the same batch); killed after, the batch is pending
and loads on the next run before any later window, which starts at its `high`. So no window
is skipped or read twice into the warehouse.

A window that reads exactly what the latest batch of the read holds (the same bounds, the
same bytes) is that batch: a quiet source stages nothing. Any other window is a new batch whose
id is the object plus a hash of the window, the bytes staged and the latest batch's id: the
same extraction repeated after a crash is the same batch, and a table that goes back to an
earlier state (A, B, then A again) is a new batch that loads, not the first one's repeat.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from penstock.lake import StagedBatch
from penstock.lake.stage import extraction_order


@dataclass(frozen=True)
class Window:
    read: str
    cursor: str | None = None
    low: str | None = None
    high: str | None = None
    partitions: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Window:
        return cls(**data)

    def describe(self) -> str:
        if self.cursor is None:
            return "full"
        low = "start" if self.low is None else self.low
        return f"{self.cursor} {low} .. {self.high}"


def last_batch(batches: Sequence[StagedBatch], read: str) -> StagedBatch | None:
    """The latest staged batch (skipped ones too: their rows were decided on) of the same
    read, or None: its window's `high` is the watermark."""
    mine = [b for b in batches if b.manifest.window and b.manifest.window.get("read") == read]
    return max(mine, key=extraction_order) if mine else None


def window_of(batch: StagedBatch) -> Window:
    assert batch.manifest.window is not None
    return Window.from_dict(batch.manifest.window)


def repeats(latest: StagedBatch | None, window: Window, digest: str) -> bool:
    """Does `window`, whose bytes hash to `digest`, hold exactly what `latest` holds?"""
    return (
        latest is not None
        and latest.manifest.content_hash == digest
        and window_of(latest).to_dict() == window.to_dict()
    )


def window_batch_id(
    object_name: str, window: Window, digest: str, latest: StagedBatch | None
) -> str:
    after = latest.batch_id if latest is not None else ""
    text = "\0".join((json.dumps(window.to_dict(), sort_keys=True), digest, after))
    return f"{object_name}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def read_identity(source: str, relation: str, cursor: str | None) -> str:
    """What makes two windows windows of the same read (a change starts a full read)."""
    text = json.dumps([source, relation, cursor])
    return hashlib.sha256(text.encode()).hexdigest()[:20]
