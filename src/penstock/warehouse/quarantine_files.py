"""A chunk's quarantine rows as Parquet files in the lake (any warehouse engine: the rows are
in the embedded DuckDB that validated them)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

import duckdb

from penstock.lake import atomic_target
from penstock.lake.atomic import TMP_PREFIX, fsync_dir, make_durable
from penstock.lake.manifest import PARQUET
from penstock.lake.read import SEQ
from penstock.quality.validate import ChunkValidation
from penstock.sql import literal


def write_quarantine_files(
    conn: duckdb.DuckDBPyConnection, chunk: ChunkValidation, targets: Mapping[int, Path]
) -> None:
    """The quarantine rows of the chunk's batches (`targets`: seq → its lake file; held
    back or, under warn, loaded anyway) as Parquet in the lake, written before the
    commit: one statement writes every batch's file (a file per SEQ, PARTITION_BY) into
    a scratch directory; each is made durable and moved into place."""
    ids = ", ".join(literal(b.batch_id) for b in chunk.batches)
    seqs = ", ".join(str(s) for s in targets)
    first = next(iter(targets.values()))
    first.parent.mkdir(parents=True, exist_ok=True)
    scratch = first.parent / f"{TMP_PREFIX}quarantine-{uuid.uuid4().hex[:12]}"
    try:
        conn.execute(
            f"COPY (SELECT *, list_extract([{ids}], {SEQ}) AS _batch_id "
            f"FROM {chunk.quarantine_table} WHERE {SEQ} IN ({seqs}) "
            f"ORDER BY {SEQ}, _row_number) "
            f"TO {literal(str(scratch))} ({PARQUET}, PARTITION_BY ({SEQ}))"
        )
        make_durable([scratch])  # the files' bytes are on disk before any is moved into place
        for seq, target in targets.items():
            written = list((scratch / f"{SEQ}={seq}").glob("*.parquet"))
            if len(written) == 1:
                written[0].replace(target)
            else:  # DuckDB split the batch's rows over several files: write it alone
                _write_quarantine_file(conn, chunk, seq, target)
        fsync_dir(first.parent)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_quarantine_file(
    conn: duckdb.DuckDBPyConnection, chunk: ChunkValidation, seq: int, target: Path
) -> None:
    batch_id = chunk.batches[seq - 1].batch_id
    with atomic_target(target) as tmp:
        conn.execute(
            f"COPY (SELECT * EXCLUDE ({SEQ}), {literal(batch_id)} AS _batch_id "
            f"FROM {chunk.quarantine_table} WHERE {SEQ} = {seq} ORDER BY _row_number) "
            f"TO {literal(str(tmp))} ({PARQUET})"
        )
