"""`penstock query` on a PostgreSQL warehouse: one statement in a `READ ONLY` transaction.

Guards: the statement goes by the extended protocol (asked for with binary results), which
takes one statement only (`SELECT 1; COMMIT; DROP …` is refused by the server); the
transaction is read-only, so any statement that writes fails; it is rolled back whatever
happens. Unqualified names find the warehouse
schema first (`search_path`), so `FROM orders` reads the object table; the ledger and the
quarantine are read with their schemas (`penstock.loads`, or `<schema>_penstock.loads` under
`?schema=`). Runs and queries never wait for each other.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from penstock.catalog import Project
from penstock.errors import first_line
from penstock.sql import ident
from penstock.warehouse.postgres import connect_postgres
from penstock.warehouse.postgres_tables import Schemas
from penstock.warehouse.postgres_url import parse_postgres_url
from penstock.warehouse.query import QueryFailed, QueryRefused, QueryResult, unique_names


def postgres_query(
    project: Project,
    sql: str,
    *,
    limit: int | None,
    wait: float,
    on_wait: Callable[[str], None] | None,
) -> QueryResult:
    del wait, on_wait  # nothing to wait for: PostgreSQL has no file lock
    target = parse_postgres_url(project.warehouse)
    schemas = Schemas.of(target.schema)
    conn = connect_postgres(target)
    try:
        conn.read_only = True
        conn.autocommit = False
        conn.execute(f"SET search_path TO {ident(schemas.data)}, public")
        try:
            # binary results: psycopg then sends by the extended protocol, one statement only
            cursor = conn.cursor(binary=True)
            cursor.execute(sql)
            if cursor.description is None:
                return QueryResult((), (), [], truncated=False)
            rows = cursor.fetchall() if limit is None else cursor.fetchmany(limit + 1)
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise QueryRefused(f"refused: the statement would write ({first_line(exc)})") from exc
        except psycopg.Error as exc:
            message = first_line(exc)
            if target.password:
                message = message.replace(target.password, "***")
            raise QueryFailed(message) from exc
        names = unique_names([d.name for d in cursor.description])
        types = tuple(
            getattr(conn.adapters.types.get(d.type_code), "name", str(d.type_code))
            for d in cursor.description
        )
        truncated = limit is not None and len(rows) > limit
        return QueryResult(names, types, rows[:limit] if truncated else rows, truncated)
    finally:
        conn.rollback()
        conn.close()
