"""Warehouse adapters (one per engine) behind one registry keyed by URL scheme.

Validation always runs in an embedded DuckDB (every adapter's `conn`); the adapter loads what
it validated. DuckDB validates in the warehouse's own connection and loads with zero copies;
PostgreSQL loads by COPY (`penstock.warehouse.postgres`, needs the `postgres` extra).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from penstock.catalog import Project
from penstock.catalog.locations import is_server_warehouse
from penstock.catalog.outline import ProjectOutline
from penstock.errors import MissingExtra, ProjectError
from penstock.warehouse.base import LoadResult, Warehouse
from penstock.warehouse.duckdb import DuckDBWarehouse, open_waiting


class Opener(Protocol):
    def __call__(
        self,
        project: Project | ProjectOutline,
        *,
        wait: float,
        on_wait: Callable[[str], None] | None,
        read_only: bool,
    ) -> Warehouse: ...


def _open_duckdb(
    project: Project | ProjectOutline,
    *,
    wait: float,
    on_wait: Callable[[str], None] | None,
    read_only: bool,
) -> Warehouse:
    return open_waiting(
        project.warehouse_path,
        project.warehouse_options,
        wait=wait,
        on_wait=on_wait,
        read_only=read_only,
    )


def _open_postgres(
    project: Project | ProjectOutline,
    *,
    wait: float,
    on_wait: Callable[[str], None] | None,
    read_only: bool,
) -> Warehouse:
    try:
        from penstock.warehouse.postgres import PostgresWarehouse
    except ImportError as exc:
        raise MissingExtra(
            f"a postgresql:// warehouse needs psycopg ({exc.name} is missing): "
            "pip install 'penstock[postgres]'"
        ) from None
    from penstock.warehouse.postgres_tables import Schemas, check_identifiers
    from penstock.warehouse.postgres_url import parse_postgres_url

    if not read_only and isinstance(project, Project):
        _refuse_set_rules(project)
        schemas = Schemas.of(parse_postgres_url(project.warehouse).schema)
        for obj in project.objects_in_order():
            check_identifiers(obj, schemas)
    return PostgresWarehouse(project.warehouse, read_only=read_only)


def _refuse_set_rules(project: Project) -> None:
    """`references` and `unique` judge a batch against the warehouse tables from inside
    DuckDB's validation pass: not available with a PostgreSQL warehouse yet."""
    for obj in project.objects_in_order():
        for name, spec in obj.columns.items():
            rule = "references" if spec.references else "unique" if spec.unique else None
            if rule is not None:
                raise ProjectError(
                    f"objects.{obj.name}.columns.{name}.{rule}: not available with a "
                    f"PostgreSQL warehouse yet (it is checked against the warehouse's tables "
                    f"inside DuckDB); use a duckdb:/// warehouse or drop the rule",
                    file="penstock.yml",
                    key_path=f"objects.{obj.name}.columns.{name}.{rule}",
                )


# scheme → how to open it; every opener returns the protocol, so mypy proves each adapter
# fulfils it
ENGINES: dict[str, Opener] = {
    "duckdb": _open_duckdb,
    "postgresql": _open_postgres,
    "postgres": _open_postgres,
}


def warehouse_scheme(project: Project | ProjectOutline) -> str:
    return project.warehouse.split(":", 1)[0]


def connect_warehouse(
    project: Project | ProjectOutline,
    *,
    wait: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
    read_only: bool = False,
) -> Warehouse:
    """Open the project's warehouse by the scheme of its URL; while another process holds it
    (DuckDB's file lock), wait up to `wait` seconds (see `open_waiting`)."""
    scheme = warehouse_scheme(project)
    opener = ENGINES.get(scheme)
    if opener is None:
        raise ProjectError(
            f"warehouse engine '{scheme}' is not available (available: {', '.join(ENGINES)})",
            file="penstock.yml",
            key_path="warehouse",
        )
    return opener(project, wait=wait, on_wait=on_wait, read_only=read_only)


def is_server(project: Project | ProjectOutline) -> bool:
    """Is the warehouse a server (no file of its own to find or lock)?"""
    return is_server_warehouse(project.warehouse)


__all__ = [
    "ENGINES",
    "DuckDBWarehouse",
    "LoadResult",
    "Warehouse",
    "connect_warehouse",
    "is_server",
    "warehouse_scheme",
]
