"""The head of a landing file as a small file of its own, cut at a record boundary.

`penstock check` stages this sample with the real staging code, so the sample must be what
the start of the file would be to that code: the same bytes, decompressed (a `.gz` or `.zst`
file's sample is its decompressed head), cut after a whole record. Only the head is read (a
few MiB at most), never the whole file.

- CSV and JSON Lines are cut after the line that ends the `rows`-th record (plus the header),
  or the last record that fits in `max_bytes`. For CSV a line ends a record only when the
  quotes before it are balanced, so a quoted value holding a line break is never cut in two;
  the line break and the quotes are sought in the file's encoding (UTF-16 included).
- Parquet: the first `rows` rows, written as Parquet by DuckDB (types kept).
- Any other format (one that cannot be cut, such as a single JSON document) is taken whole
  when it is small enough, else not sampled.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from penstock.catalog import CsvOptions
from penstock.sources.lines import compression_of
from penstock.sql import literal

_READ_BLOCK = 256 * 1024
_WHOLE_LIMIT_FACTOR = 8  # a file that cannot be cut is sampled whole up to 8 × max_bytes
_STRAY_QUOTE_LINES = 100


@dataclass(frozen=True)
class Sample:
    path: Path
    complete: bool  # the sample is the whole file


class SampleError(Exception):
    """The head of the file could not be read (a damaged compressed stream, a read error)."""


def take_sample(
    conn: duckdb.DuckDBPyConnection,
    source: Path,
    directory: Path,
    file_format: str,
    csv: CsvOptions | None,
    *,
    rows: int,
    max_bytes: int,
) -> Sample | None:
    """Write the head of `source` into `directory`; None when the format cannot be cut and
    the file is too large to take whole."""
    plain_name = source.name
    if compression_of(source) is not None:
        plain_name = source.name[: -len(source.suffix)]
    target = directory / (plain_name or "sample")
    if file_format == "parquet":
        return _parquet_head(conn, source, target, rows)
    if file_format in ("csv", "jsonl"):
        return _text_head(source, target, file_format, csv, rows=rows, max_bytes=max_bytes)
    if source.stat().st_size > _WHOLE_LIMIT_FACTOR * max_bytes:
        return None
    whole = directory / source.name
    shutil.copyfile(source, whole)
    return Sample(whole, complete=True)


def _parquet_head(conn: duckdb.DuckDBPyConnection, source: Path, target: Path, rows: int) -> Sample:
    path = literal(str(source))
    try:
        row = conn.execute(
            f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({path})"
        ).fetchone()
        total = int(row[0]) if row else 0
        if total <= rows:
            shutil.copyfile(source, target)
            return Sample(target, complete=True)
        conn.execute(
            f"COPY (SELECT * FROM read_parquet({path}) LIMIT {int(rows)}) "
            f"TO {literal(str(target))} (FORMAT parquet)"
        )
    except duckdb.Error as exc:
        raise SampleError(str(exc).splitlines()[0]) from exc
    return Sample(target, complete=False)


def _text_head(
    source: Path,
    target: Path,
    file_format: str,
    csv: CsvOptions | None,
    *,
    rows: int,
    max_bytes: int,
) -> Sample:
    head, at_end = _read_head(source, rows=rows, max_bytes=max_bytes)
    header = 1 if file_format == "csv" and (csv is None or csv.header) else 0
    cut, found_all = _cut(head, file_format, csv, header + rows)
    if at_end and (not found_all or not head[len(cut) :].strip()):
        # the file holds no more than the records asked for: the sample is all of it
        target.write_bytes(head)
        return Sample(target, complete=True)
    target.write_bytes(cut)
    return Sample(target, complete=False)


def _read_head(source: Path, *, rows: int, max_bytes: int) -> tuple[bytes, bool]:
    """Up to `max_bytes` decompressed bytes from the start of `source` (fewer once they hold
    comfortably more lines than `rows`), and whether that is the whole file. A head without
    a single line break is read further, up to 8 × `max_bytes`."""
    chunks: list[bytes] = []
    size = lines = 0
    try:
        with pa.input_stream(str(source), compression=compression_of(source)) as stream:
            while True:
                block = stream.read(_READ_BLOCK)
                if not block:
                    return b"".join(chunks), True
                chunks.append(block)
                size += len(block)
                lines += block.count(b"\n")
                # with quoted line breaks a record spans lines: read a few more than asked
                enough = lines > 2 * rows + 2 or size >= max_bytes
                if enough and (lines or size >= _WHOLE_LIMIT_FACTOR * max_bytes):
                    return b"".join(chunks), False
    except (OSError, pa.ArrowException) as exc:
        raise SampleError(str(exc)) from exc


def _cut(head: bytes, file_format: str, csv: CsvOptions | None, records: int) -> tuple[bytes, bool]:
    """`head` cut after its `records`-th record, or after its last whole record; and whether
    it holds that many."""
    newline, quote, escape, start = (
        _markers(head, csv) if file_format == "csv" else (b"\n", b"", b"", 0)
    )
    width = len(newline)
    cut = None
    found = lines = lines_at_cut = 0
    inside = False  # within a quoted value
    position = start
    while found < records:
        end = head.find(newline, position)
        while end != -1 and (end - start) % width:  # UTF-16: a line break is aligned
            end = head.find(newline, end + 1)
        if end == -1:
            break
        if quote:
            segment = head[position:end]
            quotes = segment.count(quote) - (segment.count(escape) if escape else 0)
            inside ^= quotes % 2 == 1
        position = end + width
        lines += 1
        if not inside:
            cut, lines_at_cut = position, lines
            found += 1
    # no record end after a quote that stays open for most of the head: a stray quote, not a
    # long quoted value; keep whole lines, and the parser says what it makes of it
    stray = inside and lines - lines_at_cut > max(_STRAY_QUOTE_LINES, lines // 2)
    if cut is None or stray:
        cut = position if lines else len(head)
    return head[:cut], found == records


def _markers(head: bytes, csv: CsvOptions | None) -> tuple[bytes, bytes, bytes, int]:
    """A CSV file's line break, quote and escaped quote as bytes in its encoding, and where
    its text starts (past a UTF-16 byte order mark)."""
    options = csv or CsvOptions()
    encoding: str = options.encoding
    start = 0
    if encoding == "utf-16":
        encoding = "utf-16-be" if head.startswith(b"\xfe\xff") else "utf-16-le"
        start = 2 if head[:2] in (b"\xfe\xff", b"\xff\xfe") else 0
    try:
        newline = "\n".encode(encoding)
    except LookupError:  # an encoding only DuckDB knows: its line breaks are ASCII's
        encoding = "latin-1"
        newline = b"\n"
    escape = b""
    if options.escape != options.quote:
        escape = (options.escape + options.quote).encode(encoding, "replace")
    return newline, options.quote.encode(encoding, "replace"), escape, start
