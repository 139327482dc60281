"""`penstock query` on a DuckDB warehouse: a read-only connection, statements that read only.

Two guards: the statement's type, from DuckDB's own parser, must be one that reads (so COPY
TO, EXPORT, ATTACH or INSTALL, which would write outside the warehouse, are refused as well);
and the connection is read-only, so nothing can write the warehouse file whatever the
statement does. The file is held (a shared lock) only while the statement runs.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from penstock.catalog import Project
from penstock.errors import WarehouseError
from penstock.warehouse.duckdb import open_waiting
from penstock.warehouse.query import QueryFailed, QueryRefused, QueryResult, unique_names

# DuckDB statement types that only read: SELECT covers FROM-first, WITH, VALUES, DESCRIBE,
# SHOW and SUMMARIZE; MULTI is a PIVOT (types made for it live in the connection only).
READING = frozenset({"SELECT", "EXPLAIN", "PRAGMA", "CALL", "MULTI"})
ALLOWED = "SELECT, FROM, WITH, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN, PRAGMA or CALL"


def duckdb_message(exc: BaseException) -> str:
    """DuckDB's message on one line: the error and its hint ("Did you mean ...?"), without
    the `LINE 1: ...` excerpt and caret that follow."""
    lines = []
    for line in str(exc).strip().splitlines():
        if line.startswith("LINE ") or line.lstrip().startswith("^"):
            break
        if line.strip():
            lines.append(line.strip())
    return " ".join(lines) or type(exc).__name__


def duckdb_query(
    project: Project,
    sql: str,
    *,
    limit: int | None,
    wait: float,
    on_wait: Callable[[str], None] | None,
) -> QueryResult:
    path = project.warehouse_path
    if path is None:
        raise WarehouseError(
            "the warehouse is in memory: it holds nothing between commands to query"
        )
    if not path.exists():
        raise WarehouseError(
            f"the warehouse {path.name} does not exist yet: `penstock run` creates it"
        )
    warehouse = open_waiting(
        path, project.warehouse_options, wait=wait, on_wait=on_wait, read_only=True
    )
    try:
        conn = warehouse.conn
        try:
            statements = conn.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryFailed(duckdb_message(exc)) from exc
        if len(statements) != 1:
            raise QueryRefused(
                f"give one statement at a time ({len(statements)} given)"
                if statements
                else 'give a SQL statement, e.g. penstock query "FROM orders LIMIT 5"'
            )
        kind = statements[0].type.name
        if kind not in READING:
            raise QueryRefused(
                f"refused: {kind} is not a read-only statement; penstock query runs {ALLOWED}"
            )
        try:
            cursor = conn.execute(sql)
            if cursor.description is None:  # e.g. a PRAGMA that returns nothing
                return QueryResult((), (), [], truncated=False)
            rows = cursor.fetchall() if limit is None else cursor.fetchmany(limit + 1)
        except duckdb.Error as exc:
            raise QueryFailed(duckdb_message(exc)) from exc
        names = unique_names([str(d[0]) for d in cursor.description])
        types = tuple(str(d[1]) for d in cursor.description)
        truncated = limit is not None and len(rows) > limit
        return QueryResult(names, types, rows[:limit] if truncated else rows, truncated)
    finally:
        warehouse.close()
