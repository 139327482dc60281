"""The head of a landing file as a small file of its own, cut at a record boundary.

`penstock check` stages this sample with the real staging code, so the sample must be what
the start of the file would be to that code: the same bytes, decompressed (a `.gz`, `.zst` or `.bz2`
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
from csv import Error as CsvError
from csv import reader as csv_reader
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from penstock.catalog import CsvOptions
from penstock.sources.lines import compression_of
from penstock.sql import literal

_READ_BLOCK = 256 * 1024
_WHOLE_LIMIT_FACTOR = 8  # a file that cannot be cut is sampled whole up to 8 × max_bytes
_UTF16_BOMS = (b"\xfe\xff", b"\xff\xfe")
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
    """The first `rows` records (after the header) that fit in `max_bytes`. Read in blocks
    until the head holds as many lines as records asked for (more while records turn out to
    span lines), the budget is spent, or the file ends. A head without a single line break
    is read further, up to 8 × `max_bytes`."""
    records = rows + (1 if file_format == "csv" and (csv is None or csv.header) else 0)
    chunks: list[bytes] = []
    size = lines = 0
    wanted = records + 1
    try:
        with pa.input_stream(str(source), compression=compression_of(source)) as stream:
            while True:
                block = stream.read(_READ_BLOCK)
                at_end = not block
                chunks.append(block)
                size += len(block)
                lines += block.count(b"\n")
                over = size >= max_bytes and (lines or size >= _WHOLE_LIMIT_FACTOR * max_bytes)
                if not (at_end or over or lines >= wanted):
                    continue
                head = b"".join(chunks)
                chunks = [head]
                cut, found_all = _cut(head, file_format, csv, records)
                if at_end and (not found_all or not head[len(cut) :].strip()):
                    # the file holds no more than the records asked for: all of it
                    target.write_bytes(head)
                    return Sample(target, complete=True)
                if found_all or at_end or over:
                    target.write_bytes(cut)
                    return Sample(target, complete=False)
                wanted = 2 * lines  # records span lines: read on
    except (OSError, pa.ArrowException) as exc:
        raise SampleError(str(exc)) from exc


def _cut(head: bytes, file_format: str, csv: CsvOptions | None, records: int) -> tuple[bytes, bool]:
    """`head` cut after its `records`-th record, or after its last whole record; and whether
    it holds that many."""
    encoding, start = _encoding(head, csv) if file_format == "csv" else ("utf-8", 0)
    newline = "\n".encode(encoding)
    ends = _line_ends(head, newline, start)
    if file_format == "csv":
        lines, found = _csv_lines(head[start:].decode(encoding, "replace"), csv, records)
    else:
        lines = found = min(records, len(ends))
    if lines == 0:
        return head, False
    return head[: ends[lines - 1]], found == records


def _encoding(head: bytes, csv: CsvOptions | None) -> tuple[str, int]:
    """The Python codec of a CSV file's encoding, and where its text starts (past a UTF-16
    byte order mark)."""
    encoding: str = (csv or CsvOptions()).encoding
    if encoding == "utf-16":
        big = head.startswith(b"\xfe\xff")
        return ("utf-16-be" if big else "utf-16-le"), 2 if head[:2] in _UTF16_BOMS else 0
    try:
        "\n".encode(encoding)
    except LookupError:  # an encoding only DuckDB knows: its line breaks are ASCII's
        return "latin-1", 0
    return encoding, 0


def _line_ends(head: bytes, newline: bytes, start: int) -> list[int]:
    """The offset just past each line break of `head` (aligned to the code unit in UTF-16)."""
    ends: list[int] = []
    width = len(newline)
    position = head.find(newline, start)
    while position != -1:
        if (position - start) % width == 0:
            ends.append(position + width)
            position = head.find(newline, position + width)
        else:
            position = head.find(newline, position + 1)
    return ends


def _csv_lines(text: str, options: CsvOptions | None, records: int) -> tuple[int, int]:
    """How many whole lines of `text` hold its first `records` CSV records (a quoted value
    may hold line breaks, a quote inside an unquoted value is text, as in DuckDB's reader),
    and how many records that is. The last record of `text` counts only when a line break
    follows it and it holds no open quote."""
    csv_options = options or CsvOptions()
    lines = text.split("\n")[:-1]  # whole lines only: the text after the last break is cut
    reader = csv_reader(
        (line + "\n" for line in lines),
        delimiter=csv_options.delimiter,
        quotechar=csv_options.quote,
        escapechar=None if csv_options.escape == csv_options.quote else csv_options.escape,
        doublequote=csv_options.escape == csv_options.quote,
        strict=True,
    )
    taken = found = 0
    try:
        for _ in reader:
            if found == records:
                break
            found += 1
            taken = reader.line_num
    except CsvError:
        # a quote left open: near the end of the head, a quoted value cut short (the record
        # is dropped); open for most of it, a stray quote: keep the lines, and the sample
        # shows the parser's complaint as the whole file would
        if len(lines) - taken > max(_STRAY_QUOTE_LINES, len(lines) // 2):
            kept = min(len(lines), taken + records - found)  # a record a line, from there
            return kept, found + kept - taken
    return taken, found
