"""Staging a damaged CSV file record by record: the records that split load, the others are
quarantined, one at a time.

DuckDB's reader (sources/csv.py) stages a clean file in one pass. When it reports something it
cannot handle record by record (an unbalanced quote swallows the rest of the file in DuckDB, a
bare CR or mixed line breaks fail the whole file, an invalid byte, a NUL) the file is read again
here, streamed:

1. The text is split into records by DuckDB's own quoting rules (csv_grammar.py), line by line.
   A record that cannot be split is `malformed`; a record holding bytes that are not valid in
   the declared encoding is `encoding` (raw text kept with `\\xNN` for each invalid byte); a
   record holding a NUL character, or longer than penstock reads (4 MB), is `malformed`. Each
   such record goes to the rejects with its record number, raw text and the reason.
2. **Resync.** A quote that fails (a quoted value still open after `max_line_span` lines or at
   the end of the file, or text after a closing quote) makes the record's *first line* one
   malformed record, and reading resumes at the line after it: the lines that followed are read
   again as new records, so one stray quote costs one line. A record that splits but holds an
   invalid byte or a NUL is one whole record (its lines included), and reading resumes after it.
3. The records that split are written, each prefixed with its record number, to a clean UTF-8
   copy that DuckDB reads with the same dialect: values come from DuckDB on both paths, and a
   record DuckDB still refuses (a wrong number of fields) is malformed under its own number.

Record numbers count records: skipped lines, the header, comment lines and blank lines are not
records; a malformed or encoding record is one record. Records with invalid bytes beyond
`max_encoding_errors` fail the file as written in another encoding (SourceError, unreadable).
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from penstock.catalog import CsvOptions, ObjectSpec
from penstock.errors import SourceError
from penstock.lake import atomic_target
from penstock.lake.csv_read import MAX_LINE_BYTES
from penstock.lake.manifest import PARQUET
from penstock.sources.csv_grammar import Grammar, Line
from penstock.sources.csv_layout import Layout, read_options
from penstock.sources.csv_text import INVALID_BYTES, TextLines, escaped
from penstock.sql import ident, literal

ENCODING = "encoding"
MALFORMED = "malformed"
REJECTS_SCHEMA = pa.schema(
    [
        ("_row_number", pa.int64()),
        ("_raw_line", pa.string()),
        ("_error", pa.string()),
        ("_reason", pa.string()),
    ]
)
_FLUSH = 50_000  # records written to the clean copy (or rejects) per write
# DuckDB's reader refuses a record longer than its max_line_size (lake/csv_read.py); the clean
# copy adds the record number before it, so penstock refuses a little less, with the raw text
_LONGEST = MAX_LINE_BYTES - 32


@dataclass(frozen=True)
class Piece:
    """A record as the splitter found it: where it starts, its text (lines joined with LF, the
    last line's CR dropped) and why it does not split (None when it does)."""

    line: int
    text: str
    problem: str | None = None


def split_records(
    lines: Iterable[tuple[int, str]], grammar: Grammar, span: int, *, one_column: bool = False
) -> Iterator[Piece]:
    """The records of numbered lines (see the module's docstring for how it resyncs). Empty
    lines are not records (unless the file has one column: DuckDB reads one as a missing
    value), nor are comment lines."""
    source = iter(lines)
    replay: deque[tuple[int, str]] = deque()
    pending: list[tuple[int, str]] = []
    while True:
        if replay:
            item = replay.popleft()
        else:
            next_item = next(source, None)
            if next_item is None:
                if not pending:
                    return
                yield _broken(pending[0], "not closed before the end of the file")
                replay.extend(pending[1:])
                pending = []
                continue
            item = next_item
        number, line = item
        if not pending:
            if (not one_column and line in ("", "\r")) or grammar.is_comment(line):
                continue
            state = grammar.start(line)
            if state is Line.CLOSED:
                yield Piece(number, grammar.without_comment(line, False))
            elif state is Line.OPEN and span > 1:
                pending = [item]
            elif state is Line.OPEN:
                yield _broken(item, "not closed on its line (max_line_span: 1)")
            else:
                yield Piece(number, line.removesuffix("\r"), grammar.problem(line, False))
            continue
        pending.append(item)
        state = grammar.cont(line)
        if state is Line.CLOSED:
            pending[-1] = (number, grammar.without_comment(line, True))
            yield Piece(pending[0][0], "\n".join(text for _, text in pending))
            pending = []
        elif state is Line.BROKEN or len(pending) >= span:
            why = (
                f"not closed within {span} lines (max_line_span)"
                if state is Line.OPEN
                else f"closed on line {number}, where {grammar.problem(line, True)}"
            )
            yield _broken(pending[0], why)
            replay.extendleft(reversed(pending[1:]))
            pending = []


def _broken(item: tuple[int, str], why: str) -> Piece:
    number, line = item
    problem = f"unbalanced quote: a quoted value opened here is {why}"
    return Piece(number, line.removesuffix("\r"), problem)


class _Rejects:
    """The records penstock itself refuses, streamed to a Parquet file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[tuple[int, str, str, str]] = []
        self.writer: pq.ParquetWriter | None = None
        self.count = 0

    def add(self, number: int, raw: str, error: str, reason: str) -> None:
        self.rows.append((number, raw, error, reason))
        self.count += 1
        if len(self.rows) >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, REJECTS_SCHEMA, compression="zstd")
        columns = [
            pa.array([row[i] for row in self.rows], REJECTS_SCHEMA.field(i).type) for i in range(4)
        ]
        self.writer.write_table(pa.Table.from_arrays(columns, schema=REJECTS_SCHEMA))
        self.rows = []

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


@dataclass
class _Pass:
    """What the record-by-record pass found."""

    records: int = 0
    written: int = 0
    bad_encoding: int = 0
    first_bad_line: int | None = None
    first_bad_text: str = ""  # the first record holding invalid bytes (escaped as surrogates)


def stage_recovered(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    layout: Layout,
    path: Path,
    display_name: str,
    data_target: Path,
    rejects_path: Path,
) -> tuple[int, int]:
    """Stage `path` record by record into `data_target` (a temp name the caller renames) and
    `rejects_path`: (rows, records in the rejects file)."""
    work = data_target.with_name(f"_recover_{uuid.uuid4().hex[:12]}")
    work.mkdir()
    try:
        own = _Rejects(work / "own_rejects.parquet")
        clean = work / "clean.csv"
        found = _split_file(obj, csv, layout, path, display_name, clean, own)
        own.close()
        _refuse_bad_encoding(obj, csv, display_name, found)
        return _read_clean(conn, obj, csv, layout, clean, own, found, data_target, rejects_path)
    finally:
        for child in work.iterdir():
            child.unlink()
        work.rmdir()


def _split_file(
    obj: ObjectSpec,
    csv: CsvOptions,
    layout: Layout,
    path: Path,
    display_name: str,
    clean: Path,
    rejects: _Rejects,
) -> _Pass:
    text = TextLines(path, csv.encoding, display_name, obj.name)
    numbered = ((n, line) for n, line in enumerate(text, 1) if n >= layout.data_line)
    pieces = split_records(
        numbered, Grammar.of(csv), csv.max_line_span, one_column=len(layout.names) == 1
    )
    found = _Pass()
    limit = obj.encoding_limit
    prefix = csv.delimiter
    out: list[str] = []
    with clean.open("w", encoding="utf-8", newline="") as writer:
        for piece in pieces:
            found.records += 1
            bad = INVALID_BYTES.search(piece.text)
            if bad is not None:
                found.bad_encoding += 1
                if found.first_bad_line is None:
                    found.first_bad_line = piece.line + piece.text.count("\n", 0, bad.start())
                    found.first_bad_text = piece.text
                if found.bad_encoding > limit.count:
                    return found  # past the limit whatever the file's length: stop reading
                error = (
                    f"invalid encoding: not valid {csv.encoding} text (each invalid byte "
                    f"shown as \\xNN; if the file is in another encoding, set csv: {{encoding: "
                    f"{_likely(csv.encoding, piece.text)}}})"
                )
                rejects.add(found.records, escaped(piece.text), error, ENCODING)
            elif piece.problem is not None:
                rejects.add(found.records, piece.text, piece.problem, MALFORMED)
            elif "\0" in piece.text:
                error = "nul character: the record holds a NUL (0x00), which is not text"
                rejects.add(found.records, piece.text, error, MALFORMED)
            elif len(piece.text) > _LONGEST // 4 and len(piece.text.encode()) > _LONGEST:
                error = (
                    f"line size over maximum: the record is longer than penstock reads "
                    f"({MAX_LINE_BYTES:,} bytes)"
                )
                rejects.add(found.records, piece.text, error, MALFORMED)
            else:
                out.append(f"{found.records}{prefix}{piece.text}\n")
                found.written += 1
                if len(out) >= _FLUSH:
                    writer.writelines(out)
                    out = []
        writer.writelines(out)
    return found


def _refuse_bad_encoding(obj: ObjectSpec, csv: CsvOptions, display_name: str, found: _Pass) -> None:
    limit = obj.encoding_limit
    if not found.bad_encoding or found.bad_encoding <= limit.allowed(found.records):
        return
    complete = found.bad_encoding <= limit.count
    share = f" of {found.records:,}" if complete else ""
    line = found.first_bad_line
    raise SourceError(
        f"{display_name}:{line}: not valid {csv.encoding} text; set `csv: {{encoding: "
        f"{_likely(csv.encoding, found.first_bad_text)}}}` on "
        f"object '{obj.name}' (utf-8, utf-16, latin-1 or windows-1252); {found.bad_encoding:,}"
        f"{'' if complete else '+'}{share} records hold invalid bytes, more than "
        f"max_encoding_errors allows ({limit.describe()})",
        file=display_name,
        line=line,
        object=obj.name,
        unreadable=True,
    )


def _read_clean(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    layout: Layout,
    clean: Path,
    own: _Rejects,
    found: _Pass,
    data_target: Path,
    rejects_path: Path,
) -> tuple[int, int]:
    """DuckDB reads the clean copy (first field: the record number) into `data_target`; the
    records it refuses join penstock's own rejects in `rejects_path`."""
    number = "__penstock_record"
    while any(name.lower() == number for name in layout.names):
        number += "_"
    suffix = uuid.uuid4().hex[:12]
    table, scan = f"_recover_rejects_{suffix}", f"_recover_scan_{suffix}"
    plain = csv.model_copy(update={"encoding": "utf-8", "skip_rows": 0})
    options = read_options(plain, [number, *layout.names], skip=0, new_line="\n")
    read = (
        f"read_csv({literal(str(clean))}, {', '.join(options)}, "
        f"rejects_table = {literal(table)}, rejects_scan = {literal(scan)})"
    )
    try:
        conn.execute(
            f"COPY (SELECT * EXCLUDE ({ident(number)}) FROM {read}) "
            f"TO {literal(str(data_target))} ({PARQUET})"
        )
        refused = _refused_sql(table, len(csv.delimiter))
        parts = [refused]
        if own.writer is not None:
            parts.append(f"SELECT * FROM read_parquet({literal(str(own.path))})")
        rows = _parquet_rows(conn, data_target)
        with atomic_target(rejects_path) as tmp:
            conn.execute(
                f"COPY (SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY _row_number) "
                f"TO {literal(str(tmp))} ({PARQUET})"
            )
        rejected = _parquet_rows(conn, rejects_path)
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"DROP TABLE IF EXISTS {scan}")
    if rows + rejected != found.records:
        raise SourceError(
            f"{clean.name}: reading the records again gave {rows + rejected:,} records, not "
            f"{found.records:,} (a bug in penstock: please report it with the file)",
            object=obj.name,
        )
    return rows, rejected


def _refused_sql(table: str, prefix_width: int) -> str:
    """The records DuckDB refused in the clean copy: number (the first field), raw text (after
    it), DuckDB's complaint with the field counts of the original record."""
    counts = "'^Expected Number of Columns: ([0-9]+) Found: ([0-9]+)$'"
    message = "arg_min(error_message, coalesce(column_idx, -1))"
    fixed = (
        f"CASE WHEN regexp_matches({message}, {counts}) THEN 'Expected Number of Columns: ' "
        f"|| (regexp_extract({message}, {counts}, 1)::BIGINT - 1) || ' Found: ' "
        f"|| (regexp_extract({message}, {counts}, 2)::BIGINT - 1) ELSE {message} END"
    )
    return f"""
        SELECT regexp_extract(raw, '^[0-9]+')::BIGINT AS _row_number,
               substr(raw, length(regexp_extract(raw, '^[0-9]+')) + {prefix_width + 1})
                   AS _raw_line,
               _error, 'malformed' AS _reason
        FROM (
            SELECT rtrim(ltrim(any_value(csv_line), e'\\r\\n'), e'\\n') AS raw,
                   lower(arg_min(error_type, coalesce(column_idx, -1))) || ': ' || {fixed}
                       AS _error
            FROM {table} GROUP BY line
        )
    """


def _parquet_rows(conn: duckdb.DuckDBPyConnection, path: Path) -> int:
    row = conn.execute(
        f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({literal(str(path))})"
    ).fetchone()
    return int(row[0]) if row else 0


_WINDOWS_1252_BYTES = re.compile("[\udc80-\udc9f]")


def _likely(encoding: str, text: str) -> str:
    """The encoding to suggest for a file read in `encoding` whose record `text` holds invalid
    bytes: windows-1252 when latin-1 met the bytes Windows-1252 uses for € ’ “ ” – —, else
    `...` (the file's own)."""
    if encoding == "latin-1" and _WINDOWS_1252_BYTES.search(text):
        return "windows-1252"
    return "..."
