"""PostgreSQL through ADBC (adbc-driver-postgresql): `COPY ... TO STDOUT (FORMAT binary)`
decoded into Arrow record batches in C++, streamed batch by batch (bench/README.md says why
ADBC over connectorx and plain psycopg).

Read natively (their Arrow type as ADBC gives it): smallint, integer, bigint, real, double
precision, boolean, text, varchar, char, name, date, timestamp, timestamptz (UTC instants).
Everything else is read as its text (`::text`): numeric (exact digits, no float), json and
jsonb (JSON text), uuid, time, interval, money, inet, arrays... The session's time zone is
UTC, so bounds and text forms of instants are UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from penstock.catalog.tls import TlsPlan
from penstock.errors import MissingExtra
from penstock.sources.db_driver import DbColumn, number_literal, quote_text
from penstock.sources.db_tls import postgres_tls_url

_INSTALL = "pip install 'penstock[postgres]'"
NATIVE = frozenset(
    (
        "int2",
        "int4",
        "int8",
        "float4",
        "float8",
        "bool",
        "text",
        "varchar",
        "bpchar",
        "name",
        "date",
        "timestamp",
        "timestamptz",
    )
)
_TEMPORAL = frozenset(("date", "timestamp", "timestamptz"))


def _dbapi() -> Any:
    try:
        import adbc_driver_postgresql.dbapi as dbapi
    except ImportError as exc:
        raise MissingExtra(
            f"a postgres source reads through ADBC, which is not installed: {_INSTALL}"
        ) from exc
    return dbapi


def postgres_url(url: str, tls: TlsPlan) -> str:
    """libpq takes postgresql:// and postgres://; TLS as URL parameters (sources/db_tls.py)."""
    return postgres_tls_url(url, tls)


class PostgresDialect:
    kind = "postgres"

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def select_expr(self, column: DbColumn) -> str:
        quoted = self.quote(column.name)
        if column.db_type in NATIVE:
            return quoted
        return f"{quoted}::text AS {quoted}"

    def text(self, expr: str) -> str:
        return f"({expr})::text"

    def cursor_literal(self, value: str, column: DbColumn, lookback: float | None) -> str:
        if column.db_type not in _TEMPORAL:
            return number_literal(value, lookback)
        literal = f"CAST({quote_text(value)} AS {column.db_type})"
        if lookback is None:
            return literal
        return f"({literal} - make_interval(secs => {lookback:g}))"


class PostgresConnection:
    def __init__(self, url: str, tls: TlsPlan) -> None:
        self.conn = _dbapi().connect(postgres_url(url, tls))
        self._execute("SET TIME ZONE 'UTC'")

    def _execute(self, sql: str) -> None:
        cur = self.conn.cursor()
        try:
            cur.execute(sql)
        finally:
            cur.close()

    def columns(self, relation: str) -> list[DbColumn]:
        cur = self.conn.cursor()
        try:
            cur.execute(f"SELECT * FROM {relation} AS penstock_r LIMIT 0")
            schema = cur.fetch_arrow_table().schema
        finally:
            cur.close()
        found = []
        for field in schema:
            meta = field.metadata or {}
            db_type = meta.get(b"POSTGRESQL:type", b"").decode() or str(field.type)
            found.append(DbColumn(field.name, db_type))
        return found

    def scalars(self, sql: str) -> tuple[str | None, ...]:
        cur = self.conn.cursor()
        try:
            cur.execute(sql)
            row = cur.fetchone()
        finally:
            cur.close()
        if row is None:
            return ()
        return tuple(None if v is None else str(v) for v in row)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        cur = self.conn.cursor()
        try:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()

    def stream(
        self, sql: str, chunk_rows: int, columns: list[DbColumn]
    ) -> tuple[Any, Iterator[Any]]:
        cur = self.conn.cursor()
        cur.execute(sql)
        reader = cur.fetch_record_batch()

        def batches() -> Iterator[Any]:
            try:
                yield from reader
            finally:
                cur.close()

        return reader.schema, batches()

    def close(self) -> None:
        self.conn.close()
