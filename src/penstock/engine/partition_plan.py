"""Which partitions a backfill runs, and what each one holds (engine/backfill.py runs them).

A files object's partition is the set of its landing files whose path (relative to the
source's directory) the `partition_by: {path: ...}` pattern dates into it; a database
object's is the window `column >= start AND column < end`. What a partition replaces in the
warehouse is found here too: the batches `penstock.partitions` recorded for it, and, for a
files object, the batches the ledger loaded from files the pattern dates into it (loaded by
`penstock run` before the first backfill).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from penstock.catalog import ObjectSpec, Project
from penstock.catalog.partitioning import (
    Grain,
    PartitionBy,
    floor,
    following,
    key_of,
    partition_starts,
    path_regex,
)
from penstock.errors import UsageError
from penstock.sources import FilesSourceReader
from penstock.sources.base import SourceItem
from penstock.warehouse import Warehouse
from penstock.warehouse.partition_ledger import PartitionReplace


@dataclass
class PartitionWork:
    """One partition to run: its window, its files (a files object) and what it replaces."""

    key: str
    start: datetime
    end: datetime
    replacing: PartitionReplace
    items: list[SourceItem] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)  # its files still being written
    recorded: list[str] | None = None  # the batches penstock.partitions holds for it


@dataclass
class PartitionPlan:
    object: str
    grain: Grain
    partitions: list[PartitionWork]
    unmatched: list[str]  # files of the object whose path the pattern does not date


def partition_spec(project: Project, name: str) -> tuple[ObjectSpec, PartitionBy]:
    """The object and its `partition_by:`; a UsageError when it has none."""
    obj = project.objects.get(name)
    if obj is None:
        known = ", ".join(project.objects) or "none"
        raise UsageError(f"unknown object '{name}' (objects: {known})", object=name)
    if obj.partition_by is None:
        raise UsageError(
            f"object '{name}' declares no partition_by: a backfill replaces partitions; "
            "declare partition_by: {path: ...} or {column: ..., grain: day}",
            object=name,
        )
    return obj, obj.partition_by


def requested_starts(
    spec: PartitionBy, first: datetime | None, last: datetime | None, keys: Sequence[datetime]
) -> list[datetime]:
    """The partitions asked for: `keys` (each one's start), or every one from `first` to
    `last` (both included), in order, each once."""
    grain = spec.unit
    if keys:
        return sorted({floor(k, grain) for k in keys})
    if first is None or last is None:
        raise UsageError("give --from DATE and --to DATE, or --partition KEY")
    if last < first:
        raise UsageError(f"--to {last:%Y-%m-%d} is before --from {first:%Y-%m-%d}")
    starts = partition_starts(first, last, grain)
    if len(starts) > 100_000:
        raise UsageError(f"{len(starts)} {grain} partitions: backfill a shorter range")
    return starts


def plan_partitions(
    project: Project,
    obj: ObjectSpec,
    source: object,
    warehouse: Warehouse,
    starts: Sequence[datetime],
) -> PartitionPlan:
    spec = obj.partition_by
    assert spec is not None
    grain = spec.unit
    recorded = warehouse.partitions(obj.name)
    column_type = obj.columns[spec.column].type if spec.column is not None else None
    works: dict[str, PartitionWork] = {}
    for start in starts:
        key = key_of(start, grain)
        before = recorded.get(key)
        ids = list(before["batch_ids"]) if before is not None else None
        works[key] = PartitionWork(
            key,
            start,
            following(start, grain),
            PartitionReplace(
                key, grain, start, following(start, grain), spec.column, column_type, ()
            ),
            recorded=ids,
        )
    unmatched: list[str] = []
    if isinstance(source, FilesSourceReader):
        assert spec.path is not None
        dated = _dater(spec.path, grain, source.root)
        found = source.discover(obj, {})
        for item in found.new:
            dated_key = dated(item.path)
            if dated_key is None:
                unmatched.append(item.display_name)
            elif dated_key in works:
                works[dated_key].items.append(item)
        for name in found.unsettled:
            dated_key = dated(project.root / name)
            if dated_key is not None and dated_key in works:
                works[dated_key].unsettled.append(name)
        for batch_id, loaded_from in warehouse.batch_files(obj.name):
            dated_key = dated(project.root / loaded_from) if loaded_from else None
            if dated_key is not None and dated_key in works:
                work = works[dated_key]
                work.replacing = _with_batch(work.replacing, batch_id)
    for work in works.values():
        for batch_id in work.recorded or ():
            work.replacing = _with_batch(work.replacing, batch_id)
    return PartitionPlan(obj.name, grain, list(works.values()), unmatched)


def _with_batch(replacing: PartitionReplace, batch_id: str) -> PartitionReplace:
    if batch_id in replacing.batch_ids:
        return replacing
    return PartitionReplace(
        replacing.key,
        replacing.grain,
        replacing.start,
        replacing.end,
        replacing.column,
        replacing.column_type,
        (*replacing.batch_ids, batch_id),
    )


def _dater(pattern: str, grain: Grain, root: Path) -> _Dater:
    regex, fmt = path_regex(pattern)
    return _Dater(regex, fmt, grain, root)


@dataclass(frozen=True)
class _Dater:
    """The partition key a landing file's path names, or None."""

    regex: re.Pattern[str]
    fmt: str
    grain: Grain
    root: Path

    def __call__(self, path: Path) -> str | None:
        try:
            relative = path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None
        match = self.regex.match(relative)
        if match is None:
            return None
        try:
            at = datetime.strptime(match["date"], self.fmt)
        except ValueError:
            return None
        return key_of(floor(at, self.grain), self.grain)
