"""Warehouse adapters (one per engine) behind one registry keyed by URL scheme."""

from __future__ import annotations

from collections.abc import Callable

from penstock.catalog import Project
from penstock.errors import ProjectError
from penstock.warehouse.base import LoadResult, Warehouse
from penstock.warehouse.duckdb import DuckDBWarehouse, open_waiting

# typed as the protocol, so mypy proves every adapter fulfils it
ENGINES: dict[str, type[Warehouse]] = {"duckdb": DuckDBWarehouse}


def connect_warehouse(
    project: Project, *, wait: float = 0.0, on_wait: Callable[[str], None] | None = None
) -> DuckDBWarehouse:
    """Open the project's warehouse by the scheme of its URL; while another process holds it,
    wait up to `wait` seconds (see `open_waiting`)."""
    scheme = project.warehouse.split(":", 1)[0]
    if scheme != "duckdb":
        raise ProjectError(
            f"warehouse engine '{scheme}' is not available yet (available: duckdb)",
            file="penstock.yml",
            key_path="warehouse",
        )
    return open_waiting(
        project.warehouse_path, project.warehouse_options, wait=wait, on_wait=on_wait
    )


__all__ = ["ENGINES", "DuckDBWarehouse", "LoadResult", "Warehouse", "connect_warehouse"]
