"""Staging JSON Lines: one JSON object per non-blank line, every value kept as its JSON text.

Record numbers count non-blank lines. A line that is not a JSON object is a malformed record,
kept in the rejects file with its raw text. The file is read whole (DuckDB `read_text`), so
its memory use is a few times its size: split very large JSONL drops.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from penstock.errors import SourceError, first_line
from penstock.lake import atomic_target
from penstock.lake.manifest import PARQUET
from penstock.sql import ident, literal

if TYPE_CHECKING:
    from penstock.sources.base import SourceItem


def _pointer(key: str) -> str:
    """A JSON pointer to a top-level key (exact even for keys with quotes or dots)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def stage_jsonl(
    conn: duckdb.DuckDBPyConnection, item: SourceItem, data_path: Path, rejects_path: Path
) -> tuple[int, int]:
    lines = f"_jsonl_{uuid.uuid4().hex[:12]}"
    try:
        conn.execute(
            f"""
            CREATE TEMP TABLE {lines} AS
            SELECT n AS _row_number, line,
                   CASE WHEN ltrim(line) LIKE '{{%' THEN json_valid(line) ELSE false END AS ok
            FROM (
                -- blank lines are dropped in list space, so a line's list index is its record
                -- number; generate_subscripts beside unnest also keeps DuckDB's unnest fast
                SELECT rtrim(unnest(parts), chr(13)) AS line, generate_subscripts(parts, 1) AS n
                FROM (SELECT list_filter(string_split(content, chr(10)),
                                         lambda x: trim(x) <> '') AS parts
                      FROM read_text({literal(str(item.path))}))
            )
            """
        )
    except duckdb.Error as exc:
        if "UTF-8" not in str(exc):
            raise SourceError(
                f"{item.display_name}: cannot read as JSON Lines: {first_line(exc)}",
                file=item.display_name,
            ) from exc
        line = _first_bad_utf8_line(item.path)
        where = f"{item.display_name}:{line}" if line else item.display_name
        raise SourceError(
            f"{where}: not valid UTF-8 text (JSON Lines must be UTF-8)",
            file=item.display_name,
            line=line,
        ) from exc
    try:
        keys = [
            str(row[0])
            for row in conn.execute(
                f"SELECT k FROM (SELECT _row_number, unnest(json_keys(line)) AS k "
                f"FROM {lines} WHERE ok) GROUP BY k ORDER BY min(_row_number), k"
            ).fetchall()
        ]
        select = ", ".join(
            f"json_extract_string(line, {literal(_pointer(k))}) AS {ident(k)}" for k in keys
        )
        if not keys:
            select = "NULL::VARCHAR AS _empty"
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
                    f"COPY (SELECT _row_number, line AS _raw_line, "
                    f"'malformed: not a JSON object' AS _error FROM {lines} "
                    f"WHERE NOT ok ORDER BY _row_number) TO {literal(str(tmp))} ({PARQUET})"
                )
        return rows, malformed
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {lines}")


def _first_bad_utf8_line(path: Path) -> int | None:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1
    return None
