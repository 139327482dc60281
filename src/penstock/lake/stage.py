"""The stage zone: one directory per batch, holding the raw rows as Parquet and a manifest.

Layout: `<lake>/stage/<object>/<batch_id>/{data.csv or data.parquet, rejects.parquet,
manifest.json}` (a CSV read cleanly keeps its bytes, lake/csv_read.py; other rows are Parquet).
A batch is staged in a temporary directory (`.tmp-…`, the landing file's private copy beside
it), its manifest written last, and the directory renamed to the batch id: a batch exists
exactly when its directory does, complete with its manifest.

A landing file state (name, size, mtime, ctime, inode) already read is not read again: a batch's
manifest records the state it was staged from, and `<lake>/index/<object>.json` records the
other states read and the batch each belongs to (a second file holding a staged batch's bytes,
a file touched since it was staged); deleting it costs one re-read of those files, nothing else.
`<lake>/index/<object>.batches.json` caches the manifests and skip markers of the batch
directories (lake/stage_catalog.py), so a command does not open every batch's files; deleting
it costs one read of them.
A `skipped.json` beside the manifest records that the batch was skipped (lake/skip.py).
`<lake>/rejected/<object>/<batch_id>.json` records a landing file that cannot be read at all
and was never staged (lake/rejected.py).

`rebuild --restage` replaces a batch's parse (its data, rejects and manifest; same id) with a
new one: the old directory is renamed aside to `.replaced-<batch_id>`, the new one renamed into
place, and the aside copy removed. A process killed between the two renames leaves the old parse
aside, and the next command holding the warehouse lock puts it back (`finish_replacements`);
so a batch always has its old parse or its new one, never neither, and never half of each.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from penstock.faults import fault_point
from penstock.heap import bulk
from penstock.lake.atomic import (
    TMP_PREFIX,
    fsync_dir,
    make_durable,
    remove_stale_temps,
    write_json,
    write_json_atomic,
)
from penstock.lake.manifest import MANIFEST_NAME, REJECTS_NAME, SHARED_REJECTS, Manifest
from penstock.lake.rejected import REJECTED_DIR, Rejection
from penstock.lake.skip import SKIP_NAME, SkipMarker
from penstock.lake.stage_catalog import Catalog, Cataloged, catalog_path, dir_stamp, drop_catalog

# (source_file, size, mtime_ns, ctime_ns, inode); ctime and inode are None for a batch staged
# before they were recorded.
FileKey = tuple[str, int, int, int | None, int | None]

# The name of a quarantine file of several batches (a batch's own is named by its id)
CHUNK_PREFIX = "chunk-"

# What the temp sweep looks into in an object's stage directory: not the batches' own
# directories (a stage zone of 10,000 batches cost every command 0.15 s of it). The one temp
# file a batch's may hold, a skip marker's write killed halfway, goes with its next skip or
# unskip.
_NOT_BATCHES = frozenset({SHARED_REJECTS})

# The old parse of a batch being replaced; not a `.tmp-` name: the temp sweep must not take it.
ASIDE_PREFIX = ".replaced-"

# One listing of a stage directory answers "is this batch there?" for a whole chunk; it is
# taken when the directory holds at most this many entries per batch asked about (a missed
# stat through pathlib cost ~20 us here, a listed name ~1 us), so that a run adding a few
# files to a stage zone of a million batches keeps its few stat calls instead.
LIST_PER_ASKED = 16


@dataclass(frozen=True)
class StagedBatch:
    manifest: Manifest
    directory: Path
    skip: SkipMarker | None = None  # set when the batch was skipped: it is never loaded

    @property
    def batch_id(self) -> str:
        return self.manifest.batch_id

    @property
    def data_path(self) -> Path:
        return self.directory / self.manifest.data_file

    @property
    def rejects_path(self) -> Path:
        """The file holding the batch's malformed records: its own, or one shared with the
        batches staged with it (`rejects_shared`: rows keyed by `_batch_id`)."""
        if self.manifest.rejects_file is None:
            return self.directory / REJECTS_NAME
        return Path(os.path.normpath(self.directory / self.manifest.rejects_file))

    @property
    def rejects_shared(self) -> bool:
        return self.manifest.rejects_file is not None


class Lake:
    """The lake on the local file system (object storage comes later behind the same API)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._rejecting: set[str] | None = None  # objects with a rejected/ directory
        # whether `batches` writes the objects' catalogs: only while holding the warehouse
        # lock, as the commands that change batches do (lake/stage_catalog.py)
        self.keep_catalog = False
        # per object, the file index's entries as last read or written here
        self._indexed: dict[str, list[tuple[Any, ...]]] = {}

    def remove_stale_temps(self) -> int:
        """Finish the batch replacements a killed process left halfway, then delete its temp
        files. Call only while holding the warehouse lock, so that no other run can be writing
        into this lake."""
        self.finish_replacements()
        stage = self.root / "stage"
        return remove_stale_temps(
            self.root, only_into=lambda d: _NOT_BATCHES if d.parent == stage else None
        )

    def stage_dir(self, object_name: str) -> Path:
        return self.root / "stage" / object_name

    def batch_dir(self, object_name: str, batch_id: str) -> Path:
        return self.stage_dir(object_name) / batch_id

    def quarantine_dir(self, object_name: str) -> Path:
        return self.root / "quarantine" / object_name

    def quarantine_path(self, object_name: str, batch_id: str) -> Path:
        """The quarantine file of a batch loaded alone."""
        return self.quarantine_dir(object_name) / f"{batch_id}.parquet"

    def quarantine_chunk_path(self, object_name: str, batch_ids: Sequence[str]) -> Path:
        """The quarantine file of batches loaded together (a micro-batch): named by their ids,
        so loading the same chunk again writes the same file. Every row holds its
        `_batch_id`."""
        digest = hashlib.sha256("\n".join(batch_ids).encode()).hexdigest()[:24]
        return self.quarantine_dir(object_name) / f"{CHUNK_PREFIX}{digest}.parquet"

    def quarantine_files(self, object_name: str) -> list[Path]:
        """Every quarantine file of the object in the lake (a batch's or a chunk's)."""
        base = self.quarantine_dir(object_name)
        if not base.is_dir():
            return []
        return sorted(p for p in base.glob("*.parquet") if not p.name.startswith(TMP_PREFIX))

    def staging_dir(self, object_name: str) -> Path:
        """A fresh temporary directory to stage one batch in (removed if a run is killed)."""
        directory = self.stage_dir(object_name) / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
        directory.mkdir(parents=True)
        return directory

    def staged_names(self, object_name: str, asked: int) -> frozenset[str] | None:
        """The names in the object's stage directory now, when listing it costs less than
        `asked` look-ups of a batch would (else None: look each up). A batch id not among
        them has no directory (so no manifest) at the time of the listing."""
        base = self.stage_dir(object_name)
        try:
            links = base.stat().st_nlink
        except FileNotFoundError:
            return frozenset()
        # a directory's link count is 2 + its subdirectories (ext4 and most Unix file
        # systems; 1 where it is not kept: btrfs, or ext4 past 65,000 subdirectories)
        if links < 2 or links - 2 > LIST_PER_ASKED * asked:
            return None
        try:
            with os.scandir(base) as entries:
                return frozenset(entry.name for entry in entries)
        except FileNotFoundError:
            return frozenset()

    def staged_batch(self, object_name: str, batch_id: str) -> StagedBatch | None:
        """The complete staged batch with this id, if there is one."""
        directory = self.batch_dir(object_name, batch_id)
        manifest = directory / MANIFEST_NAME
        return StagedBatch(Manifest.read(manifest), directory) if manifest.is_file() else None

    def commit_batch(self, staging: Path, manifest: Manifest) -> StagedBatch | None:
        """Write the manifest last, then rename the staging directory to the batch id: from
        now on the batch exists. None (and the staging directory removed) if a batch with
        this id is already staged."""
        return self.commit_batches([(staging, manifest)])[0]

    def commit_batches(self, staged: Sequence[tuple[Path, Manifest]]) -> list[StagedBatch | None]:
        """`commit_batch` for several staging directories at once: every manifest written,
        everything made durable with one sync (a sync per file cost more than staging a small
        file), then each directory renamed to its batch id and the renames made durable."""
        todo: list[tuple[Path, Manifest, Path]] = []
        done: list[StagedBatch | None] = []
        fault_point("before_manifest")
        # the targets known absent (by one listing a stage directory): no stat of each
        absent: set[Path] = set()
        listed: dict[str, frozenset[str] | None] = {}
        for staging, manifest in staged:
            target = self.batch_dir(manifest.object, manifest.batch_id)
            if manifest.object not in listed:
                listed[manifest.object] = self.staged_names(manifest.object, len(staged))
            names = listed[manifest.object]
            if names is not None and target.name not in names:
                absent.add(target)
            elif (target / MANIFEST_NAME).is_file():
                shutil.rmtree(staging, ignore_errors=True)
                continue
            write_json(staging / MANIFEST_NAME, manifest.to_dict())
            todo.append((staging, manifest, target))
        if todo:
            # the batches' files and manifests are on disk before any is renamed
            make_durable([staging for staging, _, _ in todo])
        committed: dict[Path, StagedBatch] = {}
        parents: set[Path] = set()
        for staging, manifest, target in todo:
            if target in absent:
                absent.discard(target)  # a second batch of the same id meets the first
            elif target.exists():  # left incomplete by an older version killed mid-staging
                shutil.rmtree(target)
            staging.rename(target)
            parents.add(target.parent)
            committed[staging] = StagedBatch(manifest, target)
        for parent in parents:
            fsync_dir(parent)
        for staging, _ in staged:
            done.append(committed.get(staging))
        return done

    @bulk()
    def batches(self, object_name: str) -> list[StagedBatch]:
        """Every complete staged batch of an object, in extraction order. A batch whose
        directory is unchanged since the object's catalog read it comes from the catalog
        (lake/stage_catalog.py); a command holding the warehouse lock writes the catalog
        anew when it missed some."""
        base = self.stage_dir(object_name)
        try:
            with os.scandir(base) as listing:
                entries = [e for e in listing if not e.name.startswith(TMP_PREFIX)]
        except (FileNotFoundError, NotADirectoryError):
            return []
        catalog = Catalog.read(catalog_path(self.root, object_name), object_name)
        cataloged = catalog.entries
        found: list[StagedBatch] = []
        kept: list[tuple[str, Cataloged]] = []
        for entry in entries:
            directory = base / entry.name
            if entry.name.startswith(ASIDE_PREFIX):  # never cataloged: read as it is
                if _is_batch_dir(directory) and (directory / MANIFEST_NAME).is_file():
                    found.append(_read_batch(directory))
                continue
            try:
                if not entry.is_dir():
                    continue
                stamp = dir_stamp(entry)  # before the files are read: a later change shows
            except FileNotFoundError:
                continue
            read = cataloged.get(entry.name)
            if read is None or read.stamp != stamp:
                if not (directory / MANIFEST_NAME).is_file():
                    continue  # incomplete, or not a batch (the shared rejects' directory)
                batch = _read_batch(directory)
                read = Cataloged(stamp, batch.manifest, batch.skip)
            kept.append((entry.name, read))
            found.append(StagedBatch(read.manifest, directory, read.skip))
        if self.keep_catalog and (
            len(kept) != len(cataloged) or any(r is not cataloged.get(n) for n, r in kept)
        ):
            with contextlib.suppress(OSError):  # a cache: the next command reads the files
                catalog.write(kept)
        return sorted(found, key=extraction_order)

    def _forget_catalog(self, object_name: str) -> None:
        """Drop the object's catalog before a batch of it changes in place."""
        drop_catalog(catalog_path(self.root, object_name))

    def replace_batch(self, old: StagedBatch, parse: StagedBatch) -> StagedBatch:
        """Put a new parse of a staged batch in place of its old one; return the batch.

        `parse.directory` is a staging directory (`staging_dir`) holding the new data and
        rejects files; its manifest (same batch id) is written here, last. The skip marker
        belongs to the batch, not to the parse: it is carried over. The lake's quarantine file
        of the batch came from loading the old parse: it is removed (a replay writes it again).
        """
        manifest = parse.manifest
        if manifest.batch_id != old.batch_id or manifest.object != old.manifest.object:
            raise ValueError(f"{parse.directory}: not a parse of batch {old.batch_id}")
        target = self.batch_dir(manifest.object, manifest.batch_id)
        staging = parse.directory
        self._forget_catalog(manifest.object)
        skip = SkipMarker.read(target / SKIP_NAME)
        if skip is not None:
            write_json_atomic(staging / SKIP_NAME, skip.to_dict())
        write_json_atomic(staging / MANIFEST_NAME, manifest.to_dict())
        aside = target.with_name(f"{ASIDE_PREFIX}{target.name}")
        if aside.exists():  # left by an older replacement; the batch itself is complete
            shutil.rmtree(aside)
        target.rename(aside)
        fsync_dir(target.parent)
        fault_point("inside_restage_swap")
        staging.rename(target)
        fsync_dir(target.parent)
        fault_point("after_restage_swap")
        self._drop_aside(aside)
        return StagedBatch(manifest, target, skip)

    def finish_replacements(self) -> int:
        """Complete what a replacement killed halfway left (see `replace_batch`): the old
        parse goes back in place if the new one is not, else it is removed. Returns how many."""
        finished = 0
        for aside in sorted(self.root.glob(f"stage/*/{ASIDE_PREFIX}*")):
            target = aside.with_name(aside.name.removeprefix(ASIDE_PREFIX))
            self._forget_catalog(aside.parent.name)
            if (target / MANIFEST_NAME).is_file():
                self._drop_aside(aside)
            else:
                if target.exists():  # cannot happen with renames; never let it block the old
                    shutil.rmtree(target)
                aside.rename(target)
                fsync_dir(target.parent)
            finished += 1
        return finished

    def _drop_aside(self, aside: Path) -> None:
        """The replaced parse is gone for good: its directory and its quarantine file."""
        batch_id = aside.name.removeprefix(ASIDE_PREFIX)
        self.quarantine_path(aside.parent.name, batch_id).unlink(missing_ok=True)
        shutil.rmtree(aside, ignore_errors=True)

    def skip_batch(self, batch: StagedBatch, marker: SkipMarker) -> StagedBatch:
        """Mark `batch` skipped (atomically): run and rebuild will never load it."""
        self._forget_catalog(batch.manifest.object)
        remove_stale_temps(batch.directory)
        write_json_atomic(batch.directory / SKIP_NAME, marker.to_dict())
        return StagedBatch(batch.manifest, batch.directory, marker)

    def unskip_batch(self, batch: StagedBatch) -> StagedBatch:
        """Take a skip back: the batch loads again in its place on the next run."""
        self._forget_catalog(batch.manifest.object)
        remove_stale_temps(batch.directory)
        (batch.directory / SKIP_NAME).unlink(missing_ok=True)
        return StagedBatch(batch.manifest, batch.directory, None)

    def rejected_dir(self, object_name: str) -> Path:
        return self.root / REJECTED_DIR / object_name

    def rejections(self, object_name: str) -> list[Rejection]:
        """Every rejected file of an object, oldest rejection first."""
        base = self.rejected_dir(object_name)
        if not base.is_dir():
            return []
        found = [
            r
            for path in base.glob("*.json")
            if not path.name.startswith(".") and (r := Rejection.read(path)) is not None
        ]
        return sorted(found, key=lambda r: (r.rejected_at, r.batch_id))

    def rejected_count(self, object_name: str) -> int:
        """How many files of the object are rejected (without reading the records)."""
        if self._rejecting is None:  # which objects have rejections: one listing a session
            top = self.root / REJECTED_DIR
            self._rejecting = {p.name for p in top.iterdir()} if top.is_dir() else set()
        if object_name not in self._rejecting:
            return 0
        base = self.rejected_dir(object_name)
        if not base.is_dir():
            return 0
        return sum(1 for p in base.glob("*.json") if not p.name.startswith("."))

    def has_rejections(self, object_name: str) -> bool:
        """Whether the object has a rejected/ directory (else no rejection is recorded)."""
        return self.rejected_dir(object_name).is_dir()

    def rejection(self, object_name: str, batch_id: str) -> Rejection | None:
        """The rejection recorded for this batch id, if any."""
        return Rejection.read(self.rejected_dir(object_name) / f"{batch_id}.json")

    def reject(self, rejection: Rejection) -> None:
        """Record a rejected file (atomically; replaces an earlier record of the same id)."""
        path = self.rejected_dir(rejection.object) / f"{rejection.batch_id}.json"
        write_json_atomic(path, rejection.to_dict())
        if self._rejecting is not None:
            self._rejecting.add(rejection.object)

    def clear_rejection(self, rejection: Rejection) -> None:
        """Forget a rejection: the next run reads the file again."""
        directory = self.rejected_dir(rejection.object)
        path = directory / f"{rejection.batch_id}.json"
        if path.exists():
            path.unlink()
            fsync_dir(directory)

    def file_index_path(self, object_name: str) -> Path:
        return self.root / "index" / f"{object_name}.json"

    @bulk()
    def read_file_index(self, object_name: str) -> list[SeenFile]:
        """The landing file states already read for an object (empty when unreadable)."""
        try:
            entries = json.loads(self.file_index_path(object_name).read_bytes())
            found = [SeenFile(**entry) for entry in entries]
        except (OSError, ValueError, TypeError):
            return []
        self._indexed[object_name] = [s.row for s in found]
        return found

    @bulk()
    def write_file_index(
        self, object_name: str, seen: Iterable[SeenFile], staged: Iterable[StagedBatch] = ()
    ) -> None:
        """Replace the index with `seen` (the files offered now) less the states the `staged`
        batches' manifests record (`known_files` takes those from the manifests): a run that
        stages new files and meets no other state writes nothing, however many files it has
        seen before. No write when unchanged (from what this lake last read or wrote of it:
        only a command holding the warehouse lock writes it, so no other changes it
        meanwhile)."""
        recorded = {manifest_state(b).row for b in staged}
        rows = sorted((r for r in (s.row for s in seen) if r not in recorded), key=lambda r: r[0])
        if object_name not in self._indexed:
            self.read_file_index(object_name)
        if self._indexed.get(object_name) != rows:
            entries = [dict(zip(_SEEN_FIELDS, row, strict=True)) for row in rows]
            write_json_atomic(self.file_index_path(object_name), entries)
            self._indexed[object_name] = rows


def _read_batch(directory: Path) -> StagedBatch:
    """A batch from its own files."""
    return StagedBatch(
        Manifest.read(directory / MANIFEST_NAME), directory, SkipMarker.read(directory / SKIP_NAME)
    )


def _is_batch_dir(directory: Path) -> bool:
    """A batch's own directory; or, until the next command holding the lock puts it back, the
    old parse of a batch whose replacement was killed before the new parse was in place."""
    name = directory.name
    if name.startswith(TMP_PREFIX):
        return False
    if name.startswith(ASIDE_PREFIX):
        target = directory.with_name(name.removeprefix(ASIDE_PREFIX))
        return not (target / MANIFEST_NAME).is_file()
    return True


def extraction_order(batch: StagedBatch) -> tuple[datetime, str, str]:
    """Batches load and replay in the order they were extracted."""
    return (batch.manifest.extracted_at, batch.manifest.source_file, batch.batch_id)


@dataclass(frozen=True)
class SeenFile:
    """A landing file state that was read, and the batch its bytes belong to."""

    source_file: str
    size_bytes: int
    mtime_ns: int
    ctime_ns: int | None
    inode: int | None
    content_hash: str
    batch_id: str

    @property
    def key(self) -> FileKey:
        return (self.source_file, self.size_bytes, self.mtime_ns, self.ctime_ns, self.inode)

    @property
    def row(self) -> tuple[Any, ...]:
        """Every field, in order (`_SEEN_FIELDS`)."""
        return (*self.key, self.content_hash, self.batch_id)


_SEEN_FIELDS = tuple(f.name for f in fields(SeenFile))


def manifest_state(batch: StagedBatch) -> SeenFile:
    """The landing file state `batch` was staged from, as its manifest records it."""
    m = batch.manifest
    return SeenFile(
        m.source_file, m.size_bytes, m.mtime_ns, m.ctime_ns, m.inode, m.content_hash, batch.batch_id
    )


@bulk()
def known_files(
    batches: Iterable[StagedBatch],
    index: Iterable[SeenFile],
    rejected: Iterable[Rejection] = (),
) -> dict[FileKey, SeenFile]:
    """Landing file states already read → what they held, so unchanged files are not read
    again. A batch staged before ctime and inode were recorded matches on name, size and mtime
    only (its key has None for both). `rejected`: the rejections still in force; a file state
    that holds one is known too (its `batch_id` is the rejected one)."""
    known: dict[FileKey, SeenFile] = {}
    held: set[str] = set()  # the batch ids whose file states are worth remembering
    for b in batches:
        held.add(b.batch_id)
        seen = manifest_state(b)
        known[seen.key] = seen
    for r in rejected:
        held.add(r.batch_id)
        seen = SeenFile(
            r.source_file, r.size_bytes, r.mtime_ns, r.ctime_ns, r.inode, r.content_hash, r.batch_id
        )
        known.setdefault(seen.key, seen)
    for seen in index:
        # a batch deleted from the lake, or a rejection taken back, is read again
        if seen.batch_id in held:
            known.setdefault(seen.key, seen)
    return known
