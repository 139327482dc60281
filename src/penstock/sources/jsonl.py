"""Staging JSON Lines: one JSON object per non-blank line, every value kept as its JSON text.

Record numbers count non-blank lines (a line holding only spaces, tabs or a carriage return is
blank). A UTF-8 byte order mark at the start of the file is not part of record 1. A line that
is not a JSON object is a malformed record, kept in the rejects file with its raw text.

Keys are matched case-insensitively, like CSV headers: `a` in one record and `A` in another
are one column, staged under the first spelling seen. A record holding two keys equal but for
case (or the same key twice) is ambiguous and is a malformed record naming both. The empty key
`""` can never be a contract column (nor a column name): it is ignored, with a warning.

The file (plain, `.gz` or `.zst`) is streamed (`penstock.sources.lines`) into a Parquet file
of numbered lines beside the batch, then read from there, so memory stays bounded whatever
the file's size; that file is removed once the batch is staged.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb

from penstock.catalog import ObjectSpec
from penstock.errors import SourceError, first_line
from penstock.lake import atomic_target
from penstock.lake.manifest import PARQUET
from penstock.sources.lines import LineReader
from penstock.sql import ident, literal

NOT_AN_OBJECT = "malformed: not a JSON object"
LINES_NAME = "_lines.parquet"
# the numbered lines are read back two or three times, then removed: written fast, not small
_LINES_PARQUET = "FORMAT parquet, COMPRESSION uncompressed"
_KEYS = "json_keys(line)"
_AMBIGUOUS = f"len({_KEYS}) <> len(list_distinct(list_transform({_KEYS}, lambda k: lower(k))))"
# the first key of an ambiguous record with another spelling, and that other spelling
_CLASH = (
    f"list_filter({_KEYS}, lambda k: len(list_filter({_KEYS}, "
    f"lambda j: lower(j) = lower(k))) > 1)[1]"
)
_OTHER = f"list_filter({_KEYS}, lambda k: lower(k) = lower({_CLASH}))[2]"
_AMBIGUITY = f"""CASE WHEN {_CLASH} = {_OTHER}
    THEN 'malformed: key ' || to_json({_CLASH}) || ' appears twice'
    ELSE 'malformed: keys ' || to_json({_CLASH}) || ' and ' || to_json({_OTHER})
         || ' differ only in case' END"""


def _pointer(key: str) -> str:
    """A JSON pointer to a top-level key (exact even for keys with quotes or dots)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def stage_jsonl(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    path: Path,
    display_name: str,
    data_path: Path,
    rejects_path: Path,
) -> tuple[int, int, list[str]]:
    """Stage `path` (shown as `display_name`): (rows, malformed records, warnings)."""
    lines_path = data_path.with_name(LINES_NAME)
    try:
        _write_lines(conn, obj, path, display_name, lines_path)
        base = f"read_parquet({literal(str(lines_path))})"
        keys = _keys(conn, base)
        if _may_be_ambiguous(conn, base, keys):
            base = (
                f"(SELECT _row_number, line, ok AND NOT amb AS ok, "
                f"CASE WHEN amb THEN {_AMBIGUITY} ELSE _error END AS _error "
                # CASE, not AND: json_keys must not see the lines that are not JSON
                f"FROM (SELECT *, CASE WHEN ok THEN {_AMBIGUOUS} ELSE false END AS amb "
                f"FROM {base}))"
            )
            keys = _keys(conn, base)
        return _write(conn, base, keys, display_name, data_path, rejects_path)
    finally:
        lines_path.unlink(missing_ok=True)


def _write_lines(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    path: Path,
    display_name: str,
    lines_path: Path,
) -> None:
    """Stream the file's numbered non-blank lines, each judged a JSON object or not, into
    `lines_path`."""
    lines = LineReader(path, display_name, "JSON Lines", obj.name)
    view = f"_jsonl_{uuid.uuid4().hex[:12]}"
    conn.register(view, lines.reader())
    try:
        conn.execute(
            f"""
            COPY (
                SELECT _row_number, line, ok,
                       CASE WHEN NOT ok THEN {literal(NOT_AN_OBJECT)} END AS _error
                FROM (
                    SELECT _row_number, line::VARCHAR AS line,
                           CASE WHEN ltrim(line) LIKE '{{%' THEN json_valid(line)
                                ELSE false END AS ok
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
    """Whether any record may hold two spellings of one key: looking per record costs a
    pass over every record's keys, so it runs only when the file's distinct keys show two
    spellings of one name, or a key more often than there are records."""
    if len({k.lower() for k, _, _ in keys}) < len(keys):
        return True
    row = conn.execute(f"SELECT count(*) FROM {base} WHERE ok").fetchone()
    records = int(row[0]) if row else 0
    return any(n > records for _, n, _ in keys)


def _write(
    conn: duckdb.DuckDBPyConnection,
    base: str,
    keys: list[tuple[str, int, int]],
    display_name: str,
    data_path: Path,
    rejects_path: Path,
) -> tuple[int, int, list[str]]:
    # one staged column per name ignoring case, spelled as first seen, in order of appearance
    names: dict[str, list[tuple[int, str, int]]] = {}
    for key, occurrences, first in keys:
        names.setdefault(key.lower(), []).append((first, key, occurrences))
    warnings: list[str] = []
    paths: list[str] = []  # every spelling of every staged key, as a JSON pointer
    columns: list[str] = []
    for spellings in sorted((sorted(group) for group in names.values()), key=lambda g: g[0][:2]):
        first_seen = spellings[0][1]
        if first_seen == "":
            warnings.append(
                f'{display_name}: key "" (empty) in {spellings[0][2]} record(s) is not a column '
                f"name; ignored"
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
                f"COPY (SELECT _row_number, line AS _raw_line, _error FROM {base} "
                f"WHERE NOT ok ORDER BY _row_number) TO {literal(str(tmp))} ({PARQUET})"
            )
    return rows, malformed, warnings
