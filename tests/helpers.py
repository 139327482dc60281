"""Helpers shared by tests: throwaway projects and warehouse queries."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import duckdb

from penstock.catalog import load_project
from penstock.observe import MetadataStore


def orders_project(name: str) -> str:
    """A small project: CSV files `landing/orders/*.csv` of `id,qty`, merged by id."""
    return f"""
name: {name}
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    load: merge
    columns:
      id:  {{type: bigint, required: true}}
      qty: {{type: integer, min: 0}}
"""


def write_project(root: Path, yml: str, files: dict[str, str | bytes] | None = None) -> Path:
    """A project directory with `penstock.yml` and landing files (text or bytes)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "penstock.yml").write_text(textwrap.dedent(yml))
    for rel, content in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def query(project: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the project's DuckDB warehouse (read-only, closed afterwards)."""
    conn = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    try:
        return list(conn.execute(sql).fetchall())
    finally:
        conn.close()


def snapshot(project: Path, tables: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of each table, sorted: two snapshots are equal iff the contents are."""
    return {t: sorted(query(project, f"SELECT * FROM {t}"), key=repr) for t in tables}


def log_messages(project: Path, run_id: str) -> list[str]:
    """Every message a run logged at info level and above, in order."""
    with MetadataStore(load_project(project).metadata_url) as store:
        return [row.message for row in store.logs(run_id, "info")]


def stage_csv_copy(
    conn: Any, obj: Any, source: Path, display_name: str, staging: Path
) -> tuple[Any, list[tuple[Any, ...]]]:
    """Stage a copy of the CSV file `source` into the directory `staging` as a run does (the
    staging keeps the copy as the batch's data when it reads cleanly): (CsvStaged, the staged
    rows in file order, as validation reads them)."""
    from penstock.lake.manifest import CSV_DATA_NAME, DATA_NAME
    from penstock.sources.csv import stage_csv

    staging.mkdir(parents=True, exist_ok=True)
    copy = staging / ("landed" + "".join(source.suffixes[-2:]))
    shutil.copyfile(source, copy)
    staged = stage_csv(conn, obj, copy, display_name, staging)
    if staged.read is not None:
        read = staged.read.sql(str(staging / CSV_DATA_NAME), rejects_table="_helper_rejects")
        rows = conn.execute(f"SELECT * FROM {read}").fetchall()
        conn.execute("DROP TABLE IF EXISTS _helper_rejects")
    else:
        rows = conn.execute(f"SELECT * FROM read_parquet('{staging / DATA_NAME}')").fetchall()
    return staged, rows
