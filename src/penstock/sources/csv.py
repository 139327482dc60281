"""Staging CSV: every value as text exactly as written, read with the object's dialect.

Options (`CsvOptions`): delimiter, quote, escape, encoding, `header`, `skip_rows` (lines skipped
verbatim at the top) and `comment` (a line whose first character other than spaces is the
prefix is not a record; later in a line, outside quotes, the prefix ends the record there:
DuckDB's rule), `max_line_span`. With `header: false` the Nth field is the Nth contract column,
and a record with another number of fields is malformed. Nothing is guessed: penstock reads the
header itself (csv_layout.py) and DuckDB's sniffer is never used.

A compressed file is first decompressed once into the staging directory (a stream that does
not decompress fails the file, unreadable); every pass then reads that plain copy (DuckDB in
parallel, where it reads gzip on one thread).

The fast path reads the file once with DuckDB's reader, every value as text, and keeps the
file's (plain) bytes as the batch's data, `data.csv`: the manifest records the read settings
(lake/csv_read.py) and validation reads the bytes again with them, which costs a fraction of
re-encoding the rows as Parquet. While DuckDB reads, a second thread reads the bytes
(csv_text.scan_bytes): NUL characters, comments DuckDB would drop with their record, line
breaks counted. A record with a wrong number of
fields is kept in the rejects file with its record number and raw text. Anything else sends the
file to the record-by-record pass of csv_recover.py, which quarantines each bad record and
stages the others as Parquet: what DuckDB reports besides field counts (an unbalanced quote,
which in DuckDB swallows the rest of the file; a bare CR or mixed line breaks, which fail it
whole; an invalid byte), what the scan found, and a record spanning more than `max_line_span`
lines (a stray quote that a later one closed: looked for only when the file's lines outnumber
its records by that much).

Record numbers count records only: the header, skipped lines, comment lines and blank lines are
not records; a value spanning lines is one record. DuckDB numbers a rejected line by its own line
count, which counts blank and comment lines too, so when a file has malformed records their
numbers are taken from a second read of a copy whose lines carry their physical line number as an
extra first field (`_numbered_copy`): every record then says where it starts, whatever DuckDB
skipped.
"""

from __future__ import annotations

import codecs
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from penstock.catalog import CsvOptions, ObjectSpec
from penstock.errors import first_line
from penstock.lake import atomic_target
from penstock.lake.atomic import fsync_file
from penstock.lake.csv_read import CsvRead
from penstock.lake.manifest import CSV_DATA_NAME, DATA_NAME, PARQUET, REJECTS_NAME
from penstock.sources.csv_layout import Layout, csv_read, read_layout, read_options
from penstock.sources.csv_recover import stage_recovered
from penstock.sources.csv_text import ByteScan, decompress, scan_bytes
from penstock.sources.lines import BLOCK_BYTES, compression_of
from penstock.sql import ident, literal

_BOM = b"\xef\xbb\xbf"
_NUMBERED = "_numbered.csv"
_PLAIN = "_decompressed.csv"
_NUMBERED_LINES = "_numbered_lines.parquet"
# what DuckDB handles record by record; anything else is read again by csv_recover.py
_FIELD_COUNT_ERRORS = frozenset({"MISSING COLUMNS", "TOO MANY COLUMNS"})


@dataclass(frozen=True)
class CsvStaged:
    """What staging a CSV file wrote into the staging directory: `rows` data rows and
    `malformed` records in the rejects file. With `read` set the data is the file's plain
    bytes as `data.csv` (CSV_DATA_NAME), read with those settings; with None it is Parquet
    (`data.parquet`: a file read record by record, or one with no header)."""

    rows: int
    malformed: int
    warnings: list[str]
    read: CsvRead | None


def stage_csv(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    path: Path,
    display_name: str,
    staging: Path,
) -> CsvStaged:
    """Stage `path` (a private copy inside `staging`, shown as `display_name`)."""
    csv = obj.csv or CsvOptions()
    plain = staging / _PLAIN
    try:
        if compression_of(path) is not None:
            # decompressed once: DuckDB then reads in parallel, and every pass reads it again
            decompress(path, plain, display_name, obj.name)
            path = plain
        return _stage(conn, obj, csv, path, display_name, staging)
    finally:
        plain.unlink(missing_ok=True)


def _stage(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    path: Path,
    display_name: str,
    staging: Path,
) -> CsvStaged:
    data_path, rejects_path = staging / DATA_NAME, staging / REJECTS_NAME
    layout = read_layout(path, obj, csv, display_name)
    if layout is None:
        _stage_no_columns(conn, obj, data_path)
        return CsvStaged(
            0, 0, [f"{display_name}: no header (only blank, comment or skipped lines)"], None
        )
    fast = _fast_path(conn, obj, csv, layout, path, display_name, rejects_path)
    if isinstance(fast, CsvStaged):
        # the bytes read are the batch's data: kept as they are, made durable
        kept = staging / CSV_DATA_NAME
        path.rename(kept)
        fsync_file(kept)
        return fast
    rejects_path.unlink(missing_ok=True)
    with atomic_target(data_path) as tmp:
        rows, malformed = stage_recovered(
            conn, obj, csv, layout, path, display_name, tmp, rejects_path
        )
    return CsvStaged(rows, malformed, [f"{display_name}: read record by record, as {fast}"], None)


def _fast_path(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    layout: Layout,
    path: Path,
    display_name: str,
    rejects_path: Path,
) -> CsvStaged | str:
    """DuckDB's reader over the whole file, with the byte scan beside it: the rows and the
    malformed records (written to `rejects_path`), or why the file must be read record by
    record instead."""
    if layout.duck_skip is None:
        return layout.why_not_duckdb
    read = csv_read(csv, layout.names, skip=layout.duck_skip, new_line=layout.new_line)
    with ThreadPoolExecutor(1) as pool, _rejects_tables(conn) as (rejects_table, rejects_scan):
        # the scan reads the file while DuckDB does (a second core hides it)
        scanning = pool.submit(scan_bytes, path, csv, layout.new_line)
        sql = read.sql(str(path), rejects_table=rejects_table, rejects_scan=rejects_scan)
        outcome = _duckdb_read(conn, layout, path, display_name, sql, rejects_table)
        scan = scanning.result()
        if scan.trouble is not None:
            return f"it holds {scan.trouble}"
        if isinstance(outcome, str):
            return outcome
        too_long = _too_long(conn, csv, layout, scan, outcome, read, path, rejects_table)
        if too_long is not None:
            return too_long
        rows, malformed = outcome
        if malformed:
            numbers = _line_numbers(conn, layout, scan, outcome, rejects_table)
            if numbers is None:
                numbers = _reject_record_numbers(
                    conn, obj, csv, layout, path, rejects_table, rejects_path
                )
            if numbers is None:
                return "the record numbers of its malformed records could not be confirmed"
            _write_rejects(conn, rejects_table, rejects_path, numbers)
        return CsvStaged(rows, malformed, [], read)


@contextmanager
def _rejects_tables(conn: duckdb.DuckDBPyConnection) -> Iterator[tuple[str, str]]:
    """Names for the temp tables a DuckDB read stores its rejects in, dropped afterwards."""
    suffix = uuid.uuid4().hex[:12]
    tables = (f"_rejects_{suffix}", f"_rejects_scan_{suffix}")
    try:
        yield tables
    finally:
        for table in tables:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def _too_long(
    conn: duckdb.DuckDBPyConnection,
    csv: CsvOptions,
    layout: Layout,
    scan: ByteScan,
    outcome: tuple[int, int],
    read: CsvRead,
    path: Path,
    rejects_table: str,
) -> str | None:
    """Does a record DuckDB read span more than `max_line_span` lines? (A stray quote that a
    later one closes makes DuckDB read the lines between as one value.) A file whose lines
    outnumber its records by less than the bound cannot hold one: only a file with more blank,
    comment or continuation lines than that has its values' line breaks counted (one more
    read of the file)."""
    span = csv.max_line_span
    lines = scan.data_lines(layout.data_line, layout.new_line)
    if lines is not None and lines - outcome[0] - outcome[1] < span:
        return None
    char = literal(layout.new_line[-1])
    breaks = [
        f"coalesce(length({ident(name)}) - length(replace({ident(name)}, {char}, '')), 0)"
        for name in layout.names
    ]
    with _rejects_tables(conn) as (again, again_scan):
        data = read.sql(str(path), rejects_table=again, rejects_scan=again_scan)
        row = conn.execute(
            f"SELECT greatest((SELECT max({' + '.join(breaks)}) FROM {data}), "
            f"(SELECT max(length(csv_line) - length(replace(csv_line, {char}, ''))) "
            f"FROM {rejects_table}))"
        ).fetchone()
    if row is None or row[0] is None or int(row[0]) < span:
        return None
    return f"a quoted value spans more than {span} lines (max_line_span)"


def _duckdb_read(
    conn: duckdb.DuckDBPyConnection,
    layout: Layout,
    path: Path,
    display_name: str,
    read: str,
    rejects_table: str,
) -> tuple[int, int] | str:
    """Read `read` whole: (rows, malformed records), or why DuckDB's outcome cannot stand.
    Every column is counted, so that every value is read (and checked as text in the
    encoding) as validation will read it; `count(*)` alone would skip them."""
    counts = ", ".join(f"count({ident(name)})" for name in layout.names)
    try:
        # fetchall: DuckDB stores the rejects when the result is finished, not at fetchone
        (row,) = conn.execute(f"SELECT count(*), {counts} FROM {read}").fetchall()
        kinds = _reject_kinds(conn, rejects_table)
    except duckdb.Error as exc:
        return "DuckDB's reader refused it: " + first_line(exc).replace(str(path), display_name)
    problem = _problem(conn, rejects_table, kinds)
    if problem is None and kinds and layout.new_line == "\r":
        problem = "malformed records in a file whose lines end in CR alone"
    if problem is not None:
        return problem
    malformed = _count_rejected(conn, rejects_table) if kinds else 0
    return int(row[0]), malformed


def _reject_kinds(conn: duckdb.DuckDBPyConnection, rejects_table: str) -> set[str]:
    """The kinds of error DuckDB stored while reading. A read that rejected nothing may not
    create the table at all (an aggregate over read_csv does not)."""
    try:
        found = conn.execute(f"SELECT DISTINCT error_type FROM {rejects_table}").fetchall()
    except duckdb.CatalogException:
        return set()
    return {str(kind) for (kind,) in found}


def _problem(conn: duckdb.DuckDBPyConnection, rejects_table: str, kinds: set[str]) -> str | None:
    """Why DuckDB's rejects cannot stand (None: only wrong numbers of fields)."""
    other = kinds - _FIELD_COUNT_ERRORS
    if not other:
        return None
    row = conn.execute(
        f"SELECT line, error_message FROM {rejects_table} "
        f"WHERE error_type IN ({', '.join(literal(k) for k in sorted(other))}) "
        f"ORDER BY line LIMIT 1"
    ).fetchone()
    message = " ".join(str(row[1]).split()) if row else ""
    kinds_met = " and ".join(
        f"an {k.lower()}" if k[0] in "AEIOU" else f"a {k.lower()}" for k in sorted(other)
    )
    return f"DuckDB's reader met {kinds_met} ({message})"


def _stage_no_columns(conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, data_path: Path) -> None:
    cols = ", ".join(f"NULL::VARCHAR AS {ident(c)}" for c in obj.columns)
    with atomic_target(data_path) as tmp:
        conn.execute(f"COPY (SELECT {cols} WHERE false) TO {literal(str(tmp))} ({PARQUET})")


def _count_rejected(conn: duckdb.DuckDBPyConnection, rejects_table: str) -> int:
    row = conn.execute(f"SELECT count(DISTINCT line) FROM {rejects_table}").fetchone()
    return int(row[0]) if row else 0


def _line_numbers(
    conn: duckdb.DuckDBPyConnection,
    layout: Layout,
    scan: ByteScan,
    outcome: tuple[int, int],
    rejects_table: str,
) -> list[int] | None:
    """The record numbers of the rejected lines straight from DuckDB's line numbers, when every
    physical line from the data's first is exactly one record (no blank, comment or continued
    line: lines = records); else None, and the numbered copy decides. DuckDB numbers a rejected
    line by its physical line in the file, skipped lines included."""
    lines = scan.data_lines(layout.data_line, layout.new_line)
    records = outcome[0] + outcome[1]
    if lines is None or lines != records:
        return None
    found = conn.execute(f"SELECT DISTINCT line FROM {rejects_table} ORDER BY line").fetchall()
    numbers = [int(line) - (layout.data_line - 1) for (line,) in found]
    if len(numbers) != outcome[1] or not all(1 <= n <= records for n in numbers):
        return None
    return numbers


def _reject_record_numbers(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    layout: Layout,
    path: Path,
    rejects_table: str,
    data_path: Path,
) -> list[int] | None:
    """The record number of each rejected line, in file order; None when the numbered copy
    does not read like the original (a line inside a quoted value that the prefix changes)."""
    numbered = data_path.with_name(_NUMBERED)
    lines = data_path.with_name(_NUMBERED_LINES)
    suffix = uuid.uuid4().hex[:12]
    table, scan = f"_numbered_rejects_{suffix}", f"_numbered_scan_{suffix}"
    assert layout.duck_skip is not None
    try:
        _numbered_copy(path, csv, numbered)
        plain = csv.model_copy(update={"encoding": "utf-8"})
        options = [
            *read_options(
                plain,
                ["__penstock_line", *layout.names],
                skip=layout.duck_skip,
                new_line=layout.new_line,
            ),
            f"rejects_table = {literal(table)}",
            f"rejects_scan = {literal(scan)}",
        ]
        read = f"read_csv({literal(str(numbered))}, {', '.join(options)})"
        conn.execute(
            f"COPY (SELECT #1::BIGINT AS line FROM {read}) TO {literal(str(lines))} ({PARQUET})"
        )
        numbers = conn.execute(
            f"""
            SELECT coalesce(g.file_row_number + 1, 0) + row_number() OVER (ORDER BY r.line)
            FROM (
                SELECT DISTINCT
                    TRY_CAST(regexp_extract(ltrim(csv_line, e'\\r\\n'), '^[0-9]+') AS BIGINT)
                    AS line
                FROM {table}
            ) r
            ASOF LEFT JOIN read_parquet({literal(str(lines))}, file_row_number = true) g
                ON r.line > g.line
            WHERE r.line IS NOT NULL
            ORDER BY r.line
            """
        ).fetchall()
    except (duckdb.Error, UnicodeError, pa.ArrowInvalid):
        return None  # the copy does not read like the original: the caller reads it otherwise
    else:
        if len(numbers) != _count_rejected(conn, rejects_table):
            return None
        return [int(n) for (n,) in numbers]
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"DROP TABLE IF EXISTS {scan}")
        numbered.unlink(missing_ok=True)
        lines.unlink(missing_ok=True)


def _numbered_copy(path: Path, csv: CsvOptions, target: Path) -> None:
    """`path` decompressed and in UTF-8, each line that can start a record prefixed with its
    physical line number and the delimiter. Blank lines, comment lines and skipped lines stay
    as they are, so the copy reads exactly like the original, one field wider. A number
    prefixed to a line inside a quoted value is harmless: only each record's first field is
    read. Streamed in blocks, vectorised."""
    decoder = (
        None if csv.encoding == "utf-8" else codecs.getincrementaldecoder(csv.encoding)("strict")
    )
    lines = 0
    carry = b""
    first = True
    compression = compression_of(path)
    with (
        pa.input_stream(str(path), compression=compression) as stream,
        target.open("wb") as out,
    ):
        while True:
            raw = stream.read(BLOCK_BYTES)
            block = raw if decoder is None else decoder.decode(raw, not raw).encode("utf-8")
            data = carry + block
            if first:  # a mark split across the first reads is still a mark
                if len(data) < len(_BOM) and raw:
                    carry = data
                    continue
                data = data.removeprefix(_BOM)
                first = False
            cut = data.rfind(b"\n") + 1 if raw else len(data)
            body, carry = data[:cut], data[cut:]
            if body:
                out.write(_numbered_lines(body, lines, csv))
                lines += body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
            if not raw:
                return


def _numbered_lines(body: bytes, lines: int, csv: CsvOptions) -> memoryview:
    parts = pc.list_flatten(
        pc.split_pattern(pa.array([body], pa.large_binary()).cast(pa.large_string()), "\n")
    )
    if body.endswith(b"\n"):
        parts = parts.slice(0, len(parts) - 1)
    numbers = np.arange(lines + 1, lines + 1 + len(parts), dtype=np.int64)
    keep = pc.or_(pc.equal(pc.utf8_rtrim(parts, "\r"), ""), pa.array(numbers <= csv.skip_rows))
    if csv.comment is not None:
        keep = pc.or_(keep, pc.starts_with(pc.utf8_ltrim(parts, " "), csv.comment))
    label = pa.array(numbers).cast(pa.large_string())
    separator = pa.scalar(csv.delimiter, pa.large_string())
    prefixed = pc.binary_join_element_wise(label, parts, separator)
    out = pc.binary_join_element_wise(
        pc.if_else(keep, parts, prefixed),
        pa.scalar("", pa.large_string()),
        pa.scalar("\n", pa.large_string()),
    )
    # the lines, each with its line break, lie end to end in the array's data buffer
    offsets = np.frombuffer(out.buffers()[1], dtype=np.int64)[
        out.offset : out.offset + len(out) + 1
    ]
    return memoryview(out.buffers()[2])[offsets[0] : offsets[-1]]


def _write_rejects(
    conn: duckdb.DuckDBPyConnection, rejects_table: str, path: Path, numbers: list[int]
) -> None:
    """Malformed records (one per line DuckDB rejected, in file order): record number, raw
    text, complaint, reason."""
    numbered = pa.table(
        {"i": pa.array(range(1, len(numbers) + 1), pa.int64()), "n": pa.array(numbers, pa.int64())}
    )
    view = f"_reject_numbers_{uuid.uuid4().hex[:12]}"
    conn.register(view, numbered)
    try:
        with atomic_target(path) as tmp:
            conn.execute(
                f"""
                COPY (
                    SELECT n.n AS _row_number, r._raw_line, r._error, 'malformed' AS _reason
                    FROM (
                        SELECT line, row_number() OVER (ORDER BY line) AS i,
                               ltrim(any_value(csv_line), e'\\r\\n') AS _raw_line,
                               lower(arg_min(error_type, column_idx)) || ': '
                                   || arg_min(error_message, column_idx) AS _error
                        FROM {rejects_table} GROUP BY line
                    ) r
                    JOIN {view} n USING (i)
                    ORDER BY r.line
                ) TO {literal(str(tmp))} ({PARQUET})
                """
            )
    finally:
        conn.unregister(view)


def parquet_schema(conn: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    described = conn.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(str(path))})")
    return {str(name): str(dtype) for name, dtype, *_ in described.fetchall()}
