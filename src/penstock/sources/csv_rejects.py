"""DuckDB's rejects of a CSV read: what they mean, and the malformed records they become.

A read stores the records it could not split into DuckDB's rejects tables. A record with a
wrong number of fields is a malformed record of the batch: kept in its rejects file with its
record number, raw text and complaint. Any other kind of error (an unbalanced quote, a bare CR,
an invalid byte), or a value spanning more than `max_line_span` lines, means the file must be
read record by record instead (csv_recover.py).

Record numbers count records only: the header, skipped lines, comment lines and blank lines are
not records; a value spanning lines is one record. DuckDB numbers a rejected line by its own line
count, which counts blank and comment lines too, so when a file has malformed records their
numbers are taken from DuckDB's line numbers only when every line is one record; otherwise from
a second read of a copy whose lines carry their physical line number as an extra first field
(`numbered_copy`): every record then says where it starts, whatever DuckDB skipped.
"""

from __future__ import annotations

import codecs
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb

from penstock.catalog import CsvOptions, ObjectSpec
from penstock.lake import atomic_target
from penstock.lake.atomic import TMP_PREFIX
from penstock.lake.csv_read import CsvRead
from penstock.lake.manifest import PARQUET
from penstock.sources.compression import BLOCK_BYTES, compression_of
from penstock.sources.csv_layout import Layout, read_options
from penstock.sources.csv_text import ByteScan
from penstock.sql import ident, literal

_BOM = b"\xef\xbb\xbf"
_NUMBERED = "_numbered.csv"
_NUMBERED_LINES = "_numbered_lines.parquet"
# what DuckDB handles record by record; anything else is read again by csv_recover.py
FIELD_COUNT_ERRORS = frozenset({"MISSING COLUMNS", "TOO MANY COLUMNS"})


@contextmanager
def rejects_tables(conn: duckdb.DuckDBPyConnection) -> Iterator[tuple[str, str]]:
    """Names for the temp tables a DuckDB read stores its rejects in, dropped afterwards."""
    suffix = uuid.uuid4().hex[:12]
    tables = (f"_rejects_{suffix}", f"_rejects_scan_{suffix}")
    try:
        yield tables
    finally:
        for table in tables:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def too_long(
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
    with rejects_tables(conn) as (again, again_scan):
        data = read.sql(str(path), rejects_table=again, rejects_scan=again_scan)
        row = conn.execute(
            f"SELECT greatest((SELECT max({' + '.join(breaks)}) FROM {data}), "
            f"(SELECT max(length(csv_line) - length(replace(csv_line, {char}, ''))) "
            f"FROM {rejects_table}))"
        ).fetchone()
    if row is None or row[0] is None or int(row[0]) < span:
        return None
    return f"a quoted value spans more than {span} lines (max_line_span)"


def reject_kinds(conn: duckdb.DuckDBPyConnection, rejects_table: str) -> dict[int, set[str]]:
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


def problem(conn: duckdb.DuckDBPyConnection, rejects_table: str, kinds: set[str]) -> str | None:
    """Why DuckDB's rejects cannot stand (None: only wrong numbers of fields)."""
    other = kinds - FIELD_COUNT_ERRORS
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


def count_rejected(conn: duckdb.DuckDBPyConnection, rejects_table: str) -> int:
    row = conn.execute(f"SELECT count(DISTINCT line) FROM {rejects_table}").fetchone()
    return int(row[0]) if row else 0


def line_numbers(
    layout: Layout, scan: ByteScan, outcome: tuple[int, int], lines: Sequence[int]
) -> list[int] | None:
    """The record numbers of the rejected `lines` (DuckDB's line numbers, in order) straight
    from those numbers, when every physical line from the data's first is exactly one record
    (no blank, comment or continued line: lines = records); else None, and the numbered copy
    decides. DuckDB numbers a rejected line by its physical line in the file, skipped lines
    included."""
    physical = scan.data_lines(layout.data_line, layout.new_line)
    records = outcome[0] + outcome[1]
    if physical is None or physical != records:
        return None
    numbers = [line - (layout.data_line - 1) for line in lines]
    if len(numbers) != outcome[1] or not all(1 <= n <= records for n in numbers):
        return None
    return numbers


def reject_record_numbers(
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
        numbered_copy(path, csv, numbered)
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
        if len(numbers) != count_rejected(conn, rejects_table):
            return None
        return [int(n) for (n,) in numbers]
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"DROP TABLE IF EXISTS {scan}")
        numbered.unlink(missing_ok=True)
        lines.unlink(missing_ok=True)


def numbered_copy(path: Path, csv: CsvOptions, target: Path) -> None:
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
                out.write(numbered_lines(body, lines, csv))
                lines += body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
            if not raw:
                return


def numbered_lines(body: bytes, lines: int, csv: CsvOptions) -> memoryview:
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


def write_rejects(
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


def _numbered_sql(rejects_table: str, files: Sequence[tuple[int, Sequence[int]]]) -> str:
    """The malformed records of several files of one read (file_id, their record numbers in
    order): `file_id`, `line`, `_row_number`, `_raw_line`, `_error`, a row per record."""
    numbers = ", ".join(
        f"({file_id}, {i}, {n})" for file_id, ns in files for i, n in enumerate(ns, 1)
    )
    return f"""
        SELECT r.file_id, r.line, n.n AS _row_number, r._raw_line, r._error
        FROM (
            SELECT file_id, line,
                   row_number() OVER (PARTITION BY file_id ORDER BY line) AS i,
                   ltrim(any_value(csv_line), e'\\r\\n') AS _raw_line,
                   lower(arg_min(error_type, column_idx)) || ': '
                       || arg_min(error_message, column_idx) AS _error
            FROM {rejects_table}
            WHERE file_id IN ({", ".join(str(f) for f, _ in files)})
            GROUP BY file_id, line
        ) r
        JOIN (VALUES {numbers}) n(file_id, i, n) USING (file_id, i)
    """


def write_all_rejects(
    conn: duckdb.DuckDBPyConnection,
    rejects_table: str,
    files: Sequence[tuple[int, Path, Sequence[int]]],
) -> None:
    """`write_rejects` for several files of one read (file_id, target, record numbers), with
    one statement: DuckDB writes a file per file_id into a scratch directory (PARTITION_BY),
    each then moved to its target (made durable when its batch is committed)."""
    numbered = _numbered_sql(rejects_table, [(f, ns) for f, _, ns in files])
    scratch = files[0][1].parent.parent / f"{TMP_PREFIX}rejects-{uuid.uuid4().hex[:12]}"
    try:
        conn.execute(
            f"COPY (SELECT file_id, _row_number, _raw_line, _error, 'malformed' AS _reason "
            f"FROM ({numbered}) ORDER BY file_id, line) "
            f"TO {literal(str(scratch))} ({PARQUET}, PARTITION_BY (file_id))"
        )
        for file_id, target, ns in files:
            written = list((scratch / f"file_id={file_id}").glob("*.parquet"))
            if len(written) == 1:
                written[0].rename(target)
            else:  # DuckDB split the file's records over several files: write it alone
                rejects = f"(SELECT * FROM {rejects_table} WHERE file_id = {file_id})"
                write_rejects(conn, rejects, target, list(ns))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def write_shared_rejects(
    conn: duckdb.DuckDBPyConnection,
    rejects_table: str,
    files: Sequence[tuple[int, str, Sequence[int]]],
    target: Path,
) -> None:
    """The malformed records of several files of one read (file_id, batch id, record
    numbers) as one Parquet file, every record with its `_batch_id`, in the files' order:
    written under a temporary name, made durable and renamed into place (before the batches'
    manifests name it)."""
    numbered = _numbered_sql(rejects_table, [(f, ns) for f, _, ns in files])
    order = ", ".join(f"({file_id}, {k}, {literal(b)})" for k, (file_id, b, _) in enumerate(files))
    with atomic_target(target) as tmp:
        conn.execute(
            f"COPY (SELECT b.batch_id AS _batch_id, r._row_number, r._raw_line, r._error, "
            f"'malformed' AS _reason FROM ({numbered}) r "
            f"JOIN (VALUES {order}) b(file_id, k, batch_id) USING (file_id) "
            f"ORDER BY b.k, r.line) TO {literal(str(tmp))} ({PARQUET})"
        )
