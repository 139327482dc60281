"""Reading a text file as its non-blank lines, streamed, plain or compressed.

A file named `*.gz` is gzip, `*.zst` zstd, `*.bz2` bzip2 (decompressed on the fly, never
whole). The file is read in blocks cut at the last newline; each block is split into lines,
their trailing carriage returns dropped and blank lines (only spaces, tabs, carriage returns)
left out, all vectorised in Arrow. A line's record number counts the non-blank lines before it,
so it is exact across blocks. A UTF-8 byte order mark at the start of the file is not part of
line 1. Memory stays a few blocks, whatever the file's size (a single line longer than a block
is held whole). Only a line feed ends a line: a bare carriage return inside a line is part of
it.

A line holding bytes that are not UTF-8 is still a record: its text is its bytes escaped
(`\\xNN` for each invalid byte) and its `_error` says which byte is wrong, so it is quarantined
with reason `encoding`; a block only takes that slower path when it holds such a line. A file
with more of them than its limit allows fails whole (`penstock.sources.damage`). A last line
without a line feed after it is `cut_record` (the file may have been cut short there); bytes of
a character cut off at the very end of the file are part of that cut, not an encoding error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from penstock.catalog import ObjectSpec
from penstock.errors import SourceError
from penstock.sources.compression import (
    BLOCK_BYTES,
    COMPRESSED_SUFFIXES,
    Compression,
    compression_of,
    described,
)
from penstock.sources.damage import (
    EncodingErrors,
    cut_inside_character,
    encoding_problem,
    escaped,
)
from penstock.sources.unreadable import arrow_refused

__all__ = [
    "BLOCK_BYTES",
    "COMPRESSED_SUFFIXES",
    "Compression",
    "compression_of",
    "described",
]
# a record's number, its text, and why its bytes are not text (NULL: they are)
LINES_SCHEMA = pa.schema(
    [("_row_number", pa.int64()), ("line", pa.large_string()), ("_error", pa.large_string())]
)
_BOM = b"\xef\xbb\xbf"
_BLANK = " \t\r"


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


class RecordStream(ABC):
    """The records of a text file as an Arrow stream of (`_row_number`, `line`, `_error`).

    `batches()` is handed to DuckDB as an Arrow stream; an error raised while DuckDB pulls it
    reaches the caller as a DuckDB error, so the reader keeps the SourceError it raised in
    `error` for the caller to raise instead. Subclasses yield the batches in `_batches`.
    """

    cut_note = ""

    def __init__(
        self, path: Path, display_name: str, what: str, obj: ObjectSpec, records: str = "records"
    ) -> None:
        self.path = path
        self.display_name = display_name
        self.compression = compression_of(path)
        self.what = described(self.compression, what)
        self.object_name = obj.name
        self.error: SourceError | None = None
        self.encoding = EncodingErrors(obj, display_name, self.what, records)
        self.cut_record: int | None = None
        self.warnings: list[str] = []

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

    @abstractmethod
    def _batches(self) -> Iterator[pa.RecordBatch]:
        """The records as Arrow batches of `LINES_SCHEMA`."""


class LineReader(RecordStream):
    """The non-blank lines of `path` (shown as `display_name`) with their record numbers."""

    cut_note = "the last line, with no line break after it: the file may be cut short"

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
                else:  # the end: what is left is a last line with no line feed after it
                    body, carry = data, b""
                if body:
                    batch, physical = self._split(body, records, lines, last=not block)
                    if not block and batch.num_rows:
                        self.cut_record = records + batch.num_rows
                    records += batch.num_rows
                    lines += physical
                    if batch.num_rows:
                        yield batch
                if not block:
                    self.encoding.finish(records)
                    return

    def _split(
        self, body: bytes, records: int, lines: int, *, last: bool
    ) -> tuple[pa.RecordBatch, int]:
        """The non-blank lines of `body` numbered after `records`, and its physical lines.
        `last`: `body` is the end of the file, after its last line feed."""
        errors: pa.Array | None = None
        try:
            text = pa.array([body], pa.large_binary()).cast(pa.large_string())
        except pa.ArrowInvalid:
            parts, errors = self._damaged(body, lines, last=last)
        else:
            parts = pc.list_flatten(pc.split_pattern(text, "\n"))
        physical = len(parts) - 1 if body.endswith(b"\n") else len(parts)
        non_blank = pc.not_equal(pc.utf8_trim(parts, _BLANK), "")
        kept = parts.filter(non_blank)
        why = pa.nulls(len(kept), pa.large_string()) if errors is None else errors.filter(non_blank)
        numbers = np.arange(records + 1, records + 1 + len(kept), dtype=np.int64)
        batch = pa.RecordBatch.from_arrays(
            [pa.array(numbers), pc.utf8_rtrim(kept, "\r"), why], schema=LINES_SCHEMA
        )
        return batch, physical

    def _damaged(self, body: bytes, lines: int, *, last: bool) -> tuple[pa.Array, pa.Array]:
        """`body`, which holds bytes that are not UTF-8, as its lines (those with invalid bytes
        escaped) and why each line is not text (None: it is). One Python step per line: only
        blocks holding such a line come here."""
        raw_lines = body.split(b"\n")
        texts: list[str] = []
        problems: list[str | None] = []
        bad, first = 0, 0
        for index, raw in enumerate(raw_lines):
            try:
                texts.append(raw.decode("utf-8"))
                problems.append(None)
                continue
            except UnicodeDecodeError:
                texts.append(escaped(raw))
            if last and cut_inside_character(raw):  # cut off inside a character
                problems.append(None)
                continue
            problems.append(encoding_problem(raw))
            bad += 1
            first = first or lines + index + 1
        self.encoding.add(bad, first)
        return pa.array(texts, pa.large_string()), pa.array(problems, pa.large_string())
