"""`penstock sql "SELECT …"`: one read-only statement against the metadata store.

Read-only for real, not by convention:
- **SQLite**: the file is opened read-only (`mode=ro`), and an authorizer allows reading
  only: any write, ATTACH, PRAGMA or schema change is refused by SQLite itself ("not
  authorized"), whatever the statement's text. sqlite3 runs one statement at a time.
- **PostgreSQL**: the statement runs in a `READ ONLY` transaction that is rolled back.
- And before either, the statement must be one statement that starts with SELECT, WITH,
  VALUES, `(` or EXPLAIN (sqlglot's tokenizer, so quotes and comments are understood): any
  other is refused with exit 2 before it reaches the store.

Besides the store's tables (job_runs, step_runs, logs, object_counts, batch_decisions, the
catalog_* and project_versions tables, and those sinks add: metrics, dq_results, lineage),
two views name what people look for: `runs` (job_runs) and `steps` (step_runs). A SQLite
store holds timestamps as UTC text (`2026-01-02 03:04:05.123456`) and log fields as JSON text
(`json_extract(fields, '$.event')`); PostgreSQL as `timestamptz` and `json`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from penstock.errors import TransientError, UsageError
from penstock.observe.status_reads import sqlite_file

ALIASES = {"runs": "job_runs", "steps": "step_runs"}
ALLOWED = "SELECT, WITH, VALUES or EXPLAIN"
_READING_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)


class SqlRefused(UsageError):
    """The statement would write, or is not one statement."""


class SqlFailed(UsageError):
    """The store rejected the statement (a syntax error, an unknown table…)."""


@dataclass(frozen=True)
class SqlResult:
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    truncated: bool


def check_statement(sql: str, dialect: str) -> None:
    """Refuse anything but one statement that reads (see the module docstring)."""
    import sqlglot
    from sqlglot import TokenType
    from sqlglot.errors import TokenError

    try:
        tokens = sqlglot.Dialect.get_or_raise(dialect).tokenize(sql)
    except TokenError as exc:
        raise SqlFailed(f"cannot read the statement: {exc}") from None
    statements: list[list[Any]] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    statements = [s for s in statements if s]
    if not statements:
        raise SqlRefused('give a SQL statement, e.g. penstock sql "SELECT * FROM runs"')
    if len(statements) > 1:
        raise SqlRefused(f"give one statement at a time ({len(statements)} given)")
    first = statements[0][0]
    reads = first.token_type in (
        TokenType.SELECT,
        TokenType.WITH,
        TokenType.VALUES,
        TokenType.L_PAREN,
    ) or (first.token_type == TokenType.COMMAND and first.text.upper() == "EXPLAIN")
    if not reads:
        raise SqlRefused(
            f"refused: {first.text.upper()} is not a read-only statement; "
            f"penstock sql runs {ALLOWED}"
        )


def run_sql(url: str, sql: str, *, limit: int | None) -> SqlResult:
    """Run `sql` read-only against the metadata store at `url`; at most `limit` rows."""
    path = sqlite_file(url)
    if path is None and url.startswith("sqlite"):
        raise UsageError("penstock sql reads a SQLite store from its file (sqlite:///PATH)")
    check_statement(sql, "sqlite" if path is not None else "postgres")
    if path is not None:
        if not path.exists():
            raise UsageError("the metadata store does not exist yet: `penstock run` creates it")
        return _sqlite(path.resolve().as_uri(), sql, limit)
    return _postgres(url, sql, limit)


def _sqlite(uri: str, sql: str, limit: int | None) -> SqlResult:
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise TransientError(f"metadata store: cannot open it: {exc}") from None
    try:
        for view, table in ALIASES.items():  # in the connection's own temp schema
            conn.execute(f"CREATE TEMP VIEW {view} AS SELECT * FROM main.{table}")

        def authorize(action: int, *_: object) -> int:
            return sqlite3.SQLITE_OK if action in _READING_ACTIONS else sqlite3.SQLITE_DENY

        conn.set_authorizer(authorize)
        try:
            cursor = conn.execute(sql)
            if cursor.description is None:
                return SqlResult((), (), [], truncated=False)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall() if limit is None else cursor.fetchmany(limit + 1)
        except sqlite3.DatabaseError as exc:
            raise _failed(str(exc), _sqlite_tables(conn)) from None
    finally:
        conn.close()
    return _result(names, rows, limit)


def _sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    conn.set_authorizer(None)
    found = conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'").fetchall()
    return sorted([str(name) for (name,) in found] + list(ALIASES))


def _postgres(url: str, sql: str, limit: int | None) -> SqlResult:
    import sqlalchemy as sa
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from penstock.observe.store import engine_url

    engine = sa.create_engine(engine_url(url), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            for view, table in ALIASES.items():  # session-scoped, made before read-only
                conn.execute(sa.text(f"CREATE TEMP VIEW {view} AS SELECT * FROM {table}"))
            conn.commit()
            conn.execute(sa.text("SET TRANSACTION READ ONLY"))
            try:
                result = conn.exec_driver_sql(sql)
                if not result.returns_rows:
                    return SqlResult((), (), [], truncated=False)
                names = list(result.keys())
                fetched = result.fetchall() if limit is None else result.fetchmany(limit + 1)
                rows = [tuple(r) for r in fetched]
            except DBAPIError as exc:
                conn.rollback()
                tables = sa.inspect(conn).get_table_names() + list(ALIASES)
                raise _failed(str(exc.orig).strip(), sorted(tables)) from None
            finally:
                if conn.in_transaction():
                    conn.rollback()  # whatever the statement did, nothing is kept
    except SQLAlchemyError as exc:
        raise TransientError(f"metadata store: cannot read: {exc}") from None
    finally:
        engine.dispose()
    return _result(names, rows, limit)


def _failed(message: str, tables: Sequence[str]) -> UsageError:
    line = message.splitlines()[0] if message else "the statement failed"
    if "not authorized" in line:
        return SqlRefused(f"refused: {line}: the metadata store is opened read-only")
    if "no such table" in line or "does not exist" in line:
        line += f" (tables: {', '.join(tables)})"
    return SqlFailed(line)


def _result(names: list[str], rows: list[Any], limit: int | None) -> SqlResult:
    truncated = limit is not None and len(rows) > limit
    kept = [tuple(r) for r in (rows[:limit] if truncated else rows)]
    return SqlResult(
        columns=_unique(names),
        types=tuple(_type(kept, i) for i in range(len(names))),
        rows=kept,
        truncated=truncated,
    )


def _unique(names: list[str]) -> tuple[str, ...]:
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


def _type(rows: list[tuple[Any, ...]], index: int) -> str:
    """A column's type, from its first value that is not NULL (SQLite has no column types
    in a result)."""
    for row in rows:
        value = row[index]
        if value is None:
            continue
        if isinstance(value, bool):
            return "BOOLEAN"
        if isinstance(value, int):
            return "BIGINT"
        if isinstance(value, float | Decimal):
            return "DOUBLE"
        if isinstance(value, datetime):
            return "TIMESTAMPTZ"
        if isinstance(value, date):
            return "DATE"
        if isinstance(value, dict | list):
            return "JSON"
        if isinstance(value, bytes):
            return "BLOB"
        return "TEXT"
    return "NULL"
