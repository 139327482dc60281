"""The contract every source kind fulfils: discover items, stage one item as a raw batch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import duckdb

from penstock.catalog import ObjectSpec
from penstock.lake import Lake, StagedBatch


@dataclass(frozen=True)
class SourceItem:
    """One unit of extraction (a file); its batch id derives from its content."""

    object: str
    source: str
    path: Path
    display_name: str
    size_bytes: int
    mtime_ns: int
    content_hash: str

    @property
    def batch_id(self) -> str:
        return batch_id_for(self.object, self.content_hash)


def batch_id_for(object_name: str, content_hash: str) -> str:
    """Deterministic: the same content for the same object is always the same batch."""
    return f"{object_name}-{content_hash[:20]}"


class Source(Protocol):
    """A source kind. Implementations live one per module in `penstock.sources`."""

    def discover(self, obj: ObjectSpec, known: dict[tuple[str, int, int], str]) -> list[SourceItem]:
        """Every item currently offered for `obj`, in extraction order.

        `known` maps (display_name, size, mtime_ns) to a content hash already computed, so
        unchanged items are not read again.
        """
        ...

    def stage(
        self, conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, item: SourceItem, lake: Lake
    ) -> StagedBatch:
        """Write `item` into the stage zone as raw rows; return the committed batch."""
        ...
