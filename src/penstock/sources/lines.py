"""Reading a text file as its non-blank lines, streamed, plain or compressed.

A file named `*.gz` is gzip, `*.zst` is zstd (decompressed on the fly, never whole). The file
is read in blocks cut at the last newline; each block is split into lines, their trailing
carriage returns dropped and blank lines (only spaces, tabs, carriage returns) left out, all
vectorised in Arrow. A line's record number counts the non-blank lines before it, so it is
exact across blocks. A UTF-8 byte order mark at the start of the file is not part of line 1.
Memory stays a few blocks, whatever the file's size (a single line longer than a block is
held whole).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from penstock.errors import SourceError
from penstock.sources.damage import arrow_refused

Compression = Literal["gzip", "zstd"]
COMPRESSED_SUFFIXES: dict[str, Compression] = {".gz": "gzip", ".zst": "zstd"}
BLOCK_BYTES = 16 * 1024 * 1024
LINES_SCHEMA = pa.schema([("_row_number", pa.int64()), ("line", pa.large_string())])
_BOM = b"\xef\xbb\xbf"
_BLANK = " \t\r"


def compression_of(path: Path) -> Compression | None:
    """The compression a file's name announces (`orders.csv.gz` is gzip), or None."""
    return COMPRESSED_SUFFIXES.get(path.suffix.lower())


def described(compression: Compression | None, what: str) -> str:
    """`what` qualified by its compression: 'gzip-compressed CSV'."""
    return f"{compression}-compressed {what}" if compression else what


def check_compressed(path: Path, display_name: str, what: str, object_name: str) -> None:
    """Decompress `path` to nowhere: a damaged or cut-short stream is a SourceError."""
    try:
        with pa.input_stream(str(path), compression=compression_of(path)) as stream:
            while stream.read(BLOCK_BYTES):
                pass
    except (OSError, pa.ArrowException) as exc:
        raise SourceError(
            f"{display_name}: cannot read as {what}: {exc}",
            file=display_name,
            object=object_name,
            unreadable=arrow_refused(exc),
        ) from exc


class LineReader:
    """The non-blank lines of `path` (shown as `display_name`) with their record numbers.

    `batches()` is handed to DuckDB as an Arrow stream; an error raised while DuckDB pulls
    it reaches the caller as a DuckDB error, so the reader keeps the SourceError it raised
    in `error` for the caller to raise instead.
    """

    def __init__(self, path: Path, display_name: str, what: str, object_name: str) -> None:
        self.path = path
        self.display_name = display_name
        self.compression = compression_of(path)
        self.what = described(self.compression, what)
        self.object_name = object_name
        self.error: SourceError | None = None

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(LINES_SCHEMA, self.batches())

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._batches()
        except SourceError as exc:
            self.error = exc
            raise
        except (OSError, pa.ArrowException) as exc:
            self.error = SourceError(
                f"{self.display_name}: cannot read as {self.what}: {exc}",
                file=self.display_name,
                object=self.object_name,
                unreadable=arrow_refused(exc),
            )
            raise self.error from exc

    def _batches(self) -> Iterator[pa.RecordBatch]:
        records = 0  # non-blank lines so far: the record number of the last line yielded
        lines = 0  # physical lines so far, to name the line of a decoding error
        carry = b""
        with pa.input_stream(str(self.path), compression=self.compression) as stream:
            first = True
            while True:
                block = stream.read(BLOCK_BYTES)
                data = carry + block if carry else block
                if first:  # a mark split across the first reads is still a mark
                    if len(data) < len(_BOM) and block:
                        carry = data
                        continue
                    data = data.removeprefix(_BOM)
                    first = False
                if block:
                    cut = data.rfind(b"\n") + 1
                    if cut == 0:
                        carry = data
                        continue
                    body, carry = data[:cut], data[cut:]
                else:
                    body, carry = data, b""
                if body:
                    batch, physical = self._split(body, records, lines)
                    records += batch.num_rows
                    lines += physical
                    if batch.num_rows:
                        yield batch
                if not block:
                    return

    def _split(self, body: bytes, records: int, lines: int) -> tuple[pa.RecordBatch, int]:
        """The non-blank lines of `body` numbered after `records`, and its physical lines."""
        try:
            text = pa.array([body], pa.large_binary()).cast(pa.large_string())
        except pa.ArrowInvalid:
            line = lines + _first_bad_utf8_line(body)
            raise SourceError(
                f"{self.display_name}:{line}: not valid UTF-8 text ({self.what} must be UTF-8)",
                file=self.display_name,
                line=line,
                object=self.object_name,
            ) from None
        parts = pc.list_flatten(pc.split_pattern(text, "\n"))
        physical = len(parts) - 1 if body.endswith(b"\n") else len(parts)
        kept = parts.filter(pc.not_equal(pc.utf8_trim(parts, _BLANK), ""))
        numbers = np.arange(records + 1, records + 1 + len(kept), dtype=np.int64)
        batch = pa.RecordBatch.from_arrays(
            [pa.array(numbers), pc.utf8_rtrim(kept, "\r")], schema=LINES_SCHEMA
        )
        return batch, physical


def _first_bad_utf8_line(body: bytes) -> int:
    """The 1-based line of `body` holding its first byte that is not UTF-8."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return body.count(b"\n", 0, exc.start) + 1
    return 1
