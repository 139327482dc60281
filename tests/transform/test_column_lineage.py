"""Column lineage of models (transform/column_lineage.py) against hand-written expectations:
joins, aggregates, CASE, CTEs, `*`, subqueries and models of models."""

from __future__ import annotations

from pathlib import Path

import pytest

from penstock.catalog import load_project
from penstock.transform.model_set import ModelSet, load_models

from helpers import write_project

PROJECT = """
name: lineage
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    columns:
      order_id: {type: bigint}
      customer_id: {type: bigint}
      amount: {type: "decimal(12,2)"}
      status: {type: text}
  customers:
    source: landing
    files: "customers/*.csv"
    columns: {id: {type: bigint}, name: {type: text}, country: {type: text}}
"""

MODELS = {
    # a join: each column from its own table, as it is
    "joined": """
        SELECT o.order_id, c.name AS customer, o.amount
        FROM orders o JOIN customers c ON c.id = o.customer_id
    """,
    # aggregates, CASE over an aggregate and over a column, a constant, count(*)
    "per_country": """
        SELECT c.country,
               sum(o.amount) AS revenue,
               CASE WHEN o.status = 'returned' THEN -1 ELSE 1 END AS sign,
               CASE WHEN max(o.amount) > 100 THEN c.name ELSE 'small' END AS label,
               count(*) AS n,
               'EUR' AS currency
        FROM orders o JOIN customers c ON c.id = o.customer_id
        GROUP BY c.country, o.status, c.name
    """,
    # CTEs in a chain and a subquery; `*` expands through them
    "ctes": """
        WITH shipped AS (SELECT * FROM orders WHERE status = 'shipped'),
             big AS (SELECT order_id, amount * 2 AS doubled FROM shipped)
        SELECT b.*, (SELECT max(id) FROM customers) AS top_customer FROM big b
    """,
    # a model of a model: its columns come from the model's table
    "of_model": "SELECT customer, amount + 1 AS bumped FROM joined",
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> ModelSet:
    root = tmp_path_factory.mktemp("lineage")
    files = {f"models/{n}.sql": sql for n, sql in MODELS.items()}
    return load_models(load_project(write_project(Path(root), PROJECT, files)))


def lineage_of(models: ModelSet, name: str) -> dict[str, tuple[list[str], str]]:
    return {
        column: ([f"{s.table}.{s.column}" for s in sources], how)
        for column, (sources, how) in models[name].analysis.lineage.items()
    }


def test_join(models: ModelSet) -> None:
    assert models["joined"].analysis.columns == ("order_id", "customer", "amount")
    assert lineage_of(models, "joined") == {
        "order_id": (["orders.order_id"], "IDENTITY"),
        "customer": (["customers.name"], "IDENTITY"),
        "amount": (["orders.amount"], "IDENTITY"),
    }


def test_aggregates_case_constants(models: ModelSet) -> None:
    assert lineage_of(models, "per_country") == {
        "country": (["customers.country"], "IDENTITY"),
        "revenue": (["orders.amount"], "AGGREGATION"),
        "sign": (["orders.status"], "TRANSFORMATION"),
        "label": (["customers.name", "orders.amount"], "AGGREGATION"),
        "n": ([], "AGGREGATION"),
        "currency": ([], "TRANSFORMATION"),
    }


def test_ctes_star_and_subquery(models: ModelSet) -> None:
    assert models["ctes"].analysis.columns == ("order_id", "doubled", "top_customer")
    assert lineage_of(models, "ctes") == {
        "order_id": (["orders.order_id"], "IDENTITY"),
        "doubled": (["orders.amount"], "TRANSFORMATION"),
        "top_customer": (["customers.id"], "AGGREGATION"),
    }


def test_model_of_model(models: ModelSet) -> None:
    assert [r.unit for r in models["of_model"].reads] == ["joined"]
    assert lineage_of(models, "of_model") == {
        "customer": (["joined.customer"], "IDENTITY"),
        "bumped": (["joined.amount"], "TRANSFORMATION"),
    }
