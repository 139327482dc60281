"""The same project on DuckDB and on PostgreSQL ends with identical warehouses: every load mode
(append, merge, scd2, replace) with late data, in-batch duplicates, several batches in one
micro-batch, unchanged rows, SCD2 late versions and corrections, and a replace snapshot whose
rows all fail; the same quarantine rows and the same ledger counts."""

from __future__ import annotations

from pathlib import Path

import pytest

import penstock

from pg_projects import (
    OBJECTS,
    ROUND_1,
    ROUND_2,
    ROUND_3,
    ROUND_3_PRICES,
    PgWarehouse,
    deliver,
    duckdb_contents,
    make_project,
    postgres_contents,
)

pytestmark = pytest.mark.services


def test_duckdb_and_postgres_end_identical_for_every_load_mode(
    tmp_path: Path, pg_warehouse: PgWarehouse
) -> None:
    projects = {
        "duckdb": make_project(tmp_path / "duck", "duckdb:///warehouse.duckdb"),
        "postgres": make_project(tmp_path / "pg", pg_warehouse.url),
    }
    rounds = [
        (ROUND_1, OBJECTS),
        (ROUND_2, OBJECTS),
        (ROUND_3, OBJECTS[:3]),
        (ROUND_3_PRICES, ("prices",)),
    ]
    for files, objects in rounds:
        for project in projects.values():
            deliver(project, files, objects)
            penstock.run(project)
    duck = duckdb_contents(projects["duckdb"])
    pg = postgres_contents(pg_warehouse)
    assert duck.keys() == pg.keys()
    for name in duck:
        assert pg[name] == duck[name], name
    # the fixture reaches every path it means to (the same on both engines, as just proved)
    counts = {row[2]: row[3:] for row in pg["ledger"]}
    # (rows_in, loaded, quarantined, duplicate, inserted, updated, unchanged, stale, warned)
    assert counts["landing/orders/a.csv"] == (5, 3, 1, 1, 3, 0, 0, 0, 0)  # a duplicate key
    assert counts["landing/orders/b.csv"] == (4, 3, 1, 0, 1, 1, 0, 1, 0)  # late data loses
    assert counts["landing/orders/c.csv"] == (4, 3, 0, 1, 1, 1, 1, 0, 0)  # same row: unchanged
    assert counts["landing/customers/d.csv"] == (2, 2, 0, 0, 0, 2, 0, 0, 0)
    assert counts["landing/prices/d.csv"] == (1, 0, 1, 0, 0, 0, 0, 0, 0)  # kept the previous
    orders = {row[0]: row[1] for row in pg["orders"]}
    assert orders == {
        1: "Ann C",
        2: "Bo",
        4: 'Dee "quoted", comma',
        5: "Eve",
        7: "Gus 2 fixed",  # an equal order_by value: the later batch corrects
    }
    assert sorted((r[0], r[1]) for r in pg["prices"]) == [(1, "Ann C"), (2, "Bo"), (7, "Gus 2")]
    history = sorted((r[11], r[1], r[12], r[13]) for r in pg["customers"] if r[0] == 1)
    assert [(name, until is None) for _, name, until, _ in history] == [
        ("Ann", False),
        ("Ann late", False),  # a late version placed between two stored ones
        ("Ann B", False),
        ("Ann C", True),
    ]
    assert sorted(r[1] for r in pg["customers"] if r[0] == 7) == ["Gus 1", "Gus 2 fixed"]
