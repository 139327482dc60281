"""`penstock check`: is the project valid, can everything it names be reached, and what do its
files hold?

Each finding is an item with a level: `ok`, `warning` or `error`; the project is ok when no
item is an error. Per object: its contract compiles, its glob matches files, and the sample
of its first file passes through staging and validation (engine/check_data.py). Nothing is
written to the project's lake, warehouse or metadata store (engine/check_stores.py): the
sample is staged into a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from penstock.catalog import ObjectSpec, Project, load_project
from penstock.defaults import CHECK_SAMPLE_ROWS
from penstock.engine.check_blame import blame_check
from penstock.engine.check_data import DataCheck, Level, check_object_data
from penstock.engine.check_sources import reach_source
from penstock.engine.check_stores import reach_metadata_store, reach_warehouse
from penstock.engine.plan import build_plan
from penstock.errors import PenstockError, ProjectError, ProjectErrors, first_line
from penstock.quality.compile import bind_columns, compile_validation
from penstock.secrets import SAFE_SECRET_LEN
from penstock.sql import ident


def _item(what: str, level: Level, detail: str, details: list[str] | None = None) -> dict[str, Any]:
    return {
        "what": what,
        "level": level,
        "ok": level != "error",
        "warning": level == "warning",
        "detail": detail,
        "details": details or [],
    }


def _compile(conn: duckdb.DuckDBPyConnection, obj: ObjectSpec) -> None:
    schema = dict.fromkeys(obj.columns, "VARCHAR")
    empty = (
        "SELECT " + ", ".join(f"NULL::VARCHAR AS {ident(n)}" for n in obj.columns) + " WHERE false"
    )
    sql = compile_validation(obj, bind_columns(obj, schema), empty, datetime.now(UTC))
    conn.execute(f"SELECT * FROM ({sql}) LIMIT 0")


def check_contract(conn: duckdb.DuckDBPyConnection, project: Project, obj: ObjectSpec) -> None:
    """Compile the object's validation SQL against an empty batch: a check that does not
    compile is named, with the file and line it was written at."""

    def fails(contract: ObjectSpec) -> str | None:
        try:
            _compile(conn, contract)
        except duckdb.Error as exc:
            return first_line(exc)
        return None

    problem = fails(obj)
    if problem is None:
        return
    blamed = blame_check(project, obj, fails, "does not compile")
    if blamed is not None:
        raise blamed
    file, line = project.origin(f"objects.{obj.name}") or (None, None)
    raise ProjectError(
        f"the contract does not compile: {problem}",
        file=file,
        line=line,
        key_path=f"objects.{obj.name}",
    )


def check_project(path: Path, *, sample_rows: int = CHECK_SAMPLE_ROWS) -> dict[str, Any]:
    checks: list[dict[str, Any]] = []
    try:
        project: Project = load_project(path)
    except ProjectErrors as exc:
        checks += [_item("project", "error", e.message) for e in exc.errors]
        return {"ok": False, "checks": checks, "objects": []}
    except ProjectError as exc:
        return {"ok": False, "checks": [_item("project", "error", exc.message)], "objects": []}
    checks.append(
        _item(
            "project",
            "ok",
            f"{project.name}: {len(project.sources)} source(s), {len(project.objects)} object(s)",
        )
    )
    try:
        order = build_plan(project).order()
        shown = ", ".join(order[:10]) + (f", … ({len(order)} objects)" if len(order) > 10 else "")
        checks.append(_item("dependencies", "ok", f"no cycle; run order: {shown or 'none'}"))
    except ProjectError as exc:
        checks.append(_item("dependencies", "error", exc.message))
    checks += [
        _item(
            "secret",
            "warning",
            f"{where} is shorter than {SAFE_SECRET_LEN} characters: too short to redact "
            f"safely (every occurrence of those characters in logs is hidden too); use a "
            f"longer secret",
        )
        for where in project.weak_secrets
    ]
    for name in project.sources:
        reached, took = reach_source(project, name)
        checks.append(_item(f"source {name}", reached.level, reached.detail))
        if took is not None:
            checks[-1]["latency_s"] = took
    for what, reach in (("warehouse", reach_warehouse), ("metadata store", reach_metadata_store)):
        try:
            reached = reach(project)
            checks.append(_item(what, reached.level, reached.detail))
        except PenstockError as exc:
            checks.append(_item(what, "error", exc.message))
    objects: list[DataCheck] = []
    conn = duckdb.connect()
    try:
        # as in the warehouse: results do not depend on the machine's time zone
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET enable_progress_bar = false")
        with tempfile.TemporaryDirectory(prefix="penstock-check-") as workdir:
            for obj in project.objects_in_order():
                checks += _check_object(conn, project, obj, Path(workdir), sample_rows, objects)
    finally:
        conn.close()
    return {"ok": all(c["ok"] for c in checks), "checks": checks, "objects": objects}


def _check_object(
    conn: duckdb.DuckDBPyConnection,
    project: Project,
    obj: ObjectSpec,
    workdir: Path,
    sample_rows: int,
    objects: list[DataCheck],
) -> list[dict[str, Any]]:
    what = f"object {obj.name}"
    try:
        check_contract(conn, project, obj)
    except ProjectError as exc:
        return [_item(what, "error", exc.message)]
    data = check_object_data(conn, project, obj, workdir, rows=sample_rows)
    columns = f"{len(obj.columns)} column(s)"
    if data is None:
        return [_item(what, "ok", columns)]
    objects.append(data)
    items = []
    if data.files_matched:
        items.append(
            _item(what, "ok", f'{columns}, {data.files_matched:,} file(s) match "{data.pattern}"')
        )
    items += [_item(what, f.level, f.message, f.details) for f in data.findings]
    return items
