"""The `files` source: csv, jsonl, json and parquet files matched by a glob under a directory.

Each file is one batch whose id derives from its content hash (for `load: replace`, from the
content hash plus the delivered file's name and mtime: each delivery is a snapshot). A file is
copied into the lake while its bytes are hashed, and the copy is parsed, so a batch holds
exactly the bytes its id names. Values are staged raw: a CSV file read cleanly as its own bytes
(`sources.csv`, read again with the settings its manifest records), JSON Lines and JSON arrays
(`sources.jsonl`) as text exactly as written in Parquet, Parquet as its own types. Malformed
records (a CSV record that cannot be split or has the wrong number of fields, a JSON Lines line
or array element that is not a JSON object) and records holding bytes that are not valid in the
file's encoding are kept in the batch's rejects file with their record number, raw text and
reason (`malformed` or `encoding`), never dropped. A file that cannot be read at all (a reader's
`SourceError` with `unreadable`) is not staged: staging returns its rejection
(lake/rejected.py) for the run to record, and a file whose content is already rejected under the
same read settings is not parsed again.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from stat import S_ISREG
from typing import ClassVar

import duckdb

from penstock.catalog import CsvOptions, FilesSource, ObjectSpec, Project
from penstock.errors import SourceError
from penstock.heap import bulk
from penstock.lake import Lake, Manifest, SeenFile, StagedBatch
from penstock.lake.rejected import Rejection
from penstock.lake.stage import FileKey
from penstock.sources.base import Discovery, SourceItem, StageResult, batch_id_for, holds_batch
from penstock.sources.csv import CsvFacts
from penstock.sources.csv_text import ByteScan
from penstock.sources.file_staging import (
    KEEP_BUDGET,
    Copied,
    Parsing,
    begin_parse,
    copy_item,
    end_parse,
    parse,
)


class FilesSourceReader:
    """Reads the files of one `files` source."""

    cannot_restage: ClassVar[str | None] = None  # a landing file can always be parsed again

    def __init__(self, project: Project, name: str, spec: FilesSource) -> None:
        self.name = name
        self.spec = spec
        self.root = project.path(spec.path)
        self.project_root = project.root
        self._root_prefix = str(project.root).rstrip(os.sep) + os.sep

    @bulk()
    def discover(self, obj: ObjectSpec, known: Mapping[FileKey, SeenFile]) -> Discovery:
        if not self.root.is_dir():
            raise SourceError(
                f"source '{self.name}': directory {self.spec.path} does not exist "
                f"(resolved to {self.root})",
                source=self.name,
                file=str(self.root),
            )
        pattern = obj.files or "*"
        settle_ns = round(self.spec.settle_seconds * 1e9)
        now_ns = time.time_ns()
        found = Discovery()
        # ordered as paths order (by their parts), compared as tuples of strings: sorting
        # 10,000 paths with pathlib's own comparison took ~0.1 s of every run
        for path in sorted(self.root.glob(pattern), key=attrgetter("parts")):
            if path.name.startswith("."):
                continue
            stat = _file_stat(path)
            if stat is None:
                continue
            name = self._display(path)
            size, mtime = stat.st_size, stat.st_mtime_ns
            # the item's key (SourceItem.key), and the one of a batch staged before ctime and
            # inode were recorded; an item is made for a file not seen before only
            seen = known.get((name, size, mtime, stat.st_ctime_ns, stat.st_ino)) or known.get(
                (name, size, mtime, None, None)
            )
            if seen is not None:
                found.unchanged.append(seen)
            elif settle_ns and now_ns - mtime < settle_ns:
                found.unsettled.append(name)
            else:
                found.new.append(
                    SourceItem(
                        object=obj.name,
                        source=self.name,
                        path=path,
                        display_name=name,
                        size_bytes=size,
                        mtime_ns=mtime,
                        ctime_ns=stat.st_ctime_ns,
                        inode=stat.st_ino,
                    )
                )
        return found

    def _display(self, path: Path) -> str:
        text, root = str(path), self._root_prefix
        if text.startswith(root):  # what relative_to gives, for a tenth of its time
            return text[len(root) :]
        try:
            return str(path.relative_to(self.project_root))
        except ValueError:
            return text

    def locate(self, obj: ObjectSpec, batch: StagedBatch) -> SourceItem | None:
        """The landing file `batch` was staged from (the path its manifest names, even if the
        glob no longer matches it), as it is now; None when it is gone."""
        name = batch.manifest.source_file
        path = Path(name) if Path(name).is_absolute() else self.project_root / name
        try:
            stat = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        return SourceItem(
            object=obj.name,
            source=self.name,
            path=path,
            display_name=name,
            size_bytes=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            ctime_ns=stat.st_ctime_ns,
            inode=stat.st_ino,
        )

    def stage(
        self,
        conn: duckdb.DuckDBPyConnection,
        obj: ObjectSpec,
        item: SourceItem,
        lake: Lake,
        *,
        restaging: StagedBatch | None = None,
    ) -> StageResult:
        if restaging is None:
            return self.stage_many(conn, obj, [item], lake)[0]
        staging = lake.staging_dir(obj.name)
        try:
            copied = copy_item(obj, item, staging)
            # parse the batch's bytes again, under its own id
            if copied is None or not holds_batch(restaging, copied.digest, item):
                shutil.rmtree(staging, ignore_errors=True)
                return StageResult("changed", item)
            (outcome,) = parse(conn, obj, self.name, [(copied, restaging.batch_id)])
            if isinstance(outcome, Exception):
                raise outcome
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        # the caller puts it in place (Lake.replace_batch)
        reparsed = StagedBatch(restaging.manifest.reparsed(outcome), staging)
        return StageResult("restaged", item, reparsed, copied.digest)

    def stage_many(
        self,
        conn: duckdb.DuckDBPyConnection,
        obj: ObjectSpec,
        items: Sequence[SourceItem],
        lake: Lake,
        extracted_at: datetime | None = None,
    ) -> list[StageResult]:
        """Stage `items` (in order) together: each is copied and hashed, the new ones parsed
        in shared reads, and all committed with one sync. One result per item; an item that
        failed alone has status `failed` and its `error`. Of items with equal content only the
        first is parsed; the others share its fate (duplicate, or still rejected).
        `extracted_at`: the batches' extraction time (default now)."""
        return self.finish_many(conn, self.prepare_many(conn, obj, items, lake, extracted_at))

    def prepare_many(
        self,
        conn: duckdb.DuckDBPyConnection,
        obj: ObjectSpec,
        items: Sequence[SourceItem],
        lake: Lake,
        extracted_at: datetime | None = None,
    ) -> PreparedItems:
        """The first half of `stage_many`: every item copied and hashed, what needs no CSV
        read parsed, the CSV files planned (`PreparedItems.parsing`)."""
        prepared = PreparedItems(obj, lake, [None] * len(items))
        try:
            # what is staged or rejected already, looked up once for the chunk
            lookup = _Lookup(lake.staged_names(obj.name, len(items)), lake.has_rejections(obj.name))
            kept = 0  # the bytes of copies kept in memory until they are parsed
            for index, item in enumerate(items):
                staging = lake.staging_dir(obj.name)
                try:
                    ready = self._prepare(obj, item, lake, staging, lookup, kept < KEEP_BUDGET)
                except Exception as exc:
                    ready = StageResult("failed", item, error=exc)
                if isinstance(ready, StageResult):
                    shutil.rmtree(staging, ignore_errors=True)
                    prepared.results[index] = ready
                    continue
                copied, batch_id = ready
                kept += len(copied.content or b"")
                if batch_id in prepared.leaders:
                    shutil.rmtree(staging, ignore_errors=True)
                    leader = prepared.leaders[batch_id]
                    prepared.followers.append((index, leader, copied.parsed()))
                    continue
                prepared.leaders[batch_id] = index
                prepared.todo.append((index, copied, batch_id))
            copies = [(c, b) for _, c, b in prepared.todo]
            prepared.parsing = begin_parse(conn, obj, self.name, copies, extracted_at)
        except BaseException:
            prepared.discard()
            raise
        return prepared

    def finish_many(
        self,
        conn: duckdb.DuckDBPyConnection,
        prepared: PreparedItems,
        facts: Sequence[CsvFacts] | None = None,
        scans: Sequence[ByteScan] | None = None,
    ) -> list[StageResult]:
        """The second half of `stage_many`: the planned CSV files read (or decided from what
        a read of them found: `facts` and `scans`), every batch committed with one sync."""
        return self.commit_parsed(self.parse_many(conn, prepared, facts, scans))

    def parse_many(
        self,
        conn: duckdb.DuckDBPyConnection,
        prepared: PreparedItems,
        facts: Sequence[CsvFacts] | None = None,
        scans: Sequence[ByteScan] | None = None,
    ) -> ParsedItems:
        """`finish_many` up to the commit: every copy parsed in its staging directory (a
        Dask worker does this much; the run commits the parts in order)."""
        obj, results = prepared.obj, prepared.results
        assert prepared.parsing is not None
        try:
            parsed = end_parse(conn, prepared.parsing, facts, scans)
            # the copies' bytes kept for the parse are not kept longer (nor sent back from a
            # Dask worker): the plans holding them are done with
            prepared.parsing = None
            prepared.todo = [(i, copied.parsed(), b) for i, copied, b in prepared.todo]
            commit: list[tuple[int, Copied, Manifest]] = []
            for (index, copied, batch_id), outcome in zip(prepared.todo, parsed, strict=True):
                if isinstance(outcome, Manifest):
                    commit.append((index, copied, outcome))
                    continue
                shutil.rmtree(copied.staging, ignore_errors=True)
                results[index] = self._failure(obj, copied, batch_id, outcome)
        except BaseException:
            prepared.discard()
            raise
        return ParsedItems(prepared, commit)

    def commit_parsed(self, parsed: ParsedItems) -> list[StageResult]:
        """Commit the parsed batches (one sync; a batch already staged under its id, by an
        earlier part of the same chunk, say, makes the item its duplicate); one result per
        item."""
        prepared, commit = parsed.prepared, parsed.commit
        obj, lake, results = prepared.obj, prepared.lake, prepared.results
        try:
            batches = lake.commit_batches([(c.staging, m) for _, c, m in commit])
        except BaseException:
            prepared.discard()
            raise
        for (index, copied, manifest), batch in zip(commit, batches, strict=True):
            if batch is None:  # staged meanwhile under the same id
                existing = lake.staged_batch(obj.name, manifest.batch_id)
                results[index] = StageResult("duplicate", copied.item, existing, copied.digest)
            else:
                results[index] = StageResult("staged", copied.item, batch, copied.digest)
        for index, leader, copied in prepared.followers:
            results[index] = _follow(results[leader], copied)
        return [r for r in results if r is not None]

    def _prepare(
        self,
        obj: ObjectSpec,
        item: SourceItem,
        lake: Lake,
        staging: Path,
        lookup: _Lookup,
        keep: bool,
    ) -> StageResult | tuple[Copied, str]:
        """Copy and hash `item`: the copy and its batch id, or why it is not parsed. `keep`:
        the copy may keep its bytes in memory (file_staging.KEEP_BUDGET)."""
        copied = copy_item(obj, item, staging, keep)
        if copied is None:
            return StageResult("changed", item)
        delivery = (item.display_name, item.mtime_ns) if obj.load == "replace" else None
        batch_id = batch_id_for(obj.name, copied.digest, delivery)
        existing = lake.staged_batch(obj.name, batch_id) if lookup.maybe_staged(batch_id) else None
        if existing is not None:
            return StageResult("duplicate", item, existing, copied.digest)
        rejected = lake.rejection(obj.name, batch_id) if lookup.rejecting else None
        if rejected is not None and rejected.read_settings == self.read_settings(obj):
            return StageResult(
                "still_rejected", item, content_hash=copied.digest, rejection=rejected
            )
        return copied, batch_id

    def _failure(
        self, obj: ObjectSpec, copied: Copied, batch_id: str, error: Exception
    ) -> StageResult:
        """An item whose parse failed: rejected when it cannot be read at all, else failed."""
        item = copied.item
        if isinstance(error, SourceError) and error.unreadable:
            rejection = self._rejection(obj, item, copied.digest, batch_id, error)
            return StageResult(
                "rejected", item, content_hash=copied.digest, rejection=rejection, error=error
            )
        return StageResult("failed", item, content_hash=copied.digest, error=error)

    def _rejection(
        self, obj: ObjectSpec, item: SourceItem, digest: str, batch_id: str, exc: SourceError
    ) -> Rejection:
        line = exc.fields.get("line")
        return Rejection(
            batch_id=batch_id,
            object=obj.name,
            source=self.name,
            source_file=item.display_name,
            content_hash=digest,
            size_bytes=item.size_bytes,
            mtime_ns=item.mtime_ns,
            ctime_ns=item.ctime_ns,
            inode=item.inode,
            format=obj.format or "csv",
            reason=exc.message,
            line=line if isinstance(line, int) else None,
            read_settings=self.read_settings(obj),
            rejected_at=datetime.now(UTC),
        )

    def read_settings(self, obj: ObjectSpec) -> str:
        """A hash of what the parse of a file depends on besides its bytes: the format and,
        for CSV, the `csv:` options (and, without a header, the contract's column names), for
        JSON `records:`."""
        fmt = obj.format or "csv"
        settings: dict[str, object] = {"format": fmt}
        if fmt == "csv":
            csv = obj.csv or CsvOptions()
            settings["csv"] = csv.model_dump(mode="json")
            if not csv.header:
                settings["columns"] = list(obj.columns)
        if fmt == "json" and obj.records is not None:  # the keys leading to the records
            settings["records"] = obj.records
        text = json.dumps(settings, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class _Lookup:
    """What one look at the lake told for a chunk: the names in the object's stage directory
    (None when it was not listed: each batch is looked up), and whether the object has any
    rejection. A batch staged meanwhile (by another part of the same chunk) is found when
    the batches are committed, with the same outcome (`commit_parsed`)."""

    staged: frozenset[str] | None
    rejecting: bool

    def maybe_staged(self, batch_id: str) -> bool:
        return self.staged is None or batch_id in self.staged


@dataclass
class PreparedItems:
    """Items between `prepare_many` and `finish_many`: the results known already, the copies
    to parse (`todo`: item index, copy, batch id) and how they parse (`parsing`), and the
    items whose content an earlier one holds (`followers`: index, the earlier's index, copy)."""

    obj: ObjectSpec
    lake: Lake
    results: list[StageResult | None]
    leaders: dict[str, int] = field(default_factory=dict)
    followers: list[tuple[int, int, Copied]] = field(default_factory=list)
    todo: list[tuple[int, Copied, str]] = field(default_factory=list)
    parsing: Parsing | None = None

    def discard(self) -> None:
        """Remove what was copied (an error stopped the staging)."""
        for _, copied, _ in self.todo:
            shutil.rmtree(copied.staging, ignore_errors=True)


@dataclass
class ParsedItems:
    """Items parsed and not committed yet (`commit`: item index, copy, manifest)."""

    prepared: PreparedItems
    commit: list[tuple[int, Copied, Manifest]]


def _file_stat(path: Path) -> os.stat_result | None:
    """`path`'s stat when it is a regular file (symbolic links followed), else None: what
    `Path.is_file` and then `Path.stat` told, with one system call instead of two a file."""
    try:
        stat = path.stat()
    except OSError as exc:
        if exc.errno in _GONE:  # the errors `Path.is_file` takes for "not a file"
            return None
        raise
    except ValueError:
        return None
    return stat if S_ISREG(stat.st_mode) else None


_GONE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})


def _follow(leader: StageResult | None, copied: Copied) -> StageResult:
    """The result of an item whose content an earlier item of the same call holds."""
    item, digest = copied.item, copied.digest
    if leader is not None and leader.batch is not None:
        return StageResult("duplicate", item, leader.batch, digest)
    if leader is not None and leader.rejection is not None:
        return StageResult("still_rejected", item, content_hash=digest, rejection=leader.rejection)
    error = leader.error if leader is not None else None
    return StageResult("failed", item, content_hash=digest, error=error)
