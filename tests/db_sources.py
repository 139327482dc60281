"""Helpers for the database source tests: one handle per real server (PostgreSQL through
psycopg, MariaDB through PyMySQL) to seed and change source tables, and projects reading them."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

import penstock

from helpers import query


@dataclass
class SourceDb:
    kind: str  # postgres | mysql
    url: str
    timestamp: str  # a naive timestamp column type with microseconds

    def execute(self, *statements: str) -> None:
        if self.kind == "postgres":
            with psycopg.connect(self.url, autocommit=True) as conn:
                for sql in statements:
                    conn.execute(sql.encode())
            return
        conn = self._mysql()
        try:
            with conn.cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
        finally:
            conn.close()

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.kind == "postgres":
            with psycopg.connect(self.url, autocommit=True) as conn:
                return [tuple(r) for r in conn.execute(sql.encode()).fetchall()]
        conn = self._mysql()
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return [tuple(r) for r in cur.fetchall()]
        finally:
            conn.close()

    def _mysql(self) -> Any:
        import pymysql

        parts = urlsplit(self.url)
        return pymysql.connect(
            host=parts.hostname,
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            database=parts.path.lstrip("/"),
            autocommit=True,
            charset="utf8mb4",
        )


def source_db(kind: str, url: str) -> SourceDb:
    return SourceDb(kind, url, "timestamp(6)" if kind == "postgres" else "datetime(6)")


def db_project(root: Path, db: SourceDb, objects: str, *, url: str | None = None) -> Path:
    """A project whose source `shop_db` is `db` (or `url`), with `objects` (YAML, indented
    under `objects:` by the caller's dedent)."""
    root.mkdir(parents=True, exist_ok=True)
    body = textwrap.indent(textwrap.dedent(objects).strip("\n"), "  ")
    (root / "penstock.yml").write_text(
        f"name: dbsrc\n"
        f"sources:\n"
        f'  shop_db: {{kind: {db.kind}, url: "{url or db.url}"}}\n'
        f"objects:\n{body}\n"
    )
    return root


BASE = datetime(2024, 1, 1)
ORDERS = """
orders:
  source: shop_db
  table: orders
  key: [id]
  cursor: updated_at
  columns:
    id: {type: bigint}
    amount: {type: "decimal(12,2)", required: true}
    status: {type: text}
    updated_at: {type: timestamp, required: true}
"""


def create_orders(db: SourceDb, rows: int) -> None:
    db.execute(
        f"CREATE TABLE orders (id bigint PRIMARY KEY, amount decimal(12,2) NOT NULL, "
        f"status varchar(20), updated_at {db.timestamp} NOT NULL)",
        *insert_orders(range(1, rows + 1)),
    )


def insert_orders(ids: range, at: datetime | None = None) -> list[str]:
    values = ", ".join(
        f"({i}, {i}.25, 'placed', '{(at or BASE + timedelta(minutes=i)).isoformat(' ')}')"
        for i in ids
    )
    return [f"INSERT INTO orders VALUES {values}"]


def source_rows(db: SourceDb) -> list[tuple[Any, ...]]:
    return sorted(db.rows("SELECT id, amount, status, updated_at FROM orders"))


def table_rows(project: Path, table: str = "orders") -> list[tuple[Any, ...]]:
    return sorted(query(project, f"SELECT id, amount, status, updated_at FROM {table}"))


def ledger(project: Path) -> list[tuple[Any, ...]]:
    return query(
        project,
        "SELECT batch_id, rows_in, rows_inserted, rows_updated, rows_unchanged "
        "FROM penstock.loads ORDER BY loaded_at, batch_id",
    )


def run_ok(project: Path) -> None:
    result = penstock.run(project)
    assert result.status == "success", [o.error for o in result.outcomes if o.error]


MYSQL_HOST = "127.0.0.1"
MYSQL_PORT = 3306


def mysql_admin() -> Any:
    """A root connection to MariaDB/MySQL; skips (fails under PENSTOCK_REQUIRE_SERVICES=1)
    with the reason when the server is not reachable."""
    import pymysql

    try:
        return pymysql.connect(
            host=MYSQL_HOST,
            port=MYSQL_PORT,
            user="root",
            password="",
            connect_timeout=5,
            autocommit=True,
            charset="utf8mb4",
        )
    except pymysql.Error as exc:
        reason = f"MariaDB/MySQL not reachable at {MYSQL_HOST}:{MYSQL_PORT}: {exc}"
        if os.environ.get("PENSTOCK_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
