"""`penstock query`: one read-only SQL statement against the project's warehouse.

One function per warehouse engine, chosen by the URL's scheme (`QUERY_ENGINES`), each opening
its own read-only connection and refusing a statement that writes before running it:
- duckdb (`duckdb_query`): a read-only connection to the file, which DuckDB cannot open while
  a run holds the file for writing, nor a run while it is open: the query waits up to `wait`
  seconds for a run to finish, and holds the file only while it runs;
- postgresql (`postgres_query`): one statement in a `READ ONLY` transaction (no file lock:
  queries and runs never wait for each other there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from penstock.catalog import Project
from penstock.errors import ProjectError, UsageError


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]  # unique names (a repeated name gets a suffix: a, a_2)
    types: tuple[str, ...]  # the engine's type names
    rows: list[tuple[Any, ...]]
    truncated: bool  # the statement returned more rows than the limit


class QueryRefused(UsageError):
    """The statement would write, or is not one statement."""


class QueryFailed(UsageError):
    """The warehouse rejected the statement (a syntax error, an unknown table ...)."""


class QueryEngine(Protocol):
    def __call__(
        self,
        project: Project,
        sql: str,
        *,
        limit: int | None,
        wait: float,
        on_wait: Callable[[str], None] | None,
    ) -> QueryResult: ...


def unique_names(names: list[str]) -> tuple[str, ...]:
    """Column names made unique for JSON objects: the second `a` becomes `a_2`."""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        out.append(candidate)
    return tuple(out)


def scheme_of(project: Project) -> str:
    return project.warehouse.split(":", 1)[0]


def run_query(
    project: Project,
    sql: str,
    *,
    limit: int | None = None,
    wait: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
) -> QueryResult:
    """Run `sql` read-only; at most `limit` rows (None: all)."""
    from penstock.warehouse.duckdb_query import duckdb_query

    engines: dict[str, QueryEngine] = {"duckdb": duckdb_query}
    if scheme_of(project) in ("postgresql", "postgres"):
        from penstock.warehouse.postgres_query import postgres_query

        engines = {"postgresql": postgres_query, "postgres": postgres_query}
    scheme = project.warehouse.split(":", 1)[0]
    engine = engines.get(scheme)
    if engine is None:
        raise ProjectError(
            f"penstock query does not support warehouse engine '{scheme}' yet "
            f"(supported: {', '.join(engines)})",
            file="penstock.yml",
            key_path="warehouse",
        )
    if not sql.strip():
        raise QueryRefused('give a SQL statement, e.g. penstock query "FROM orders LIMIT 5"')
    return engine(project, sql, limit=limit, wait=wait, on_wait=on_wait)
