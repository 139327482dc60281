"""Rows from the embedded DuckDB (validation's engine) into PostgreSQL, by COPY.

DuckDB writes the query's rows as CSV (its C++ writer, all cores) into a named pipe while this
thread streams the pipe into `COPY … FROM STDIN (FORMAT csv)` in 1 MiB writes: both engines
work at once, nothing is converted row by row in Python, nothing lands on disk. DuckDB's CSV
is what PostgreSQL's CSV reads: NULL is an empty field, an empty string is `""`, numbers print
exactly (doubles in their shortest round-trip form), timestamps as `YYYY-MM-DD HH:MM:SS.ffffff`
(TIMESTAMPTZ with `+00`: both sessions run in UTC). A list column must be turned into a
PostgreSQL array literal first (`pg_array_sql`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb

from penstock.errors import WarehouseError, first_line
from penstock.sql import idents, literal
from penstock.warehouse.postgres_tables import PgConnection

CHUNK_BYTES = 1 << 20


def pg_array_sql(expression: str) -> str:
    """A DuckDB VARCHAR[] expression as PostgreSQL's text[] input syntax (`{"a","b"}`):
    each element double-quoted, its backslashes and quotes escaped; NULL stays NULL."""
    element = "'\"' || replace(replace(__x, '\\', '\\\\'), '\"', '\\\"') || '\"'"
    return (
        f"'{{' || array_to_string(list_transform({expression}, lambda __x: {element}), ',') || '}}'"
    )


def copy_rows(
    duck: duckdb.DuckDBPyConnection,
    pg: PgConnection,
    select_sql: str,
    target: str,
    columns: Sequence[str],
) -> int:
    """Copy the rows of the DuckDB query `select_sql` (its columns in `columns` order) into
    the PostgreSQL table `target` (quoted); the number of rows copied. A failure on either
    side raises (the COPY, and so the caller's transaction, fails)."""
    scratch = Path(tempfile.mkdtemp(prefix="penstock-copy-"))
    pipe = scratch / "rows.csv"
    os.mkfifo(pipe)
    failure: list[BaseException] = []
    opened = threading.Event()  # the reading end is open

    def export() -> None:
        try:
            duck.execute(
                f"COPY ({select_sql}) TO {literal(str(pipe))} "
                f"(FORMAT csv, HEADER false, USE_TMP_FILE false)"
            )
        except BaseException as exc:  # handed to the reading thread
            failure.append(exc)
            _release_reader(pipe, opened)

    writer = threading.Thread(target=export, name="penstock-copy", daemon=True)
    writer.start()
    try:
        with pipe.open("rb") as rows:
            opened.set()
            with (
                pg.cursor() as cur,
                cur.copy(f"COPY {target} ({idents(columns)}) FROM STDIN (FORMAT csv)") as copy,
            ):
                while data := rows.read(CHUNK_BYTES):
                    copy.write(data)
                writer.join()
                if failure:
                    raise failure[0]
            count = cur.rowcount
    except duckdb.Error as exc:
        raise WarehouseError(f"reading the rows to copy failed: {first_line(exc)}") from exc
    finally:
        # the reading end is closed: a writer still at work meets a broken pipe and ends
        writer.join()
        shutil.rmtree(scratch, ignore_errors=True)
    return int(count)


def _release_reader(pipe: Path, opened: threading.Event) -> None:
    """DuckDB failed, perhaps before it opened the pipe: a reader waiting in `open` is let
    through (it then reads no rows and raises DuckDB's error)."""
    while not opened.is_set():
        try:
            fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader waiting yet (ENXIO)
            time.sleep(0.005)
            continue
        os.close(fd)
        return
