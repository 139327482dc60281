"""Atomic file writes: write to a temporary name in the same directory, fsync, rename.

A reader never sees a half-written file: either the old one, the new one, or none.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"


def temp_path_for(target: Path) -> Path:
    """The temporary sibling a write of `target` goes through (unique per process)."""
    return target.with_name(f"{TMP_PREFIX}{os.getpid()}-{target.name}")


@contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is fsynced and renamed to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(target)
    try:
        yield tmp
        fsync_file(tmp)
        tmp.replace(target)
        fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json_atomic(target: Path, payload: Any) -> None:
    with atomic_target(target) as tmp:
        write_json(tmp, payload)


def write_json(target: Path, payload: Any) -> None:
    """`payload` as JSON text (not synced: for a file inside a directory made durable and
    renamed into place as a whole)."""
    target.write_text(json_text(payload))


# a top-level value per line, each written by json's C encoder: `indent` would send every
# manifest through the pure-Python encoder (~0.15 s of a run staging 1,000 small files)
_VALUE = json.JSONEncoder(sort_keys=True, default=str)


def json_text(payload: Any) -> str:
    """`payload` as JSON text: a dict with a key per line (sorted), its values on one line
    each; anything else on one line."""
    if not isinstance(payload, dict) or not payload:
        return _VALUE.encode(payload) + "\n"
    lines = [f"  {_VALUE.encode(str(k))}: {_VALUE.encode(v)}" for k, v in sorted(payload.items())]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def start_writeback(path: Path) -> None:
    """Start writing `path`'s data to disk on a background thread and return at once: the
    fsync that makes it durable later (`make_durable`) then finds the pages written, instead of
    waiting for all of a large copy there (0.1 s for the 206 MB orders file), while the run reads
    the file. Only a head start: failures are ignored, the later fsync is the guarantee."""

    def write_back() -> None:
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    threading.Thread(target=write_back, name="penstock-writeback", daemon=True).start()


def fsync_dir(path: Path) -> None:
    """Make a rename or an unlink in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Up to this many files are made durable one fsync each; more with one sync of every file
# system. An fsync per file cost more than staging a small file (1,000 files of 100 rows),
# while a global sync also waits for whatever other programs wrote, which a run of one large
# file should not (0.1-0.2 s after a copy of the warehouse, bench/README.md).
FSYNC_AT_MOST = 32


def make_durable(paths: Sequence[Path]) -> None:
    """Every file and directory under `paths` (files, or directories walked whole) on disk."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            for root, _, files in os.walk(path):
                found.append(Path(root))
                found.extend(Path(root, f) for f in files)
                if len(found) > FSYNC_AT_MOST:
                    break
        else:
            found.append(path)
        if len(found) > FSYNC_AT_MOST:
            os.sync()
            return
    for path in found:
        if path.is_dir():
            fsync_dir(path)
        else:
            fsync_file(path)


def remove_stale_temps(
    directory: Path, only_into: Callable[[Path], Collection[str] | None] | None = None
) -> int:
    """Delete temporary files and directories a killed process left behind under `directory`;
    return how many. `only_into`: for a directory walked, the names of the subdirectories to
    look into (None: all of them)."""
    if not directory.is_dir():
        return 0
    removed = 0
    for top, subdirs, files in os.walk(directory):
        base = Path(top)
        into = None if only_into is None else only_into(base)
        for name in list(subdirs):
            if name.startswith(TMP_PREFIX):
                subdirs.remove(name)
                path = base / name
                if not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                    removed += 1
            elif into is not None and name not in into:
                subdirs.remove(name)
        for name in files:
            path = base / name
            if name.startswith(TMP_PREFIX) and path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
    return removed
