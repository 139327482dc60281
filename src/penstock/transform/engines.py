"""What a model's build needs of a warehouse engine: run SQL in one transaction, read rows,
know the engine's sqlglot dialect and where tables live. One small class per engine, chosen
by the warehouse adapter's `engine`; the SQL itself is written once (transform/materialize.py)
and transpiled by sqlglot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import duckdb

from penstock.sql import ident, literal
from penstock.warehouse import Warehouse
from penstock.warehouse.base import LEDGER_SCHEMA, LEDGER_TABLE

PROGRESS_TABLE = "model_batches"


class EngineError(Exception):
    """The engine refused a statement (its own error, as text)."""


class ModelEngine(Protocol):
    dialect: str  # sqlglot's name for the engine's SQL
    cascade: str  # what DROP needs to drop what depends on a relation ("" or " CASCADE")

    def table(self, name: str) -> str:
        """A relation of the project's default schema, quoted."""
        ...

    @property
    def schema(self) -> str | None:
        """The default schema's name, to qualify reads with (None: leave them bare)."""
        ...

    @property
    def ledger(self) -> str: ...

    @property
    def progress(self) -> str: ...

    def execute(self, sql: str) -> None: ...

    def rows(self, sql: str) -> list[tuple[Any, ...]]: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def relation_kind(self, name: str) -> str | None:
        """'table', 'view' or None (no such relation in the default schema)."""
        ...

    def columns(self, name: str) -> list[tuple[str, str]]: ...


class DuckDBModels:
    dialect = "duckdb"
    cascade = ""
    schema: str | None = None

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self.conn = conn
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self.progress} (model VARCHAR, object VARCHAR, "
            "batch_id VARCHAR, run_id VARCHAR, processed_at TIMESTAMP)"
        )

    def table(self, name: str) -> str:
        return ident(name)

    @property
    def ledger(self) -> str:
        return f"{ident(LEDGER_SCHEMA)}.{ident(LEDGER_TABLE)}"

    @property
    def progress(self) -> str:
        return f"{ident(LEDGER_SCHEMA)}.{ident(PROGRESS_TABLE)}"

    def execute(self, sql: str) -> None:
        try:
            self.conn.execute(sql)
        except duckdb.Error as exc:
            raise EngineError(str(exc)) from exc

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self.conn.execute(sql).fetchall()
        except duckdb.Error as exc:
            raise EngineError(str(exc)) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.begin()
        try:
            yield
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    def relation_kind(self, name: str) -> str | None:
        found = self.rows(
            "SELECT table_type FROM information_schema.tables WHERE table_schema = 'main' "
            f"AND table_catalog = current_database() AND table_name = {literal(name)}"
        )
        return _kind(found)

    def columns(self, name: str) -> list[tuple[str, str]]:
        return [
            (str(c), str(t))
            for c, t in self.rows(
                "SELECT column_name, data_type FROM information_schema.columns WHERE "
                f"table_schema = 'main' AND table_catalog = current_database() AND "
                f"table_name = {literal(name)} ORDER BY ordinal_position"
            )
        ]


class PostgresModels:
    dialect = "postgres"
    cascade = " CASCADE"

    def __init__(self, warehouse: Any) -> None:
        self.pg = warehouse.pg
        self.schemas = warehouse.schemas
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self.progress} (model TEXT, object TEXT, "
            "batch_id TEXT, run_id TEXT, processed_at TIMESTAMPTZ)"
        )

    @property
    def schema(self) -> str | None:
        return str(self.schemas.data)

    def table(self, name: str) -> str:
        return f"{ident(self.schemas.data)}.{ident(name)}"

    @property
    def ledger(self) -> str:
        return str(self.schemas.loads)

    @property
    def progress(self) -> str:
        return f"{ident(self.schemas.ledger)}.{ident(PROGRESS_TABLE)}"

    def execute(self, sql: str) -> None:
        import psycopg

        try:
            self.pg.execute(sql)
        except psycopg.Error as exc:
            raise EngineError(str(exc)) from exc

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg

        try:
            return list(self.pg.execute(sql).fetchall())
        except psycopg.Error as exc:
            raise EngineError(str(exc)) from exc

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.pg.transaction():
            yield

    def relation_kind(self, name: str) -> str | None:
        return _kind(
            self.rows(
                "SELECT table_type FROM information_schema.tables WHERE "
                f"table_schema = {literal(self.schemas.data)} AND table_name = {literal(name)}"
            )
        )

    def columns(self, name: str) -> list[tuple[str, str]]:
        return [
            (str(c), str(t))
            for c, t in self.rows(
                "SELECT column_name, data_type FROM information_schema.columns WHERE "
                f"table_schema = {literal(self.schemas.data)} AND table_name = {literal(name)} "
                "ORDER BY ordinal_position"
            )
        ]


def _kind(found: list[tuple[Any, ...]]) -> str | None:
    if not found:
        return None
    return "view" if str(found[0][0]).upper() == "VIEW" else "table"


def model_engine(warehouse: Warehouse) -> ModelEngine:
    if warehouse.engine == "postgresql":
        return PostgresModels(warehouse)
    return DuckDBModels(warehouse.conn)
