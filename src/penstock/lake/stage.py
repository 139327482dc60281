"""The stage zone: one directory per batch, holding the raw rows as Parquet and a manifest.

Layout: `<lake>/stage/<object>/<batch_id>/{data.parquet, rejects.parquet, manifest.json}`.
Files are written under temporary names and renamed; the manifest is written last, so a
batch exists exactly when its manifest does. A `skipped.json` beside it records that the
batch was skipped (see lake/skip.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from penstock.faults import fault_point
from penstock.lake.atomic import remove_stale_temps, write_json_atomic
from penstock.lake.manifest import DATA_NAME, MANIFEST_NAME, REJECTS_NAME, Manifest
from penstock.lake.skip import SKIP_NAME, SkipMarker


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
        return self.directory / DATA_NAME

    @property
    def rejects_path(self) -> Path:
        return self.directory / REJECTS_NAME


class Lake:
    """The lake on the local file system (object storage comes later behind the same API)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def remove_stale_temps(self) -> int:
        """Delete temp files a killed process left. Call only while holding the warehouse
        lock, so that no other run can be writing into this lake."""
        return remove_stale_temps(self.root)

    def stage_dir(self, object_name: str) -> Path:
        return self.root / "stage" / object_name

    def batch_dir(self, object_name: str, batch_id: str) -> Path:
        return self.stage_dir(object_name) / batch_id

    def quarantine_path(self, object_name: str, batch_id: str) -> Path:
        return self.root / "quarantine" / object_name / f"{batch_id}.parquet"

    def prepare_batch_dir(self, object_name: str, batch_id: str) -> Path:
        """An empty directory for a batch about to be staged (clears an incomplete one)."""
        directory = self.batch_dir(object_name, batch_id)
        if directory.exists() and not (directory / MANIFEST_NAME).exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def commit_batch(self, directory: Path, manifest: Manifest) -> StagedBatch:
        """Write the manifest last: from now on the batch exists."""
        fault_point("before_manifest")
        write_json_atomic(directory / MANIFEST_NAME, manifest.to_dict())
        return StagedBatch(manifest, directory)

    def batches(self, object_name: str) -> list[StagedBatch]:
        """Every complete staged batch of an object, in extraction order."""
        base = self.stage_dir(object_name)
        if not base.is_dir():
            return []
        found = [
            StagedBatch(Manifest.read(path), path.parent, SkipMarker.read(path.parent / SKIP_NAME))
            for path in base.glob(f"*/{MANIFEST_NAME}")
        ]
        return sorted(found, key=extraction_order)

    def skip_batch(self, batch: StagedBatch, marker: SkipMarker) -> StagedBatch:
        """Mark `batch` skipped (atomically): run and rebuild will never load it."""
        write_json_atomic(batch.directory / SKIP_NAME, marker.to_dict())
        return StagedBatch(batch.manifest, batch.directory, marker)

    def unskip_batch(self, batch: StagedBatch) -> StagedBatch:
        """Take a skip back: the batch loads again in its place on the next run."""
        (batch.directory / SKIP_NAME).unlink(missing_ok=True)
        return StagedBatch(batch.manifest, batch.directory, None)


def extraction_order(batch: StagedBatch) -> tuple[datetime, str, str]:
    """Batches load and replay in the order they were extracted."""
    return (batch.manifest.extracted_at, batch.manifest.source_file, batch.batch_id)


def known_files(batches: Iterable[StagedBatch]) -> dict[tuple[str, int, int], str]:
    """(source_file, size, mtime_ns) → content hash, to skip re-hashing unchanged files."""
    return {
        (
            b.manifest.source_file,
            b.manifest.size_bytes,
            b.manifest.mtime_ns,
        ): b.manifest.content_hash
        for b in batches
    }
