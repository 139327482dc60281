"""The same models, written once in DuckDB's SQL, give identical contents on a DuckDB and on a
PostgreSQL warehouse (sqlglot transpiles them): tables, views, incremental models over two runs,
and a model using DuckDB-only spellings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

import penstock
from transform.test_model_runs import CUSTOMERS, MODELS, ORDERS_1, ORDERS_2, PROJECT

from helpers import write_project
from pg_projects import PgWarehouse

pytestmark = pytest.mark.services

MORE = {
    # DuckDB's spellings: count_if, ifnull, string_agg with ORDER BY, `::` casts
    "duckdb_isms": """\
SELECT ifnull(country, '?') AS country,
       string_agg(name, ',' ORDER BY name) AS names,
       count_if(id > 1) AS later,
       sum(id)::DOUBLE / 2 AS half
FROM customers GROUP BY ifnull(country, '?')
""",
    # a view over an object: a rebuild of the object drops it first and builds it again
    "big_orders": "-- materialized: view\nSELECT order_id, amount FROM orders WHERE amount > 6\n",
}
ORDER = {
    "revenue": "country",
    "top_country": "country",
    "order_log": "order_id",
    "status_per_customer": "customer_id",
    "duckdb_isms": "country",
    "big_orders": "order_id",
}


def project(root: Path, warehouse: str | None) -> Path:
    yml = (
        PROJECT
        if warehouse is None
        else PROJECT.replace("name: shop", f"name: shop\nwarehouse: {warehouse}")
    )
    files = {f"models/{n}.sql": sql for n, sql in (MODELS | MORE).items()}
    files |= {"landing/customers/c1.csv": CUSTOMERS, "landing/orders/o1.csv": ORDERS_1}
    return write_project(root, yml, files)


def twice(root: Path) -> None:
    for orders in (None, ORDERS_2):
        if orders is not None:
            (root / "landing/orders/o2.csv").write_text(orders)
        result = penstock.run(root)
        assert result.status == "success", [o.error for o in result.failures]


def test_models_agree_on_duckdb_and_postgresql(tmp_path: Path, pg_warehouse: PgWarehouse) -> None:
    on_duckdb = project(tmp_path / "duckdb", None)
    on_postgres = project(tmp_path / "postgres", pg_warehouse.url)
    twice(on_duckdb)
    twice(on_postgres)
    first, _ = contents(on_duckdb, on_postgres, pg_warehouse)
    # a rebuild of orders and everything downstream of it, on both
    for root in (on_duckdb, on_postgres):
        result = penstock.rebuild(root, "orders+")
        assert result.status == "success", [o.error for o in result.failures]
        assert result.selected[0] == "orders" and "big_orders" in result.selected
    rebuilt = contents(on_duckdb, on_postgres, pg_warehouse)
    assert rebuilt[0] == rebuilt[1]
    # the keyed incremental model read both batches at once; everything else is as it was
    assert {k: v for k, v in rebuilt[0].items() if k != "status_per_customer"} == {
        k: v for k, v in first.items() if k != "status_per_customer"
    }


def contents(
    on_duckdb: Path, on_postgres: Path, pg_warehouse: PgWarehouse
) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[tuple[Any, ...]]]]:
    expected: dict[str, list[tuple[Any, ...]]] = {}
    conn = duckdb.connect(str(on_duckdb / "warehouse.duckdb"), read_only=True)
    try:
        for model, order in ORDER.items():
            expected[model] = conn.execute(f"SELECT * FROM {model} ORDER BY {order}").fetchall()
    finally:
        conn.close()
    got: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(pg_warehouse.conninfo) as pg:
        for model, order in ORDER.items():
            got[model] = pg.execute(
                f'SELECT * FROM "{pg_warehouse.schema}"."{model}" ORDER BY {order}'
            ).fetchall()
        kinds = pg.execute(
            "SELECT table_name, table_type FROM information_schema.tables "
            "WHERE table_schema = %s AND table_name = 'top_country'",
            (pg_warehouse.schema,),
        ).fetchall()
        progress = pg.execute(
            f'SELECT model, count(*) FROM "{pg_warehouse.ledger}".model_batches '
            "GROUP BY model ORDER BY model"
        ).fetchall()
    assert got == expected
    assert expected["duckdb_isms"] == [("DE", "Bob", 1, 1.0), ("FR", "Ann,Cid", 1, 2.0)]
    assert len(expected["order_log"]) == 5
    assert [r[0] for r in expected["big_orders"]] == [1, 3, 4]
    assert kinds == [("top_country", "VIEW")]
    assert progress == [("order_log", 2), ("status_per_customer", 2)]
    return expected, got
