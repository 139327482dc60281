"""Staging Arrow record batches (a database window) as Parquet in a staging directory.

A window is written as one Parquet file, or, read in parallel ranges, as one part per range
(`part-00000.parquet`...; the batch's `data_file` is then their glob, read as one batch in
part order). Record batches are written as they arrive: memory holds a few of them, never the
window. The digest covers the parts' bytes in order: the same rows read the same way are the
same bytes, so re-extracting a window after a crash yields the same batch id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from penstock.lake.manifest import DATA_NAME
from penstock.sql import literal

PART_GLOB = "part-*.parquet"


def part_path(staging: Path, index: int) -> Path:
    return staging / f"part-{index:05d}.parquet"


def write_part(batches: Iterable[Any], schema: Any, path: Path) -> int:
    """Write record batches (pyarrow) of `schema` to one Parquet file; its row count."""
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in batches:
            if batch.num_rows:
                writer.write_batch(batch)
                rows += batch.num_rows
    return rows


@dataclass(frozen=True)
class StagedParts:
    """A window's rows as written: counts, digest, the DuckDB schema and the data file name."""

    rows: int
    size_bytes: int
    digest: str
    schema: dict[str, str]
    data_file: str


def finish_parts(staging: Path, parts: Sequence[Path], rows: int) -> StagedParts:
    """Hash the parts (in order) and read their schema; a single part becomes `data.parquet`."""
    digest = hashlib.sha256()
    size = 0
    for path in parts:
        with path.open("rb") as reader:
            digest.update(hashlib.file_digest(reader, "sha256").digest())
        size += path.stat().st_size
    if len(parts) == 1:
        parts[0].rename(staging / DATA_NAME)
        data_file = DATA_NAME
    else:
        data_file = PART_GLOB
    conn = duckdb.connect()
    try:
        described = conn.execute(
            f"DESCRIBE SELECT * FROM read_parquet({literal(str(staging / data_file))})"
        ).fetchall()
    finally:
        conn.close()
    schema = {str(row[0]): str(row[1]) for row in described}
    return StagedParts(rows, size, digest.hexdigest(), schema, data_file)
