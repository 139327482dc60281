"""A cache of an object's staged batches in one file, so that a command does not open every
batch's manifest and skip marker (~65 µs a batch here: 0.65 s of every run, and of every
scheduler poll, once 10,000 small files are staged; a landing zone dropping a file a minute
gets there in a week).

`<lake>/index/<object>.batches.json` holds, for each batch directory of the object's stage
zone, the directory's identity when it was read (inode, mtime and ctime: one `stat`, ~3 µs)
with the batch's manifest and skip marker. `Lake.batches` lists the stage directory, stats each
batch directory, and takes a batch from the catalog only when its directory is still the one
the catalog read; any other (staged since, restaged, skipped or unskipped, a file in it
added or removed by hand) is read from its own files, as without the catalog. The stage zone
stays the truth: deleting the catalog costs one read of every manifest, nothing else.

Only a command holding the warehouse lock writes it (`Lake.keep_catalog`): the commands that
change batches. They drop it before changing a batch in place (skip, unskip, restage, putting
back a replacement killed halfway), so a catalog never outlives a change penstock made, even
one made within the resolution of the file system's clock. It is written atomically; one that
cannot be read, or that was written for other manifest fields, is ignored.

Values the batches share (a CSV read's options, a schema, the column list) are stored once
and referenced by index: on 10,000 batches the file held 4.6 MB against the manifests' 12.4 MB
and read in 0.06-0.13 s against their 0.65 s; the rows of batches read from it are written back
as they were read, so a rewrite encodes only the batches new to it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from penstock.lake.atomic import fsync_dir, write_json_atomic
from penstock.lake.csv_read import CsvRead
from penstock.lake.manifest import Manifest
from penstock.lake.skip import SkipMarker

CATALOG_VERSION = 1
# manifest fields whose values batches share: stored once each, referenced by index
_SHARED = ("columns", "schema", "csv_read", "warnings", "window")
_SCALARS = tuple(f.name for f in fields(Manifest) if f.name not in _SHARED)
_TIMES = ("extracted_at", "restaged_at")

# what identifies a batch directory as read: inode, mtime and ctime (nanoseconds)
DirStamp = tuple[int, ...]


class Cataloged(NamedTuple):
    """A batch directory as read: its identity then, its manifest and skip marker, and (read
    from a catalog) its row there, written again as it is."""

    stamp: DirStamp
    manifest: Manifest
    skip: SkipMarker | None
    row: list[Any] | None = None


@dataclass
class Catalog:
    """An object's catalog as read: its batches by directory name, and the shared values its
    rows refer to (kept in order, so that those rows can be written again unchanged)."""

    path: Path
    object_name: str
    entries: dict[str, Cataloged] = field(default_factory=dict)
    shared: list[list[Any]] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path, object_name: str) -> Catalog:
        """The catalog at `path`; empty when there is none, or it cannot be read, or it was
        written for another object or other manifest fields."""
        catalog = cls(path, object_name)
        try:
            data = json.loads(path.read_bytes())
            if (
                data.get("version") != CATALOG_VERSION
                or data.get("object") != object_name
                or tuple(data.get("fields", ())) != _SCALARS
            ):
                return catalog
            shared = [_shared_value(key, value) for key, value in data["shared"]]
            # the shared fields of each combination met, resolved once (the batches share
            # them as objects: no manifest's value is changed in place)
            resolved: dict[tuple[int, ...], dict[str, Any]] = {}
            times = [_SCALARS.index(key) for key in _TIMES]
            entries: dict[str, Cataloged] = {}
            for row in data["batches"]:
                name, stamp, skip, scalars, refs = row
                key = tuple(refs)
                common = resolved.get(key)
                if common is None:
                    common = resolved[key] = {
                        k: shared[ref] for k, ref in zip(_SHARED, key, strict=True)
                    }
                values = dict(zip(_SCALARS, scalars, strict=True))
                for i in times:
                    if scalars[i] is not None:
                        values[_SCALARS[i]] = datetime.fromisoformat(scalars[i])
                values.update(common)
                marker = None if skip is None else SkipMarker.from_dict(skip)
                entries[name] = Cataloged(tuple(stamp), _manifest(values), marker, row)
            catalog.entries, catalog.shared = entries, data["shared"]
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            pass
        return catalog

    def write(self, batches: Iterable[tuple[str, Cataloged]]) -> None:
        """Replace the catalog with `batches` (directory name, as read), atomically. A batch
        read from this catalog keeps its row; only the others are encoded."""
        shared = list(self.shared)
        index = {(k, json.dumps(v, sort_keys=True)): n for n, (k, v) in enumerate(shared)}
        rows: list[list[Any]] = []
        for name, entry in batches:
            if entry.row is not None and self.entries.get(name) is entry:
                rows.append(entry.row)
                continue
            data = entry.manifest.to_dict()
            refs = []
            for key in _SHARED:
                value = data[key]
                text = json.dumps(value, sort_keys=True)
                ref = index.get((key, text))
                if ref is None:
                    ref = index[(key, text)] = len(shared)
                    shared.append([key, value])
                refs.append(ref)
            skip = None if entry.skip is None else entry.skip.to_dict()
            rows.append([name, list(entry.stamp), skip, [data[k] for k in _SCALARS], refs])
        payload = {
            "version": CATALOG_VERSION,
            "object": self.object_name,
            "fields": list(_SCALARS),
            "shared": shared,
            "batches": rows,
        }
        write_json_atomic(self.path, payload)


def catalog_path(lake_root: Path, object_name: str) -> Path:
    return lake_root / "index" / f"{object_name}.batches.json"


def dir_stamp(entry: os.DirEntry[str]) -> DirStamp:
    st = entry.stat()
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def _manifest(values: dict[str, Any]) -> Manifest:
    """A manifest of every field's value, as the catalog wrote it from one: set as they are,
    without the frozen dataclass's `__init__` (a field at a time through
    `object.__setattr__`: 5 µs a manifest, half of reading a catalog of 10,000). The catalog
    is only read when its fields are exactly the manifest's (`_SCALARS` and `_SHARED`)."""
    manifest = object.__new__(Manifest)
    manifest.__dict__.update(values)
    return manifest


def _shared_value(key: str, value: Any) -> Any:
    if key == "csv_read":
        return None if value is None else CsvRead.from_dict(value)
    if key in ("columns", "warnings"):
        return tuple(value)
    return value


def drop_catalog(path: Path) -> None:
    """Forget the catalog (before a batch is changed in place), durably."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        fsync_dir(path.parent)
