"""Load modes (append, replace, merge, scd2) and on_invalid (quarantine, fail, warn)."""

from __future__ import annotations

from pathlib import Path

import duckdb

import penstock
from penstock.catalog import load_project
from penstock.warehouse.duckdb_modes import row_hash_sql

from helpers import query, write_project

BASE = """
name: modes
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  items:
    source: landing
    files: "items/*.csv"
    {extra}
    columns:
      k1:  {{type: text, required: true}}
      k2:  {{type: text, required: true}}
      qty: {{type: integer, min: 0}}
      ts:  {{type: timestamp}}
"""
HEADER = "k1,k2,qty,ts\n"


def project_with(tmp_path: Path, extra: str, files: dict[str, str]) -> Path:
    return write_project(tmp_path, BASE.format(extra=extra), files)


def drop(project: Path, name: str, body: str) -> None:
    path = project / "landing" / "items" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + body)


def test_append_adds_every_batch(tmp_path: Path) -> None:
    project = project_with(tmp_path, "load: append", {})
    drop(project, "1.csv", "a,b,1,2024-01-01\na,b,2,2024-01-02\n")
    drop(project, "2.csv", "a,b,3,2024-01-03\n")
    penstock.run(project)
    assert query(project, "SELECT qty FROM items ORDER BY qty") == [(1,), (2,), (3,)]


def test_replace_keeps_only_the_latest_batch(tmp_path: Path) -> None:
    project = project_with(tmp_path, "load: replace", {})
    drop(project, "1.csv", "a,b,1,2024-01-01\na,c,2,2024-01-02\n")
    penstock.run(project)
    drop(project, "2.csv", "x,y,9,2024-01-03\n")
    penstock.run(project)
    assert query(project, "SELECT k1, k2, qty FROM items") == [("x", "y", 9)]


def test_merge_compares_composite_keys_as_tuples(tmp_path: Path) -> None:
    extra = "key: [k1, k2]\n    order_by: ts\n    load: merge"
    project = project_with(tmp_path, extra, {})
    # ("a", "bc") and ("ab", "c") concatenate to the same string but are different keys
    drop(project, "1.csv", "a,bc,1,2024-01-01\nab,c,2,2024-01-01\n")
    penstock.run(project)
    drop(project, "2.csv", "a,bc,10,2024-02-01\nab,c,20,2023-12-01\n")
    penstock.run(project)
    assert query(project, "SELECT k1, k2, qty FROM items ORDER BY k1") == [
        ("a", "bc", 10),  # newer: updated
        ("ab", "c", 2),  # older: late data loses
    ]
    counts = query(
        project,
        "SELECT rows_inserted, rows_updated, rows_stale FROM penstock.loads ORDER BY loaded_at",
    )
    assert counts == [(2, 0, 0), (0, 1, 1)]


def test_merge_dedupes_within_a_batch_greatest_order_by_wins(tmp_path: Path) -> None:
    extra = "key: [k1, k2]\n    order_by: ts\n    load: merge"
    body = "a,b,1,2024-01-05\na,b,2,2024-01-01\na,b,3,2024-01-03\n"
    project = project_with(tmp_path, extra, {"landing/items/1.csv": HEADER + body})
    result = penstock.run(project)
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_duplicate) == (3, 1, 2)
    assert query(project, "SELECT qty FROM items") == [(1,)]


def test_scd2_versions_and_unchanged_rows(tmp_path: Path) -> None:
    extra = "key: [k1, k2]\n    order_by: ts\n    load: scd2"
    project = project_with(tmp_path, extra, {})
    drop(project, "1.csv", "a,b,1,2024-01-01\nc,d,5,2024-01-01\n")
    penstock.run(project)
    drop(project, "2.csv", "a,b,2,2024-02-01\nc,d,5,2024-01-01\n")
    penstock.run(project)
    drop(project, "3.csv", "a,b,3,2024-03-01\n")
    penstock.run(project)
    rows = query(
        project,
        "SELECT k1, qty, _valid_from::DATE::VARCHAR, _valid_to::DATE::VARCHAR, _is_current "
        "FROM items ORDER BY k1, _valid_from",
    )
    assert rows == [
        ("a", 1, "2024-01-01", "2024-02-01", False),
        ("a", 2, "2024-02-01", "2024-03-01", False),
        ("a", 3, "2024-03-01", None, True),
        ("c", 5, "2024-01-01", None, True),
    ]


def test_scd2_row_hash_separates_fields_unambiguously(tmp_path: Path) -> None:
    yml = BASE.format(extra="key: [k1]\n    load: scd2")
    project = load_project(write_project(tmp_path, yml))
    obj = project.objects["items"]
    conn = duckdb.connect()
    try:
        sql = row_hash_sql(obj, "t")
        hashes = conn.execute(
            f"SELECT {sql} FROM (VALUES ('x', 'a|b', 1, NULL), ('x', 'a', NULL, NULL), "
            f"('x', 'a|b', 1, NULL), ('x', '', NULL, NULL), ('x', NULL, NULL, NULL)) "
            f"t(k1, k2, qty, ts)"
        ).fetchall()
    finally:
        conn.close()
    values = [h for (h,) in hashes]
    assert values[0] == values[2]  # same content, same hash
    assert len(set(values)) == 4  # '' and NULL differ; 'a|b',1 differs from 'a',NULL


def test_on_invalid_fail_loads_nothing_and_blocks_later_batches(tmp_path: Path) -> None:
    extra = "key: [k1, k2]\n    order_by: ts\n    load: merge\n    on_invalid: fail"
    project = project_with(tmp_path, extra, {})
    drop(project, "1.csv", "a,b,-1,2024-01-01\na,c,1,2024-01-01\n")
    drop(project, "2.csv", "z,z,1,2024-01-01\n")
    result = penstock.run(project)
    assert result.status == "failed"
    (failure,) = result.failures
    assert "breaks its contract" in (failure.error or "") and "min:qty ×1" in (failure.error or "")
    assert query(project, "SELECT count(*) FROM penstock.loads") == [(0,)]
    # nothing lost: both batches stay staged and pending
    assert len(list((project / "lake" / "stage" / "items").glob("*/manifest.json"))) == 2
    # relaxing the contract lets the pending batches load, in order, on the next run
    yml = (project / "penstock.yml").read_text().replace("min: 0", "min: -5")
    (project / "penstock.yml").write_text(yml)
    again = penstock.run(project)
    assert again.status == "success" and len(again.loads()) == 2
    assert query(project, "SELECT count(*) FROM items") == [(3,)]


def test_on_invalid_warn_loads_every_row_and_records_the_failures(tmp_path: Path) -> None:
    extra = "key: [k1, k2]\n    order_by: ts\n    load: merge\n    on_invalid: warn"
    body = "a,b,-1,2024-01-01\na,c,oops,2024-01-01\n,d,1,2024-01-01\n"
    project = project_with(tmp_path, extra, {"landing/items/1.csv": HEADER + body})
    result = penstock.run(project)
    (load,) = result.loads()
    assert load.status == "warning"
    assert load.reason_counts == {"min:qty": 1, "type:qty": 1, "required:k1": 1}
    # rows with a key load (a bad value as NULL); a row without its key cannot merge
    assert query(project, "SELECT k1, k2, qty FROM items ORDER BY k2") == [
        ("a", "b", -1),
        ("a", "c", None),
    ]
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (3, 2, 1)


def test_the_duckdb_adapter_fulfils_the_warehouse_protocol() -> None:
    from penstock.warehouse import DuckDBWarehouse, Warehouse

    adapter: Warehouse = DuckDBWarehouse(None)  # src: ENGINES is typed by the protocol
    try:
        assert adapter.engine == "duckdb" and adapter.supports_merge
        assert adapter.loaded_batches("nothing") == set()
    finally:
        adapter.close()
