"""Staging JSON Lines: one JSON object per non-blank line, every value kept as its JSON text.

Record numbers count non-blank lines (a line holding only spaces, tabs or a carriage return is
blank). A UTF-8 byte order mark at the start of the file is not part of record 1. A line that
is not a JSON object is a malformed record, kept in the rejects file with its raw text.

Keys are matched case-insensitively, like CSV headers: `a` in one record and `A` in another
are one column, staged under the first spelling seen. A record holding two keys equal but for
case (or the same key twice) is ambiguous and is a malformed record naming both. The empty key
`""` can never be a contract column (nor a column name): it is ignored, with a warning.

The file is read whole (DuckDB `read_text`), so its memory use is a few times its size: split
very large JSONL drops.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb

from penstock.catalog import ObjectSpec
from penstock.errors import SourceError, first_line
from penstock.lake import atomic_target
from penstock.lake.manifest import PARQUET
from penstock.sql import ident, literal

_BOM = "chr(65279)"
_BLANK = "' ' || chr(9) || chr(13)"
NOT_AN_OBJECT = "malformed: not a JSON object"


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
    lines = f"_jsonl_{uuid.uuid4().hex[:12]}"
    try:
        conn.execute(
            f"""
            CREATE TEMP TABLE {lines} AS
            SELECT _row_number, line, ok,
                   CASE WHEN NOT ok THEN {literal(NOT_AN_OBJECT)} END AS _error
            FROM (
                SELECT n AS _row_number, line,
                       CASE WHEN ltrim(line) LIKE '{{%' THEN json_valid(line) ELSE false END AS ok
                FROM (
                    -- blank lines are dropped in list space, so a line's list index is its
                    -- record number; generate_subscripts beside unnest keeps unnest fast
                    SELECT rtrim(unnest(parts), chr(13)) AS line,
                           generate_subscripts(parts, 1) AS n
                    FROM (
                        SELECT list_filter(string_split(
                                   CASE WHEN starts_with(content, {_BOM})
                                        THEN content[2:] ELSE content END, chr(10)),
                               lambda x: trim(x, {_BLANK}) <> '') AS parts
                        FROM read_text({literal(str(path))})
                    )
                )
            )
            """
        )
    except duckdb.Error as exc:
        if "UTF-8" not in str(exc):
            raise SourceError(
                f"{display_name}: cannot read as JSON Lines: {first_line(exc)}",
                file=display_name,
                object=obj.name,
            ) from exc
        line = _first_bad_utf8_line(path)
        where = f"{display_name}:{line}" if line else display_name
        raise SourceError(
            f"{where}: not valid UTF-8 text (JSON Lines must be UTF-8)",
            file=display_name,
            line=line,
            object=obj.name,
        ) from exc
    try:
        keys = _keys(conn, lines)
        if _may_be_ambiguous(conn, lines, keys):
            _mark_ambiguous(conn, lines)
            keys = _keys(conn, lines)
        return _write(conn, lines, keys, display_name, data_path, rejects_path)
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {lines}")


def _keys(conn: duckdb.DuckDBPyConnection, lines: str) -> list[tuple[str, int, int]]:
    """Every distinct key of the well-formed records: (key, occurrences, first record)."""
    return [
        (str(k), int(n), int(first))
        for k, n, first in conn.execute(
            f"SELECT k, count(*), min(_row_number) "
            f"FROM (SELECT _row_number, unnest(json_keys(line)) AS k FROM {lines} WHERE ok) "
            f"GROUP BY k"
        ).fetchall()
    ]


def _may_be_ambiguous(
    conn: duckdb.DuckDBPyConnection, lines: str, keys: list[tuple[str, int, int]]
) -> bool:
    """Whether any record may hold two spellings of one key: looking per record costs a
    pass over every record's keys, so it runs only when the file's distinct keys show two
    spellings of one name, or a key more often than there are records."""
    if len({k.lower() for k, _, _ in keys}) < len(keys):
        return True
    row = conn.execute(f"SELECT count(*) FROM {lines} WHERE ok").fetchone()
    records = int(row[0]) if row else 0
    return any(n > records for _, n, _ in keys)


def _mark_ambiguous(conn: duckdb.DuckDBPyConnection, lines: str) -> None:
    """Make each record holding two spellings of one key malformed, naming the two."""
    conn.execute(
        f"""
        CREATE TEMP TABLE {lines}_ks AS
        SELECT _row_number, ks FROM (
            SELECT _row_number, json_keys(line) AS ks FROM {lines} WHERE ok
        ) WHERE len(ks) <> len(list_distinct(list_transform(ks, lambda k: lower(k))))
        """
    )
    conn.execute(
        f"""
        UPDATE {lines} SET ok = false, _error = CASE WHEN a.first = a.second
                THEN 'malformed: key ' || a.first || ' appears twice'
                ELSE 'malformed: keys ' || a.first || ' and ' || a.second
                     || ' differ only in case' END
        FROM (
            SELECT _row_number, to_json(clash[1]) AS first,
                   to_json(list_filter(ks, lambda k: lower(k) = lower(clash[1]))[2]) AS second
            FROM (
                SELECT _row_number, ks,
                       list_filter(ks, lambda k: len(list_filter(ks,
                           lambda j: lower(j) = lower(k))) > 1) AS clash
                FROM {lines}_ks
            )
        ) a
        WHERE {lines}._row_number = a._row_number
        """
    )
    conn.execute(f"DROP TABLE {lines}_ks")


def _write(
    conn: duckdb.DuckDBPyConnection,
    lines: str,
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
    columns: list[str] = []
    for spellings in sorted((sorted(group) for group in names.values()), key=lambda g: g[0][:2]):
        first_seen = spellings[0][1]
        if first_seen == "":
            warnings.append(
                f'{display_name}: key "" (empty) in {spellings[0][2]} record(s) is not a column '
                f"name; ignored"
            )
        else:
            columns.append(_extract(first_seen, [k for _, k, _ in spellings]))
    select = ", ".join(columns) or "NULL::VARCHAR AS _empty"
    with atomic_target(data_path) as tmp:
        conn.execute(
            f"COPY (SELECT {select} FROM {lines} WHERE ok ORDER BY _row_number) "
            f"TO {literal(str(tmp))} ({PARQUET})"
        )
    counts = conn.execute(
        f"SELECT count(*) FILTER (WHERE ok), count(*) FILTER (WHERE NOT ok) FROM {lines}"
    ).fetchone()
    rows, malformed = (int(counts[0]), int(counts[1])) if counts else (0, 0)
    if malformed:
        with atomic_target(rejects_path) as tmp:
            conn.execute(
                f"COPY (SELECT _row_number, line AS _raw_line, _error FROM {lines} "
                f"WHERE NOT ok ORDER BY _row_number) TO {literal(str(tmp))} ({PARQUET})"
            )
    return rows, malformed, warnings


def _extract(column: str, spellings: list[str]) -> str:
    """The value of a key in a record, under whichever case the record spells it, staged as
    `column`. A record holds at most one spelling (two would make it ambiguous, hence
    malformed), so the first non-null of the spellings' values is that record's value."""
    values = [f"json_extract_string(line, {literal(_pointer(k))})" for k in spellings]
    value = values[0] if len(values) == 1 else f"coalesce({', '.join(values)})"
    return f"{value} AS {ident(column)}"


def _first_bad_utf8_line(path: Path) -> int | None:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1
    return None
