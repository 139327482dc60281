"""What a file's name says of its compression: `*.gz` is gzip, `*.zst` is zstd, `*.bz2` bzip2.

A module of its own, without pyarrow: the CSV fast path asks it about every file and never
decompresses a plain one (pyarrow streams the compressed ones, where it is imported)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Compression = Literal["gzip", "zstd", "bz2"]  # pyarrow's codec names
COMPRESSED_SUFFIXES: dict[str, Compression] = {".gz": "gzip", ".zst": "zstd", ".bz2": "bz2"}
BLOCK_BYTES = 16 * 1024 * 1024


def compression_of(path: Path) -> Compression | None:
    """The compression a file's name announces (`orders.csv.gz` is gzip), or None."""
    return COMPRESSED_SUFFIXES.get(path.suffix.lower())


def described(compression: Compression | None, what: str) -> str:
    """`what` qualified by its compression: 'gzip-compressed CSV'."""
    name = "bzip2" if compression == "bz2" else compression
    return f"{name}-compressed {what}" if name else what
