"""The contract every source kind fulfils: discover items, stage one item as a raw batch, and
(if the kind can) read a staged batch's item again with the object's current settings."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, Protocol

import duckdb

from penstock.catalog import ObjectSpec
from penstock.lake import Lake, SeenFile, StagedBatch
from penstock.lake.rejected import Rejection
from penstock.lake.stage import FileKey


@dataclass(frozen=True)
class SourceItem:
    """One unit of extraction (a file) as discovery saw it; its content is read when staged."""

    object: str
    source: str
    path: Path
    display_name: str
    size_bytes: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @property
    def key(self) -> FileKey:
        return (self.display_name, self.size_bytes, self.mtime_ns, self.ctime_ns, self.inode)


@dataclass(frozen=True)
class Discovery:
    """What a source offers for one object right now."""

    new: list[SourceItem] = field(default_factory=list)
    """Items not read before (new or changed files), in extraction order."""
    unchanged: list[SeenFile] = field(default_factory=list)
    """Items already read, unchanged since: what they held."""
    unsettled: list[str] = field(default_factory=list)
    """Items modified within the source's settle time, left for a later run."""


StageStatus = Literal[
    "staged", "duplicate", "changed", "restaged", "rejected", "still_rejected", "failed"
]


@dataclass(frozen=True)
class StageResult:
    """What staging one item did.

    `staged`: `batch` is the new batch. `duplicate`: the content (or, for replace, the delivery)
    is already staged as `batch`; nothing new was written. `changed`: the file changed while it
    was being read; nothing was kept and the file waits for the next run.

    `rejected`: the item cannot be read at all (`error`, a `SourceError` with `unreadable`);
    nothing was staged and `rejection` is the record for the caller to keep (`Lake.reject`).
    `still_rejected`: the content (for replace, the delivery) is already rejected under the
    same read settings (`rejection`, as recorded); nothing was parsed.

    `failed`: the item could not be staged for another reason (`error`: a read error, or one
    of the machine's); nothing was kept, and the file is read again by the next run.

    When restaging a batch: `restaged`: `batch` is the new parse, in a staging directory not
    yet in the stage zone (`Lake.replace_batch` puts it there; removing the directory discards
    it). `changed`: the item no longer holds the batch's bytes (or, for a delivery batch, is
    another delivery); nothing was kept.
    """

    status: StageStatus
    item: SourceItem
    batch: StagedBatch | None = None
    content_hash: str | None = None
    rejection: Rejection | None = None
    error: Exception | None = None

    @property
    def seen(self) -> SeenFile | None:
        """The index entry for the item's state, once its bytes belong to a staged batch (or
        to a rejected one)."""
        if self.batch is not None:
            batch_id = self.batch.batch_id
        elif self.rejection is not None:
            batch_id = self.rejection.batch_id
        else:
            return None
        if self.content_hash is None:
            return None
        i = self.item
        return SeenFile(
            i.display_name,
            i.size_bytes,
            i.mtime_ns,
            i.ctime_ns,
            i.inode,
            self.content_hash,
            batch_id,
        )


def batch_id_for(
    object_name: str, content_hash: str, delivery: tuple[str, int] | None = None
) -> str:
    """Deterministic: the same content for the same object is always the same batch.

    With `delivery` (file name, mtime_ns), as for `load: replace`, the id names one delivery of
    the content: the same bytes delivered again (a new file, or the file rewritten) are a new
    batch, because the newest snapshot defines the table even when it repeats an older one.
    """
    if delivery is None:
        return f"{object_name}-{content_hash[:20]}"
    name, mtime_ns = delivery
    digest = hashlib.sha256(f"{content_hash}\0{name}\0{mtime_ns}".encode()).hexdigest()
    return f"{object_name}-{digest[:20]}"


def holds_batch(batch: StagedBatch, content_hash: str, item: SourceItem) -> bool:
    """Whether `item`, whose bytes hash to `content_hash`, is what `batch` was staged from:
    the batch's id under either identity rule (content; or content and delivery, as for
    `load: replace`), so a change of load mode since staging does not hide a file."""
    name = batch.manifest.object
    return batch.batch_id in (
        batch_id_for(name, content_hash),
        batch_id_for(name, content_hash, (item.display_name, item.mtime_ns)),
    )


class Source(Protocol):
    """A source kind. Implementations live one per module in `penstock.sources`."""

    cannot_restage: ClassVar[str | None]
    """Why this kind cannot read a staged batch's item again (None: it can). A kind that
    stages typed rows straight from a database has no raw item to parse differently: its
    batches replay as staged."""

    def discover(self, obj: ObjectSpec, known: Mapping[FileKey, SeenFile]) -> Discovery:
        """Every item currently offered for `obj`: new ones in extraction order, unchanged
        ones (their state is in `known`) and those still settling."""
        ...

    def stage(
        self,
        conn: duckdb.DuckDBPyConnection,
        obj: ObjectSpec,
        item: SourceItem,
        lake: Lake,
        *,
        restaging: StagedBatch | None = None,
    ) -> StageResult:
        """Read `item` once, hashing exactly the bytes staged; commit it as a batch unless
        that batch exists or the item changed while being read. An item that cannot be read at
        all is not committed: `rejected`, with the rejection for the caller to record; one
        whose content is already rejected under the same read settings is not parsed.

        With `restaging`, `item` is that batch's item (`locate`): parse it again with the
        object's current settings into a staging directory, keeping the batch's id and
        extraction time, and commit nothing (`restaged`); or `changed` if its bytes are no
        longer the batch's."""
        ...

    def read_settings(self, obj: ObjectSpec) -> str:
        """A hash of `obj`'s settings that the parse of an item depends on: a rejected item is
        read again when they change."""
        ...

    def locate(self, obj: ObjectSpec, batch: StagedBatch) -> SourceItem | None:
        """The item `batch` was staged from, as it is now; None if the source no longer
        offers it. Only called when `cannot_restage` is None."""
        ...
