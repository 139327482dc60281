"""Rejected files: landing files that cannot be read at all, recorded once.

A file whose bytes cannot be read with its object's read settings (a compressed stream that
does not decompress, text not in the declared encoding, a file that is not the declared format:
a `SourceError` with `unreadable`) is never staged. Its rejection is recorded instead, as
`<lake>/rejected/<object>/<batch_id>.json`, written atomically: the batch id it would have had
(the object's identity rule: content hash; for `load: replace`, content and delivery), the
content hash, the landing file's state (name, size, mtime, ctime, inode), the reason, when and
by which run, and a hash of the read settings it failed under.

While the record exists and those settings are unchanged, runs do not read the file again
(its state, or any file with the same content, is recognised) and only warn. A file with new
content is a new batch id: a new attempt. Changed read settings (a fixed `csv: {encoding: …}`)
make the next run read it again. `penstock batches retry` removes the record. The landing
file itself is never touched.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from penstock.errors import TerminalError

REJECTED_DIR = "rejected"
REJECTION_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class Rejection:
    """One rejected file (by content; for replace, by delivery) of one object."""

    batch_id: str
    object: str
    source: str
    source_file: str
    content_hash: str
    size_bytes: int
    mtime_ns: int
    ctime_ns: int | None
    inode: int | None
    format: str
    reason: str  # the error's one line, naming the file (and the line where known)
    line: int | None
    read_settings: str  # hash of the object's settings the parse depends on
    rejected_at: datetime
    run_id: str | None = None  # the run that rejected it (None until the runner records it)
    version: int = REJECTION_VERSION

    def recorded_by(self, run_id: str) -> Rejection:
        return replace(self, run_id=run_id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rejected_at"] = self.rejected_at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rejection:
        data = dict(data)
        data["rejected_at"] = datetime.fromisoformat(data["rejected_at"])
        return cls(**data)

    @classmethod
    def read(cls, path: Path) -> Rejection | None:
        """The record at `path`, or None if there is none."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TerminalError(
                f"{path}: unreadable rejection record: {exc}", file=str(path)
            ) from exc
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise TerminalError(
                f"{path}: unreadable rejection record: {exc}", file=str(path)
            ) from exc
