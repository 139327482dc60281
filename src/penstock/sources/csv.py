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
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from penstock.catalog import CsvOptions, ObjectSpec
from penstock.errors import first_line
from penstock.lake import atomic_target
from penstock.lake.csv_read import CsvRead
from penstock.lake.manifest import CSV_DATA_NAME, DATA_NAME, PARQUET, REJECTS_NAME
from penstock.sources.compression import BLOCK_BYTES, compression_of
from penstock.sources.csv_layout import Layout, csv_read, read_layout, read_options
from penstock.sources.csv_text import ByteScan, decompress, scan_bytes
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
    (staged,) = stage_csv_files(conn, obj, [CsvFile(path, display_name, staging)])
    if isinstance(staged, Exception):
        raise staged
    return staged


@dataclass(frozen=True)
class CsvFile:
    """A CSV file to stage: a private copy inside its own staging directory."""

    path: Path
    display_name: str
    staging: Path


def stage_csv_files(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, files: Sequence[CsvFile]
) -> list[CsvStaged | Exception]:
    """Stage several CSV files of `obj` at once: files read with the same settings are read by
    DuckDB together (one read of a thousand small files costs what a few reads of one do).
    Each file's outcome, or the error it alone met (a file that cannot be read is
    SourceError, `unreadable`)."""
    csv = obj.csv or CsvOptions()
    outcomes: list[CsvStaged | Exception | None] = [None] * len(files)
    planned: dict[CsvRead, list[tuple[int, Layout, Path]]] = {}
    for index, file in enumerate(files):
        try:
            plan = _plan(conn, obj, csv, file)
        except Exception as exc:
            outcomes[index] = exc
            continue
        if isinstance(plan, CsvStaged):
            outcomes[index] = plan
        else:
            read, layout, path = plan
            planned.setdefault(read, []).append((index, layout, path))
    for read, members in planned.items():
        fast = _fast_paths(
            conn, obj, csv, read, [(files[i], layout, path) for i, layout, path in members]
        )
        for (index, layout, path), outcome in zip(members, fast, strict=True):
            outcomes[index] = _finish(conn, obj, csv, files[index], layout, path, outcome)
    for file in files:
        (file.staging / _PLAIN).unlink(missing_ok=True)
    return [o if o is not None else RuntimeError("not staged") for o in outcomes]


def _plan(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, csv: CsvOptions, file: CsvFile
) -> CsvStaged | tuple[CsvRead, Layout, Path]:
    """How to read a file: decompressed once (DuckDB then reads in parallel, and every pass
    reads it again), its header read by penstock; or its outcome when DuckDB cannot read it
    (staged record by record) or it has no header."""
    path = file.path
    if compression_of(path) is not None:
        plain = file.staging / _PLAIN
        decompress(path, plain, file.display_name, obj.name)
        path = plain
    layout = read_layout(path, obj, csv, file.display_name)
    if layout is None:
        _stage_no_columns(conn, obj, file.staging / DATA_NAME)
        why = f"{file.display_name}: no header (only blank, comment or skipped lines)"
        return CsvStaged(0, 0, [why], None)
    if layout.duck_skip is None:
        return _recover(conn, obj, csv, file, layout, path, layout.why_not_duckdb)
    return (
        csv_read(csv, layout.names, skip=layout.duck_skip, new_line=layout.new_line),
        layout,
        path,
    )


def _finish(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    file: CsvFile,
    layout: Layout,
    path: Path,
    outcome: CsvStaged | str,
) -> CsvStaged | Exception:
    try:
        if isinstance(outcome, str):
            return _recover(conn, obj, csv, file, layout, path, outcome)
        # the bytes read are the batch's data, kept as they are (made durable when the batch
        # is committed)
        path.rename(file.staging / CSV_DATA_NAME)
        return outcome
    except Exception as exc:
        return exc


def _recover(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    file: CsvFile,
    layout: Layout,
    path: Path,
    why: str,
) -> CsvStaged:
    """Stage a file DuckDB cannot read whole, record by record, as Parquet."""
    from penstock.sources.csv_recover import stage_recovered

    rejects_path = file.staging / REJECTS_NAME
    rejects_path.unlink(missing_ok=True)
    with atomic_target(file.staging / DATA_NAME) as tmp:
        rows, malformed = stage_recovered(
            conn, obj, csv, layout, path, file.display_name, tmp, rejects_path
        )
    return CsvStaged(
        rows, malformed, [f"{file.display_name}: read record by record, as {why}"], None
    )


def _fast_paths(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    read: CsvRead,
    members: Sequence[tuple[CsvFile, Layout, Path]],
) -> list[CsvStaged | str]:
    """DuckDB's reader over the files (read alike), with the byte scan beside it: for each
    file its rows and malformed records (written to its rejects file), or why it must be read
    record by record instead."""
    paths = [path for _, _, path in members]

    def scan_all() -> list[ByteScan]:
        return [scan_bytes(path, csv, layout.new_line) for _, layout, path in members]

    with ThreadPoolExecutor(1) as pool, _rejects_tables(conn) as (rejects_table, rejects_scan):
        # the scan reads the files while DuckDB does (a second core hides it)
        scanning = pool.submit(scan_all)
        try:
            counted = _duckdb_read(conn, read, paths, rejects_table, rejects_scan)
        except duckdb.Error as exc:
            scanning.result()
            if len(members) > 1:  # one of them stops the read: each on its own
                return [
                    out for member in members for out in _fast_paths(conn, obj, csv, read, [member])
                ]
            name = members[0][0].display_name
            return ["DuckDB's reader refused it: " + first_line(exc).replace(str(paths[0]), name)]
        scans = scanning.result()
        return [
            _fast_outcome(
                conn,
                obj,
                csv,
                read,
                file,
                layout,
                path,
                scan,
                counted.get(i, (0, set())),
                rejects_table,
                i,
            )
            for i, ((file, layout, path), scan) in enumerate(zip(members, scans, strict=True))
        ]


def _fast_outcome(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    read: CsvRead,
    file: CsvFile,
    layout: Layout,
    path: Path,
    scan: ByteScan,
    counted: tuple[int, set[str]],
    rejects_table: str,
    index: int,
) -> CsvStaged | str:
    """One file's outcome of the shared read."""
    if scan.trouble is not None:
        return f"it holds {scan.trouble}"
    rows, kinds = counted
    rejects = f"(SELECT * FROM {rejects_table} WHERE file_id = {index})"
    problem = _problem(conn, rejects, kinds)
    if problem is None and kinds and layout.new_line == "\r":
        problem = "malformed records in a file whose lines end in CR alone"
    if problem is not None:
        return problem
    malformed = _count_rejected(conn, rejects) if kinds else 0
    outcome = (rows, malformed)
    too_long = _too_long(conn, csv, layout, scan, outcome, read, path, rejects)
    if too_long is not None:
        return too_long
    if malformed:
        rejects_path = file.staging / REJECTS_NAME
        numbers = _line_numbers(conn, layout, scan, outcome, rejects)
        if numbers is None:
            numbers = _reject_record_numbers(conn, obj, csv, layout, path, rejects, rejects_path)
        if numbers is None:
            return "the record numbers of its malformed records could not be confirmed"
        _write_rejects(conn, rejects, rejects_path, numbers)
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
    read: CsvRead,
    paths: Sequence[Path],
    rejects_table: str,
    rejects_scan: str,
) -> dict[int, tuple[int, set[str]]]:
    """Read the files whole: by file index, its rows and the kinds of error DuckDB stored for
    it. Every column is counted, so that every value is read (and checked as text in the
    encoding) as validation will read it; `count(*)` alone would skip them."""
    files = [str(p) for p in paths]
    counts = ", ".join(f"count({ident(name)})" for name in read.names)
    index = "file_index" if len(files) > 1 else "0"
    source = read.sql(
        files[0] if len(files) == 1 else files,
        rejects_table=rejects_table,
        rejects_scan=rejects_scan,
    )
    # fetchall: DuckDB stores the rejects when the result is finished, not at fetchone
    rows = conn.execute(f"SELECT {index}, count(*), {counts} FROM {source} GROUP BY ALL").fetchall()
    counted = {int(i): int(n) for i, n, *_ in rows}
    kinds = _reject_kinds(conn, rejects_table)
    return {i: (counted.get(i, 0), kinds.get(i, set())) for i in counted.keys() | kinds.keys()}


def _reject_kinds(conn: duckdb.DuckDBPyConnection, rejects_table: str) -> dict[int, set[str]]:
    """The kinds of error DuckDB stored while reading, by file index. A read that rejected
    nothing may not create the table at all (an aggregate over read_csv does not)."""
    try:
        found = conn.execute(f"SELECT DISTINCT file_id, error_type FROM {rejects_table}").fetchall()
    except duckdb.CatalogException:
        return {}
    kinds: dict[int, set[str]] = {}
    for file_id, kind in found:
        kinds.setdefault(int(file_id), set()).add(str(kind))
    return kinds


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
    import pyarrow as pa  # a rare path: pyarrow loads here

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
    import pyarrow as pa

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
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

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
    import pyarrow as pa

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
