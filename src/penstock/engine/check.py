"""`penstock check`: is the project valid, and can everything it names be reached?"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from penstock.catalog import FilesSource, ObjectSpec, Project, load_project
from penstock.errors import PenstockError, ProjectError, ProjectErrors, first_line
from penstock.lake.read import ORDINAL
from penstock.observe import MetadataStore
from penstock.quality.compile import bind_columns, compile_validation
from penstock.secrets import SAFE_SECRET_LEN, redact
from penstock.sql import ident
from penstock.warehouse import connect_warehouse


def _item(what: str, ok: bool, detail: str, *, warning: bool = False) -> dict[str, Any]:
    return {"what": what, "ok": ok, "detail": detail, "warning": warning}


def check_contract(conn: duckdb.DuckDBPyConnection, obj: ObjectSpec) -> None:
    """Compile the object's validation SQL against an empty batch: bad expressions fail here."""
    schema = dict.fromkeys(obj.columns, "VARCHAR")
    empty = (
        "SELECT "
        + ", ".join(f"NULL::VARCHAR AS {ident(n)}" for n in obj.columns)
        + f", 1::BIGINT AS {ORDINAL} WHERE false"
    )
    sql = compile_validation(obj, bind_columns(obj, schema), empty, datetime.now(UTC))
    try:
        conn.execute(f"SELECT * FROM ({sql}) LIMIT 0")
    except duckdb.Error as exc:
        message = first_line(exc)
        raise ProjectError(
            f"a check does not compile: {message}", key_path=f"objects.{obj.name}.checks"
        ) from exc


def check_project(path: Path) -> dict[str, Any]:
    checks: list[dict[str, Any]] = []
    try:
        project: Project = load_project(path)
    except ProjectErrors as exc:
        checks += [_item("project", False, e.message) for e in exc.errors]
        return {"ok": False, "checks": checks}
    except ProjectError as exc:
        return {"ok": False, "checks": [_item("project", False, exc.message)]}
    checks.append(
        _item(
            "project",
            True,
            f"{project.name}: {len(project.sources)} source(s), {len(project.objects)} object(s)",
        )
    )
    checks += [
        _item(
            "secret",
            True,
            f"{where} is shorter than {SAFE_SECRET_LEN} characters: too short to redact "
            f"safely (every occurrence of those characters in logs is hidden too); use a "
            f"longer secret",
            warning=True,
        )
        for where in project.weak_secrets
    ]
    conn = duckdb.connect()
    try:
        for obj in project.objects_in_order():
            try:
                check_contract(conn, obj)
                checks.append(_item(f"object {obj.name}", True, f"{len(obj.columns)} column(s)"))
            except ProjectError as exc:
                checks.append(_item(f"object {obj.name}", False, exc.message))
    finally:
        conn.close()
    for name, source in project.sources.items():
        if isinstance(source, FilesSource):
            directory = project.path(source.path)
            ok = directory.is_dir()
            checks.append(
                _item(
                    f"source {name}",
                    ok,
                    f"{source.path} exists" if ok else f"directory {source.path} does not exist",
                )
            )
    try:
        connect_warehouse(project).close()
        checks.append(_item("warehouse", True, redact(project.warehouse)))
    except PenstockError as exc:
        checks.append(_item("warehouse", False, exc.message))
    try:
        MetadataStore(project.metadata_url).close()
        checks.append(_item("metadata store", True, "reachable"))
    except PenstockError as exc:
        checks.append(_item("metadata store", False, exc.message))
    return {"ok": all(c["ok"] for c in checks), "checks": checks}
