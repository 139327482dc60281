"""Staging JSON records: JSON Lines (one object per non-blank line) and JSON arrays (one array
of objects), every value kept as its JSON text.

JSON Lines: record numbers count non-blank lines (a line holding only spaces, tabs or a
carriage return is blank). A JSON array: record numbers are element numbers. A UTF-8 byte order
mark at the start of the file is not part of record 1. A line or element that is not a JSON
object is a malformed record, kept in the rejects file with its raw text; one holding bytes
that are not UTF-8 is an `encoding` record, kept with those bytes escaped (`\\xNN`). Each
reject's `_reason` (`malformed` or `encoding`) says which. A last record cut short (a file
that ends inside it) is a malformed record whose error says so.

Keys are matched like CSV headers, ignoring case and surrounding spaces (`source_key`): `a` in
one record and `A` in another are one column, staged under the first spelling seen. A record
holding two keys equal under that rule (or the same key twice) is ambiguous and is a malformed
record naming both. The empty key `""` can never be a contract column (nor a column name): it
is ignored, with a warning.

The file (plain, `.gz`, `.zst` or `.bz2`) is streamed (`penstock.sources.lines` for JSON Lines,
`penstock.sources.json_array` for arrays) into a Parquet file of numbered records beside the
batch, then read from there, so memory stays bounded whatever the file's size; that file is
removed once the batch is staged.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Protocol

import duckdb
import pyarrow as pa

from penstock.catalog import ObjectSpec
from penstock.catalog.columns import SOURCE_NAME_SPACES, source_key
from penstock.errors import SourceError, first_line
from penstock.lake import atomic_target
from penstock.lake.manifest import PARQUET
from penstock.sources.damage import ENCODING, MALFORMED
from penstock.sql import ident, literal

NOT_AN_OBJECT = "malformed: not a JSON object"
LINES_NAME = "_lines.parquet"
# the numbered lines are read back two or three times, then removed: written fast, not small
_LINES_PARQUET = "FORMAT parquet, COMPRESSION uncompressed"
_KEYS = "json_keys(line)"
_SPACES = literal(SOURCE_NAME_SPACES)
# what JSON counts as whitespace before a value (a line may start with a tab or a carriage return)
_JSON_SPACE = literal(" \t\r\n")


def _key_sql(name: str) -> str:
    """`source_key` in SQL."""
    return f"lower(trim({name}, {_SPACES}))"


_AMBIGUOUS = (
    f"len({_KEYS}) <> len(list_distinct(list_transform({_KEYS}, lambda k: {_key_sql('k')})))"
)
# the first key of an ambiguous record with another spelling, and that other spelling
_CLASH = (
    f"list_filter({_KEYS}, lambda k: len(list_filter({_KEYS}, "
    f"lambda j: {_key_sql('j')} = {_key_sql('k')})) > 1)[1]"
)
_OTHER = f"list_filter({_KEYS}, lambda k: {_key_sql('k')} = {_key_sql(_CLASH)})[2]"
_AMBIGUITY = f"""CASE WHEN {_CLASH} = {_OTHER}
    THEN 'malformed: key ' || to_json({_CLASH}) || ' appears twice'
    ELSE 'malformed: keys ' || to_json({_CLASH}) || ' and ' || to_json({_OTHER})
         || CASE WHEN lower({_CLASH}) = lower({_OTHER}) THEN ' differ only in case'
                 ELSE ' differ only in case or surrounding spaces' END END"""


class RecordReader(Protocol):
    """Numbered records as JSON text, streamed: `reader()` yields batches of
    (`_row_number`, `line`, `_error`), `_error` saying why a record's bytes are not text (NULL
    when they are). An error raised while DuckDB pulls the stream reaches the caller as a
    DuckDB error, so the reader keeps the SourceError it raised in `error`. Once read:
    `cut_record` is the record the file ends inside of (if it may be cut short there), with
    `cut_note` saying so; `warnings` are about the file as a whole."""

    what: str
    error: SourceError | None
    cut_record: int | None
    cut_note: str
    warnings: list[str]

    def reader(self) -> pa.RecordBatchReader: ...


def _pointer(key: str) -> str:
    """A JSON pointer to a top-level key (exact even for keys with quotes or dots)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def stage_json_records(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    records: RecordReader,
    display_name: str,
    data_path: Path,
    rejects_path: Path,
) -> tuple[int, int, list[str]]:
    """Stage the records of a file (shown as `display_name`): (rows, malformed, warnings)."""
    lines_path = data_path.with_name(LINES_NAME)
    try:
        _write_lines(conn, obj, records, display_name, lines_path)
        base = f"read_parquet({literal(str(lines_path))})"
        keys = _keys(conn, base)
        if _may_be_ambiguous(conn, base, keys):
            base = (
                f"(SELECT _row_number, line, ok AND NOT amb AS ok, "
                f"CASE WHEN amb THEN {_AMBIGUITY} ELSE _error END AS _error, "
                f"CASE WHEN amb THEN {literal(MALFORMED)} ELSE _reason END AS _reason "
                # CASE, not AND: json_keys must not see the lines that are not JSON
                f"FROM (SELECT *, CASE WHEN ok THEN {_AMBIGUOUS} ELSE false END AS amb "
                f"FROM {base}))"
            )
            keys = _keys(conn, base)
        rows, malformed, warnings = _write(
            conn, base, keys, display_name, data_path, rejects_path, _cut(records)
        )
        return rows, malformed, records.warnings + warnings
    finally:
        lines_path.unlink(missing_ok=True)


def _write_lines(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    lines: RecordReader,
    display_name: str,
    lines_path: Path,
) -> None:
    """Stream the file's numbered records, each judged a JSON object or not, into
    `lines_path`."""
    view = f"_jsonl_{uuid.uuid4().hex[:12]}"
    conn.register(view, lines.reader())
    try:
        conn.execute(
            f"""
            COPY (
                SELECT _row_number, line, ok,
                       CASE WHEN NOT ok THEN coalesce(_error, {literal(NOT_AN_OBJECT)}) END
                           AS _error,
                       CASE WHEN ok THEN NULL WHEN _error IS NULL THEN {literal(MALFORMED)}
                            ELSE {literal(ENCODING)} END AS _reason
                FROM (
                    SELECT _row_number, line::VARCHAR AS line, _error::VARCHAR AS _error,
                           CASE WHEN _error IS NULL AND ltrim(line, {_JSON_SPACE}) LIKE '{{%'
                                THEN json_valid(line) ELSE false END AS ok
                    FROM {view}
                )
            ) TO {literal(str(lines_path))} ({_LINES_PARQUET})
            """
        )
    except duckdb.Error as exc:
        if lines.error is not None:
            raise lines.error from exc
        raise SourceError(
            f"{display_name}: cannot read as {lines.what}: {first_line(exc)}",
            file=display_name,
            object=obj.name,
        ) from exc
    finally:
        conn.unregister(view)


def _cut(records: RecordReader) -> str:
    """The rejects' `_error`, with the record the file ends inside of said to be cut short
    when it is not a JSON object."""
    if records.cut_record is None:
        return "_error"
    cut = f"{NOT_AN_OBJECT} ({records.cut_note})"
    return (
        f"CASE WHEN _row_number = {records.cut_record} AND _error = {literal(NOT_AN_OBJECT)} "
        f"THEN {literal(cut)} ELSE _error END"
    )


def _keys(conn: duckdb.DuckDBPyConnection, base: str) -> list[tuple[str, int, int]]:
    """Every distinct key of the well-formed records: (key, occurrences, first record)."""
    return [
        (str(k), int(n), int(first))
        for k, n, first in conn.execute(
            f"SELECT k, count(*), min(_row_number) "
            f"FROM (SELECT _row_number, unnest(json_keys(line)) AS k FROM {base} WHERE ok) "
            f"GROUP BY k"
        ).fetchall()
    ]


def _may_be_ambiguous(
    conn: duckdb.DuckDBPyConnection, base: str, keys: list[tuple[str, int, int]]
) -> bool:
    """Whether any record may hold two spellings of one key (or one key twice): looking per
    record costs a pass over every record's key list, so it runs only when the file's distinct
    keys show two spellings of one name, or a key occurs more often than there are records
    holding it (one more parse per record, about half the cost of the key scan)."""
    if len({source_key(k) for k, _, _ in keys}) < len(keys):
        return True
    if not keys:
        return False
    pointers = ", ".join(literal(_pointer(k)) for k, _, _ in keys)
    holding = ", ".join(f"count(*) FILTER (e[{i + 1}])" for i in range(len(keys)))
    row = conn.execute(
        f"SELECT {holding} FROM (SELECT json_exists(line, [{pointers}]) AS e FROM {base} WHERE ok)"
    ).fetchone()
    return row is not None and any(n > int(held) for (_, n, _), held in zip(keys, row, strict=True))


def _write(
    conn: duckdb.DuckDBPyConnection,
    base: str,
    keys: list[tuple[str, int, int]],
    display_name: str,
    data_path: Path,
    rejects_path: Path,
    error: str,
) -> tuple[int, int, list[str]]:
    # one staged column per name ignoring case, spelled as first seen, in order of appearance
    names: dict[str, list[tuple[int, str, int]]] = {}
    for key, occurrences, first in keys:
        names.setdefault(source_key(key), []).append((first, key, occurrences))
    warnings: list[str] = []
    paths: list[str] = []  # every spelling of every staged key, as a JSON pointer
    columns: list[str] = []
    for spellings in sorted((sorted(group) for group in names.values()), key=lambda g: g[0][:2]):
        first_seen = spellings[0][1]
        if source_key(first_seen) == "":
            held = sum(n for _, _, n in spellings)
            warnings.append(
                f"{display_name}: key {json.dumps(first_seen)} (empty) in {held} record(s) is not "
                f"a column name; ignored"
            )
            continue
        # A record holds at most one spelling (two would make it ambiguous, hence malformed),
        # so the first non-null of the spellings' values is that record's value.
        values = [f"_v[{len(paths) + i + 1}]" for i in range(len(spellings))]
        paths += [_pointer(k) for _, k, _ in spellings]
        value = values[0] if len(values) == 1 else f"coalesce({', '.join(values)})"
        columns.append(f"{value} AS {ident(first_seen)}")
    # one parse of each record extracts every key
    select = (
        f"{', '.join(columns)} FROM (SELECT json_extract_string(line, "
        f"[{', '.join(literal(p) for p in paths)}]) AS _v FROM {base} WHERE ok)"
        if columns
        else f"NULL::VARCHAR AS _empty FROM {base} WHERE ok"
    )
    # the lines file is in record order and a scan keeps it: the staged rows are too
    with atomic_target(data_path) as tmp:
        written = conn.execute(
            f"COPY (SELECT {select}) TO {literal(str(tmp))} ({PARQUET})"
        ).fetchone()
    rows = int(written[0]) if written else 0
    counted = conn.execute(f"SELECT count(*) FROM {base} WHERE NOT ok").fetchone()
    malformed = int(counted[0]) if counted else 0
    if malformed:
        with atomic_target(rejects_path) as tmp:
            conn.execute(
                f"COPY (SELECT _row_number, line AS _raw_line, {error} AS _error, _reason "
                f"FROM {base} WHERE NOT ok ORDER BY _row_number) "
                f"TO {literal(str(tmp))} ({PARQUET})"
            )
    return rows, malformed, warnings
