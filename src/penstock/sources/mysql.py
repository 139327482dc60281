"""MariaDB and MySQL: catalog questions through PyMySQL, rows through connectorx, which
decodes the server's result into Arrow record batches in Rust (`return_type="arrow_stream"`).

Read natively: tinyint, smallint, mediumint, int, bigint (signed or unsigned: an unsigned
value beyond bigint fails the contract's `type:`, never wraps), float, double, date, datetime,
timestamp (an instant: the session is UTC and it is staged as a UTC timestamp), char, varchar,
text, and binary strings (blob, binary, varbinary: as DuckDB writes bytes in text, `\x00\xff`,
a backslash as `\x5c`, so every byte comes back). Read as text (`CAST(... AS CHAR)`): decimal
(exact digits), tinyint(1) (MySQL's boolean: `1`/`0`, which a boolean or integer column takes),
json, time, year, enum, set; bit as its number (`bit + 0`: `165` for b'10100101'; its bytes
cast to text were not UTF-8 and came back as `?`).
"""

from __future__ import annotations

from collections.abc import Iterator
from ssl import SSLSocket
from typing import Any
from urllib.parse import unquote, urlsplit

from penstock.catalog.tls import TlsPlan
from penstock.errors import MissingExtra
from penstock.sources.db_driver import DbColumn, number_literal, quote_text
from penstock.sources.db_tls import mysql_tls

_INSTALL = "pip install 'penstock[mysql]'"
# PyMySQL's field type codes (pymysql.constants.FIELD_TYPE)
_CODES = {
    0: "decimal",
    1: "tinyint",
    2: "smallint",
    3: "int",
    4: "float",
    5: "double",
    7: "timestamp",
    8: "bigint",
    9: "mediumint",
    10: "date",
    11: "time",
    12: "datetime",
    13: "year",
    15: "varchar",
    16: "bit",
    245: "json",
    246: "decimal",
    247: "enum",
    248: "set",
    249: "blob",
    250: "blob",
    251: "blob",
    252: "text",
    253: "varchar",
    254: "char",
}
NATIVE = frozenset(
    (
        "tinyint",
        "smallint",
        "mediumint",
        "int",
        "bigint",
        "float",
        "double",
        "date",
        "datetime",
        "timestamp",
        "char",
        "varchar",
        "text",
        "blob",
    )
)
_TEMPORAL = frozenset(("date", "datetime", "timestamp"))


def _pymysql() -> Any:
    try:
        import pymysql
    except ImportError as exc:
        raise MissingExtra(f"a mysql source needs PyMySQL and connectorx: {_INSTALL}") from exc
    return pymysql


def _connectorx() -> Any:
    try:
        import connectorx
    except ImportError as exc:
        raise MissingExtra(f"a mysql source reads through connectorx: {_INSTALL}") from exc
    return connectorx


class MysqlDialect:
    kind = "mysql"

    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def select_expr(self, column: DbColumn) -> str:
        quoted = self.quote(column.name)
        if column.db_type in NATIVE:
            return quoted
        if column.db_type == "bit":
            return f"CAST({quoted} + 0 AS CHAR) AS {quoted}"
        return f"CAST({quoted} AS CHAR) AS {quoted}"

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS CHAR)"

    def cursor_literal(self, value: str, column: DbColumn, lookback: float | None) -> str:
        if column.db_type not in _TEMPORAL:
            return number_literal(value, lookback)
        literal = f"CAST({quote_text(value, backslash=True)} AS DATETIME(6))"
        if lookback is None:
            return literal
        return f"({literal} - INTERVAL {lookback:g} SECOND)"


def _column_type(description: tuple[Any, ...]) -> str:
    code, internal_size = description[1], description[3]
    name = _CODES.get(code, "other")
    if name == "tinyint" and internal_size == 1:
        return "tinyint(1)"
    return name


class MysqlConnection:
    def __init__(self, url: str, tls: TlsPlan) -> None:
        parts = urlsplit(url)
        self.tls = mysql_tls(url.replace("mariadb://", "mysql://", 1), tls)
        pymysql = _pymysql()
        self.conn = pymysql.connect(
            host=parts.hostname or "localhost",
            port=parts.port or 3306,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.lstrip("/")) or None,
            charset="utf8mb4",
            connect_timeout=10,
            init_command="SET time_zone = '+00:00'",
            **self.tls.pymysql,
        )
        # This catalog connection, opened first with the same TLS, has failed fast if TLS
        # cannot be had, before connectorx (whose pool retries for ~30 s) tries. Under
        # `prefer`, connectorx uses TLS when this connection does.
        secure = isinstance(getattr(self.conn, "_sock", None), SSLSocket)
        self.url = self.tls.connectorx_url(secure)

    def columns(self, relation: str) -> list[DbColumn]:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT * FROM {relation} AS penstock_r LIMIT 0")
            return [DbColumn(d[0], _column_type(d)) for d in cur.description]

    def scalars(self, sql: str) -> tuple[str | None, ...]:
        with self.conn.cursor() as cur:
            cur.execute(sql)
            row = cur.fetchone()
        if row is None:
            return ()
        return tuple(None if v is None else str(v) for v in row)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()]

    def stream(
        self, sql: str, chunk_rows: int, columns: list[DbColumn]
    ) -> tuple[Any, Iterator[Any]]:
        import pyarrow as pa

        reader = _connectorx().read_sql(
            self.url,
            sql,
            return_type="arrow_stream",
            batch_size=chunk_rows,
            pre_execution_query="SET time_zone = '+00:00'",
        )
        zoned = {c.name for c in columns if c.db_type == "timestamp"}
        fields = [
            pa.field(f.name, pa.timestamp("us", tz="UTC"), f.nullable)
            if f.name in zoned and pa.types.is_timestamp(f.type)
            else f
            for f in reader.schema
        ]
        schema = pa.schema(fields)

        def batches() -> Iterator[Any]:
            for batch in reader:
                if zoned:  # a TIMESTAMP read in a UTC session is a UTC instant
                    batch = batch.cast(schema)
                yield batch

        return schema, batches()

    def close(self) -> None:
        self.conn.close()
