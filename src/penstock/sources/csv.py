"""Staging CSV: DuckDB's reader, every value as text exactly as written.

Options (`CsvOptions`): delimiter, quote, escape, encoding, `header`, `skip_rows` (lines skipped
verbatim at the top) and `comment` (a line whose first character other than spaces is the
prefix is not a record; later in a line, outside quotes, the prefix ends the record there:
DuckDB's rule). With `header: false` the Nth field is the Nth contract column, and a record
with another number of fields is malformed.

A malformed record (a wrong number of fields, an unterminated quote) is kept in the rejects
file with its record number and raw text. Record numbers count records only: the header,
skipped lines, comment lines and blank lines are not records; a value spanning lines is one
record. DuckDB numbers a rejected line by its own line count, which counts blank and comment
lines too, so when a file has malformed records their numbers are taken from a second read of
a copy whose lines carry their physical line number as an extra first field
(`_numbered_copy`): every record then says where it starts, whatever DuckDB skipped.
"""

from __future__ import annotations

import codecs
import re
import uuid
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from penstock.catalog import CsvOptions, ObjectSpec
from penstock.catalog.columns import source_key
from penstock.errors import SourceError, first_line
from penstock.lake import atomic_target
from penstock.lake.manifest import PARQUET
from penstock.sources.lines import BLOCK_BYTES, check_compressed, compression_of, described
from penstock.sources.unreadable import duckdb_refused
from penstock.sql import literal

_BOM = b"\xef\xbb\xbf"
_NUMBERED = "_numbered.csv"
_NUMBERED_LINES = "_numbered_lines.parquet"


def stage_csv(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    path: Path,
    display_name: str,
    data_path: Path,
    rejects_path: Path,
) -> tuple[int, int, list[str]]:
    """Stage `path` (shown as `display_name`): (rows, malformed records, warnings)."""
    csv = obj.csv or CsvOptions()
    compression = compression_of(path)
    what = described(compression, "CSV")
    if compression == "zstd":
        # DuckDB reads a zstd stream cut short as the rows before the cut, without a word
        check_compressed(path, display_name, what, obj.name)
    suffix = uuid.uuid4().hex[:12]
    rejects_table, rejects_scan = f"_rejects_{suffix}", f"_rejects_scan_{suffix}"
    dialect = _dialect(csv, compression)
    options = [*_record_options(obj, csv), *dialect]
    options += [
        f"rejects_table = {literal(rejects_table)}",
        f"rejects_scan = {literal(rejects_scan)}",
    ]
    read = f"read_csv({literal(str(path))}, {', '.join(options)})"
    warnings: list[str] = []
    try:
        with atomic_target(data_path) as tmp:
            conn.execute(f"COPY (SELECT * FROM {read}) TO {literal(str(tmp))} ({PARQUET})")
            _refuse_bad_encoding(conn, obj, csv, rejects_table, display_name)
            malformed = _count_rejected(conn, rejects_table)
            if malformed:
                numbers = _reject_record_numbers(conn, obj, csv, path, rejects_table, data_path)
                warnings += _write_rejects(
                    conn, rejects_table, rejects_path, numbers, csv, display_name
                )
    except duckdb.Error as exc:
        # DuckDB names the lake's private copy: the user knows the file by its landing name
        complaint = first_line(exc).replace(f": {path}", "").replace(str(path), display_name)
        raise SourceError(
            f"{display_name}: cannot read as {what}: {complaint}",
            file=display_name,
            object=obj.name,
            unreadable=duckdb_refused(exc, path),
        ) from exc
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {rejects_table}")
        conn.execute(f"DROP TABLE IF EXISTS {rejects_scan}")
    if csv.header:
        header = (
            f"read_csv({literal(str(path))}, all_varchar = true, header = false, "
            f"{', '.join(dialect)}, null_padding = true, ignore_errors = true)"
        )
        _refuse_ambiguous_header(conn, obj, header, display_name, data_path)
    return parquet_rows(conn, data_path), malformed, warnings


def _dialect(csv: CsvOptions, compression: str | None) -> list[str]:
    """How lines split into fields: shared by every read of the file."""
    options = [
        f"delim = {literal(csv.delimiter)}",
        f"quote = {literal(csv.quote)}",
        f"escape = {literal(csv.escape)}",
        f"encoding = {literal(csv.encoding)}",
        f"compression = {literal(compression or 'none')}",
        f"skip = {csv.skip_rows}",
    ]
    if csv.comment is not None:
        options.append(f"comment = {literal(csv.comment)}")
    return options


def _record_options(obj: ObjectSpec, csv: CsvOptions, first: str | None = None) -> list[str]:
    """Header, column layout and the rejects table; `first` names an extra first column."""
    options = [
        "all_varchar = true",
        f"header = {literal(csv.header)}",
        "null_padding = false",
        "store_rejects = true",
    ]
    if not csv.header:
        # the contract fixes the layout: without the sniffer, a record with another number
        # of fields is rejected instead of changing the columns
        names = [*([first] if first else []), *obj.columns]
        columns = ", ".join(f"{literal(n)}: 'VARCHAR'" for n in names)
        options += ["auto_detect = false", f"columns = {{{columns}}}"]
    return options


def _refuse_bad_encoding(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    rejects_table: str,
    display_name: str,
) -> None:
    bad_encoding = conn.execute(
        f"SELECT min(line) FROM {rejects_table} WHERE error_type = 'INVALID ENCODING'"
    ).fetchone()
    if bad_encoding and bad_encoding[0] is not None:
        line = int(bad_encoding[0])
        raise SourceError(
            f"{display_name}:{line}: not valid {csv.encoding} text; set "
            f"`csv: {{encoding: ...}}` on object '{obj.name}' (utf-8, utf-16 or latin-1)",
            file=display_name,
            line=line,
            object=obj.name,
            unreadable=True,
        )


def _count_rejected(conn: duckdb.DuckDBPyConnection, rejects_table: str) -> int:
    row = conn.execute(f"SELECT count(DISTINCT line) FROM {rejects_table}").fetchone()
    return int(row[0]) if row else 0


def _reject_record_numbers(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    path: Path,
    rejects_table: str,
    data_path: Path,
) -> list[int] | None:
    """The record number of each rejected line, in file order; None when the numbered read
    disagrees with the first about which records are malformed (it should not)."""
    numbered = data_path.with_name(_NUMBERED)
    lines = data_path.with_name(_NUMBERED_LINES)
    suffix = uuid.uuid4().hex[:12]
    table, scan = f"_numbered_rejects_{suffix}", f"_numbered_scan_{suffix}"
    try:
        _numbered_copy(path, csv, numbered)
        plain = csv.model_copy(update={"encoding": "utf-8"})
        options = [
            *_record_options(obj, plain, "__penstock_line"),
            *_dialect(plain, None),
            f"rejects_table = {literal(table)}",
            f"rejects_scan = {literal(scan)}",
        ]
        read = f"read_csv({literal(str(numbered))}, {', '.join(options)})"
        conn.execute(
            f"COPY (SELECT #1::BIGINT AS line FROM {read}) TO {literal(str(lines))} ({PARQUET})"
        )
        rows = conn.execute(
            f"""
            SELECT coalesce(g.file_row_number + 1, 0) + row_number() OVER (ORDER BY r.line)
            FROM (
                SELECT DISTINCT regexp_extract(ltrim(csv_line, e'\\r\\n'), '^[0-9]+')::BIGINT
                    AS line
                FROM {table}
            ) r
            ASOF LEFT JOIN read_parquet({literal(str(lines))}, file_row_number = true) g
                ON r.line > g.line
            ORDER BY r.line
            """
        ).fetchall()
        if len(rows) != _count_rejected(conn, rejects_table):
            return None
        return [int(n) for (n,) in rows]
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
    conn: duckdb.DuckDBPyConnection,
    rejects_table: str,
    path: Path,
    numbers: list[int] | None,
    csv: CsvOptions,
    display_name: str,
) -> list[str]:
    """Malformed records (one per line DuckDB rejected): record number, raw text, complaint.
    Without `numbers`, DuckDB's line less the header and skipped lines stands in."""
    warnings = []
    offset = csv.skip_rows + (1 if csv.header else 0)
    if numbers is None:
        numbers = []
        warnings.append(
            f"{display_name}: record numbers of malformed lines could not be checked; they "
            f"may count blank or comment lines before them"
        )
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
                    SELECT coalesce(n.n, r.line - {offset}) AS _row_number, r._raw_line, r._error
                    FROM (
                        SELECT line, row_number() OVER (ORDER BY line) AS i,
                               ltrim(any_value(csv_line), e'\\r\\n') AS _raw_line,
                               lower(arg_min(error_type, column_idx)) || ': '
                                   || arg_min(error_message, column_idx) AS _error
                        FROM {rejects_table} GROUP BY line
                    ) r
                    LEFT JOIN {view} n USING (i)
                    ORDER BY r.line
                ) TO {literal(str(tmp))} ({PARQUET})
                """
            )
    finally:
        conn.unregister(view)
    return warnings


_RENAMED = re.compile(r"^(?P<base>.+)_\d+$")


def _refuse_ambiguous_header(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    header_read: str,
    display_name: str,
    data: Path,
) -> None:
    """Two header names equal ignoring case and surrounding spaces make every record
    ambiguous: an error for the file. DuckDB trims header names and renames the second of two
    equal ones (`Name,name` reads as `Name, name_1`), so the header as written is read only
    when the staged names show such a rename."""
    staged = [source_key(name) for name in parquet_schema(conn, data)]
    if not any((m := _RENAMED.match(n)) and m["base"] in staged for n in staged):
        return
    row = conn.execute(f"SELECT * FROM {header_read} LIMIT 1").fetchone() or ()
    seen: dict[str, str] = {}
    for name in (str(v) for v in row if v is not None):
        first = seen.get(source_key(name))
        if first is None:
            seen[source_key(name)] = name
            continue
        what = (
            f"'{name}' appears twice"
            if first == name
            else f"'{first}' and '{name}' differ only in case"
            if first.lower() == name.lower()
            else f"'{first}' and '{name}' differ only in case or surrounding spaces"
        )
        # the header's line, unless comment lines may stand before it
        csv = obj.csv or CsvOptions()
        line = csv.skip_rows + 1 if csv.comment is None else None
        raise SourceError(
            f"{display_name}{f':{line}' if line else ''}: header names {what}; every record "
            f"would be ambiguous (rename one in the file)",
            file=display_name,
            line=line,
            object=obj.name,
            unreadable=True,
        )


def parquet_rows(conn: duckdb.DuckDBPyConnection, path: Path) -> int:
    row = conn.execute(
        f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({literal(str(path))})"
    ).fetchone()
    return int(row[0]) if row else 0


def parquet_schema(conn: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    described = conn.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(str(path))})")
    return {str(name): str(dtype) for name, dtype, *_ in described.fetchall()}
