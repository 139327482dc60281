"""A chunk's quarantine rows as a Parquet file in the lake (any warehouse engine: the rows are
in the embedded DuckDB that validated them). A batch loaded alone has its own file; the batches
of a micro-batch share one (every row with its `_batch_id`): a file per batch cost more than
its rows when thousands of small files load together (bench/README.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb

from penstock.lake import atomic_target
from penstock.lake.manifest import PARQUET
from penstock.lake.read import SEQ
from penstock.quality.validate import ChunkValidation
from penstock.sql import literal


def write_quarantine_file(
    conn: duckdb.DuckDBPyConnection, chunk: ChunkValidation, seqs: Sequence[int], target: Path
) -> None:
    """The quarantine rows of the chunk's batches `seqs` (held back or, under warn, loaded
    anyway), each with its `_batch_id`, as one Parquet file: written before the load's commit,
    under a temporary name, made durable and renamed into place."""
    ids = ", ".join(literal(b.batch_id) for b in chunk.batches)
    with atomic_target(target) as tmp:
        conn.execute(
            f"COPY (SELECT * EXCLUDE ({SEQ}), list_extract([{ids}], {SEQ}) AS _batch_id "
            f"FROM {chunk.quarantine_table} WHERE {SEQ} IN ({', '.join(map(str, seqs))}) "
            f"ORDER BY {SEQ}, _row_number) TO {literal(str(tmp))} ({PARQUET})"
        )


def drop_rows_from_files(
    conn: duckdb.DuckDBPyConnection, paths: Iterable[Path], removed: str, join: str = ""
) -> None:
    """Rewrite the lake quarantine files `paths` without the rows `removed` picks (an SQL
    condition over `q`, a file's rows, and whatever `join` joins to them): a file left with
    none is deleted, one that held none is not touched, the others are replaced atomically."""
    for path in paths:
        source = f"read_parquet({literal(str(path))}) q {join}"
        counted = conn.execute(
            f"SELECT count(*) FILTER ({removed}), count(*) FILTER (NOT ({removed})) FROM {source}"
        ).fetchone()
        held, left = counted if counted is not None else (0, 0)
        if not held:
            continue
        if not left:
            path.unlink()
            continue
        with atomic_target(path) as tmp:
            conn.execute(
                f"COPY (SELECT q.* FROM {source} WHERE NOT ({removed})) "
                f"TO {literal(str(tmp))} ({PARQUET})"
            )
