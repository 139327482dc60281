"""Telling a file that cannot be read from a machine that cannot read it.

A reader's error is `unreadable` (`SourceError(..., unreadable=True)`) when it is about the
file's bytes as the object's read settings take them: the same bytes fail the same way every
time, so the run records the file as rejected instead of failing on it run after run. An error
of the machine (a full disk, memory, a failing device, an interrupt) is not: the next run tries
again.

The staged copy of a landing file lives in the lake, so a reader's errors concern that copy:
- DuckDB refuses content with an `InvalidInputException` (a CSV it cannot sniff, a file with no
  Parquet magic bytes, a Parquet page that does not decompress); its `IOException` is also what
  a gzip stream cut short gives, and what a full disk gives: a compressed file whose stream is
  decompressed to nowhere without error was refused for another reason.
- Arrow's decompressing streams raise `OSError` without an `errno` ("Truncated compressed
  stream", "ZSTD decompress failed"); an error of the operating system carries one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb


def duckdb_refused(exc: duckdb.Error, path: Path) -> bool:
    """Whether DuckDB's `exc` reading `path` is about the file's bytes."""
    from penstock.sources.compression import compression_of

    if isinstance(exc, duckdb.InvalidInputException):
        return True
    return compression_of(path) is not None and stream_damaged(path)


def arrow_refused(exc: BaseException) -> bool:
    """Whether Arrow's `exc` reading a file (plain or compressed) is about its bytes."""
    if isinstance(exc, MemoryError):
        return False
    if isinstance(exc, OSError):
        return exc.errno is None
    arrow = sys.modules.get("pyarrow")  # an Arrow error means pyarrow is loaded
    return arrow is not None and isinstance(exc, arrow.ArrowException)


def stream_damaged(path: Path) -> bool:
    """Whether the compressed stream of `path` fails to decompress (read to nowhere)."""
    import pyarrow as pa

    from penstock.sources.compression import BLOCK_BYTES, compression_of

    try:
        with pa.input_stream(str(path), compression=compression_of(path)) as stream:
            while stream.read(BLOCK_BYTES):
                pass
    except (OSError, pa.ArrowException) as exc:
        return arrow_refused(exc)
    return False
