"""`penstock check` reaches the warehouse and the metadata store without writing to either.

A store that does not exist yet is fine (the first run creates it) as long as its directory
can be created; the warehouse's settings (`?memory_limit=…`) are tried on a database in
memory. An existing DuckDB warehouse is opened read-only; while a run holds it, that is a
warning, not an error. An existing SQLite store is opened read-only and immutable (so not even
its `-wal`/`-shm` files appear); a PostgreSQL store answers `SELECT 1`.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from penstock.catalog import Project
from penstock.errors import WarehouseError, WarehouseLocked, first_line
from penstock.secrets import redact

Level = Literal["ok", "warning", "error"]
_CONNECT_TIMEOUT_S = 10  # a server that does not answer is reported, not waited for


@dataclass(frozen=True)
class Reached:
    level: Level
    detail: str


def reach_warehouse(project: Project) -> Reached:
    from penstock.errors import PenstockError
    from penstock.warehouse import ENGINES, DuckDBWarehouse, connect_warehouse, is_server

    url = redact(project.warehouse)
    scheme = project.warehouse.split(":", 1)[0]
    if scheme not in ENGINES:
        return Reached(
            "error",
            f"warehouse engine '{scheme}' is not available yet (available: {', '.join(ENGINES)})",
        )
    if is_server(project):  # the server answers, and the URL names what can be read
        from penstock.warehouse.postgres_url import hide_password

        try:
            connect_warehouse(project, read_only=True).close()
        except PenstockError as exc:
            return Reached("error", exc.message)
        return Reached("ok", hide_password(url))
    try:  # the settings on the URL, tried on an empty database in memory
        DuckDBWarehouse(None, project.warehouse_options).close()
    except WarehouseError as exc:
        return Reached("error", exc.message)
    path = project.warehouse_path
    if path is None:
        return Reached("ok", f"{url} (in memory: it holds nothing between commands)")
    if not path.exists():
        return _creatable(path, url)
    try:
        DuckDBWarehouse(path, project.warehouse_options, read_only=True).close()
    except WarehouseLocked as exc:
        return Reached("warning", f"{url}: in use by another process (a run?): {exc.message}")
    except WarehouseError as exc:
        return Reached("error", exc.message)
    return Reached("ok", url)


def reach_metadata_store(project: Project) -> Reached:
    import sqlalchemy as sa

    from penstock.observe.store import engine_url

    url = project.metadata_url
    shown = redact(project.metadata)
    parsed = engine_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return Reached("ok", shown)
        path = Path(database)
        if not path.exists():
            return _creatable(path, shown)
        try:
            uri = f"{path.as_uri()}?mode=ro&immutable=1"
            with closing(sqlite3.connect(uri, uri=True)) as conn:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            return Reached("error", redact(f"{shown}: cannot read: {exc}"))
        return Reached("ok", shown)
    engine = sa.create_engine(parsed, connect_args={"connect_timeout": _CONNECT_TIMEOUT_S})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        return Reached("error", redact(f"{shown}: cannot connect: {first_line(exc)}"))
    finally:
        engine.dispose()
    return Reached("ok", shown)


def _creatable(path: Path, shown: str) -> Reached:
    """A store file that does not exist yet: fine if the first run can create it."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return Reached("error", f"{shown}: cannot be created: {parent} is not writable")
    return Reached("ok", f"{shown} (not created yet: the first run creates it)")
