"""The manifest of a staged batch: what was extracted, from where, and what it holds.

The manifest is written last; a batch directory without one is incomplete and is staged again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from penstock.errors import TerminalError
from penstock.lake.csv_read import CsvRead

MANIFEST_NAME = "manifest.json"
DATA_NAME = "data.parquet"
CSV_DATA_NAME = "data.csv"  # a CSV batch kept as delivered (lake/csv_read.py)
REJECTS_NAME = "rejects.parquet"
# Beside the batches' directories: rejects files shared by batches staged together
SHARED_REJECTS = "_rejects"
MANIFEST_VERSION = 7
# COPY options for staged Parquet. zstd: smaller than DuckDB's default snappy and, measured on
# 2M rows here, faster to write.
PARQUET = "FORMAT parquet, COMPRESSION zstd"


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """Everything needed to replay a staged batch without its source."""

    batch_id: str
    object: str
    source: str
    source_file: str
    content_hash: str
    size_bytes: int
    mtime_ns: int
    format: str
    rows: int
    rows_malformed: int
    columns: tuple[str, ...]
    schema: dict[str, str]
    extracted_at: datetime
    warnings: tuple[str, ...] = field(default_factory=tuple)
    # Added in version 2 (None when read from a version-1 manifest): with size and mtime they
    # tell an unchanged landing file from a rewrite (ctime cannot be set back by utime).
    ctime_ns: int | None = None
    inode: int | None = None
    # Added in version 3: when `rebuild --restage` last parsed the batch's bytes again with
    # the object's current settings (None: the parse is the one made when it was extracted).
    restaged_at: datetime | None = None
    # Added in version 4: a CSV batch read cleanly is staged as its bytes (`data.csv`) and
    # `csv_read` says how DuckDB reads them; otherwise the rows are staged as Parquet
    # (`data.parquet`, every manifest before version 4) and `csv_read` is None.
    data_file: str = DATA_NAME
    csv_read: CsvRead | None = None
    # Added in version 5: the malformed records are in a rejects file shared with the batches
    # staged together (its path relative to the batch's directory, `../_rejects/<name>`; rows
    # keyed by `_batch_id`); None: in the batch's own `rejects.parquet`.
    rejects_file: str | None = None
    # Added in version 6: the window of a database source this batch holds (sources/window.py:
    # its read identity, cursor and bounds); None for a file. `data_file` may then be a glob
    # of parts (`part-*.parquet`, one per partition read in parallel), read as one batch.
    window: dict[str, Any] | None = None
    # Added in version 7: the source's own count of the window's rows, taken right after they
    # were read (an object with a `reconcile` check, catalog/batch_checks.py); None: not counted.
    source_rows: int | None = None
    version: int = MANIFEST_VERSION

    @property
    def rows_in(self) -> int:
        """Records in the batch: parsed rows plus malformed ones."""
        return self.rows + self.rows_malformed

    def reparsed(self, parse: Manifest) -> Manifest:
        """This batch with the parse described by `parse` (the same bytes read again).

        What belongs to the batch stays: its id, source file and file state, content hash and
        extraction time (so extraction order and `now` in checks are unchanged). What belongs
        to the parse is taken from `parse`, whose extraction time is when it was made.
        """
        return replace(
            self,
            format=parse.format,
            rows=parse.rows,
            rows_malformed=parse.rows_malformed,
            columns=parse.columns,
            schema=parse.schema,
            warnings=parse.warnings,
            data_file=parse.data_file,
            csv_read=parse.csv_read,
            rejects_file=parse.rejects_file,
            restaged_at=parse.extracted_at,
            version=MANIFEST_VERSION,
        )

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # asdict deep-copies
        data["schema"] = dict(self.schema)
        data["extracted_at"] = self.extracted_at.isoformat()
        if self.restaged_at is not None:
            data["restaged_at"] = self.restaged_at.isoformat()
        data["columns"] = list(self.columns)
        data["warnings"] = list(self.warnings)
        data["csv_read"] = None if self.csv_read is None else self.csv_read.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        data = dict(data)
        data["extracted_at"] = datetime.fromisoformat(data["extracted_at"])
        if data.get("restaged_at") is not None:
            data["restaged_at"] = datetime.fromisoformat(data["restaged_at"])
        data["columns"] = tuple(data["columns"])
        data["warnings"] = tuple(data.get("warnings", ()))
        if data.get("csv_read") is not None:
            data["csv_read"] = CsvRead.from_dict(data["csv_read"])
        return cls(**data)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TerminalError(f"{path}: unreadable manifest: {exc}", file=str(path)) from exc
