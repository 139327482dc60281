"""Warehouse adapters (one per engine) behind one registry keyed by URL scheme."""

from __future__ import annotations

from penstock.catalog import Project
from penstock.errors import ProjectError
from penstock.warehouse.base import LoadResult, Warehouse
from penstock.warehouse.duckdb import DuckDBWarehouse

# typed as the protocol, so mypy proves every adapter fulfils it
ENGINES: dict[str, type[Warehouse]] = {"duckdb": DuckDBWarehouse}


def connect_warehouse(project: Project) -> DuckDBWarehouse:
    """Open the project's warehouse by the scheme of its URL."""
    scheme = project.warehouse.split(":", 1)[0]
    if scheme != "duckdb":
        raise ProjectError(
            f"warehouse engine '{scheme}' is not available yet (available: duckdb)",
            file="penstock.yml",
            key_path="warehouse",
        )
    return DuckDBWarehouse(project.warehouse_path, project.warehouse_options)


__all__ = ["ENGINES", "DuckDBWarehouse", "LoadResult", "Warehouse", "connect_warehouse"]
