"""Where a project keeps its warehouse and metadata store: its URLs made into paths.

Plain functions over the URL text and the project directory, with no imports of the project
model, so that `Project` and the light `ProjectOutline` (catalog/outline.py) answer alike.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl

DUCKDB = "duckdb:///"
SQLITE = "sqlite:///"
DEFAULT_WAREHOUSE = "duckdb:///warehouse.duckdb"
DEFAULT_METADATA = "sqlite:///.penstock/metadata.db"
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def url_problem(value: str, default: str) -> str | None:
    """What is wrong with a warehouse or metadata URL, or None."""
    if not URL_SCHEME.match(value):
        return f"expected a URL such as {default}"
    for prefix in (DUCKDB, SQLITE):
        scheme = prefix.split(":")[0]
        if value.startswith(f"{scheme}://") and not value.startswith(prefix):
            return (
                f"expected {prefix}<path> (three slashes, then a path relative to the "
                "project or /an/absolute/path)"
            )
    return None


def project_path(root: Path, value: str | Path) -> Path:
    """`value` resolved against the project directory (an absolute path stays as is)."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def warehouse_path(root: Path, warehouse: str) -> Path | None:
    """The DuckDB file of the warehouse; None for an in-memory or non-DuckDB warehouse."""
    if not warehouse.startswith(DUCKDB):
        return None
    location = warehouse.removeprefix(DUCKDB).split("?", 1)[0]
    if not location or location.startswith(":memory:"):
        return None
    return project_path(root, location)


# warehouse URL schemes of a server (no file of its own to find or lock)
SERVER_SCHEMES = ("postgresql", "postgres")


def is_server_warehouse(warehouse: str) -> bool:
    """Is the warehouse a server (PostgreSQL), not a DuckDB file?"""
    return warehouse.split(":", 1)[0] in SERVER_SCHEMES


def warehouse_options(warehouse: str) -> dict[str, str]:
    """Engine settings from the warehouse URL's query (`?memory_limit=4GB&threads=2`)."""
    _, _, query = warehouse.partition("?")
    return dict(parse_qsl(query, keep_blank_values=True))


def metadata_url(root: Path, metadata: str) -> str:
    """The metadata database URL, with a relative SQLite path made absolute."""
    if not metadata.startswith(SQLITE):
        return metadata
    location, mark, query = metadata.removeprefix(SQLITE).partition("?")
    if not location or location.startswith(":memory:"):
        return metadata
    return f"{SQLITE}{project_path(root, location)}{mark}{query}"
