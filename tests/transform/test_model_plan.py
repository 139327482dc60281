"""Consume models in the plan: their dependencies come from the tables their SQL reads (no
`ref()`), models of models go after their inputs, a cycle is an error naming it, and what
cannot be read (SQL, header, an unknown table) names the model file and line. No run here."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from penstock.catalog import load_project
from penstock.engine.plan import build_plan
from penstock.errors import ProjectError, UsageError

from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: dag
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    columns: {id: {type: bigint}, customer_id: {type: bigint}, amount: {type: double}}
  customers:
    source: landing
    files: "customers/*.csv"
    target: dim_customers
    columns: {id: {type: bigint}, country: {type: text}}
"""


def project(tmp_path: Path, models: dict[str, str]) -> Path:
    files = {f"models/{name}.sql": sql for name, sql in models.items()}
    return write_project(tmp_path, PROJECT, files)


def error(tmp_path: Path, models: dict[str, str]) -> ProjectError:
    with pytest.raises(ProjectError) as caught:
        build_plan(load_project(project(tmp_path, models)))
    assert caught.value.exit_code == 2
    return caught.value


# a_top reads b_mid reads c_base (file names sort the other way round); c_base reads an
# object by its target: table and one by name
MODELS = {
    "a_top": "-- materialized: view\nSELECT country, total FROM b_mid WHERE total > 0\n",
    "b_mid": "SELECT country, sum(amount) AS total\nFROM c_base\nGROUP BY country\n",
    "c_base": (
        "WITH o AS (SELECT * FROM orders)\n"
        "SELECT o.amount, c.country FROM o JOIN dim_customers c ON c.id = o.customer_id\n"
    ),
    "d_alone": "SELECT count(*) AS n FROM main.orders\n",
}


def test_models_follow_their_inputs_models_of_models_included(tmp_path: Path) -> None:
    plan = build_plan(load_project(project(tmp_path, MODELS)))
    assert list(plan.nodes) == [
        "orders.extract",
        "orders.load",
        "customers.extract",
        "customers.load",
        "c_base.build",
        "b_mid.build",
        "a_top.build",
        "d_alone.build",
    ]
    units = plan.units
    assert units["c_base"].kind == "model" and units["c_base"].group == "models"
    # a CTE is not a table; an object read by its target: table is the object
    assert units["c_base"].depends == ("orders", "customers")
    assert [(u.unit, u.why, u.detail) for u in units["b_mid"].upstream] == [
        ("c_base", "reads", "b_mid reads c_base")
    ]
    assert plan.nodes["a_top.build"].depends_on == ["b_mid.build"]
    # selection by model name, with graph operators, and the models group
    assert plan.select("+a_top") == ["orders", "customers", "c_base", "b_mid", "a_top"]
    assert plan.select("customers+") == ["customers", "c_base", "b_mid", "a_top"]
    assert plan.select("group:models") == ["c_base", "b_mid", "a_top", "d_alone"]
    assert plan.models_of(plan.select("orders+")) == ["c_base", "b_mid", "a_top", "d_alone"]
    with pytest.raises(UsageError, match=r"models: c_base, b_mid, a_top, d_alone"):
        plan.select("nope")


def test_plan_command_lists_and_draws_models(tmp_path: Path, cli: Cli) -> None:
    root = project(tmp_path, MODELS)
    code, out, _ = cli("plan", "-p", root, "--json")
    assert code == 0
    plan = json.loads(out)
    nodes = {n["id"]: n for n in plan["nodes"]}
    assert nodes["b_mid.build"]["kind"] == "model"
    assert nodes["b_mid.build"]["depends_on"] == ["c_base.build"]
    assert nodes["b_mid.build"]["reason"] == "b_mid reads c_base"
    by_name = {o["object"]: o for o in plan["objects"]}
    assert by_name["a_top"]["would"] == "build the view from b_mid"
    assert by_name["a_top"]["kind"] == "model"
    code, out, _ = cli("plan", "-p", root, "--format", "mermaid", "--select", "+b_mid")
    assert code == 0
    assert 'subgraph g1["group models"]' in out
    assert '["c_base.build"]' in out and "-->|reads|" in out


@pytest.mark.parametrize(
    ("models", "message", "file", "line"),
    [
        (
            {
                "a": "SELECT * FROM b\n",
                "b": "-- materialized: view\nSELECT *\nFROM c\n",
                "c": "SELECT * FROM a",
            },
            "dependency cycle: a → b → c → a (a reads b; b reads c; c reads a)",
            "models/a.sql",
            1,
        ),
        (
            {"m": "-- a comment\nSELECT id\nFROM orders JOIN refunds USING (id)\n"},
            "model 'm' reads 'refunds', which is neither an object nor a model of this "
            "project (known: customers, m, orders)",
            "models/m.sql",
            3,
        ),
        ({"m": "SELECT id FROM m\n"}, "model 'm' reads itself", "models/m.sql", 1),
        (
            {"m": "-- materialized: table\n\nSELECT id,\n  FROM orders WHERE (\n"},
            "model 'm': cannot parse its SQL",
            "models/m.sql",
            4,
        ),
        (
            {"m": "-- materialized: tabel\nSELECT 1 AS x\n"},
            "Input should be 'table', 'view' or 'incremental'",
            "models/m.sql",
            1,
        ),
        (
            {"m": "/*\nmaterialized: table\nchecks:\n  - {nme: x}\n*/\nSELECT 1 AS x\n"},
            "check",
            "models/m.sql",
            3,
        ),
        (
            {"m": "-- materialised: view\nSELECT 1 AS x\n"},
            "unknown key 'materialised' (did you mean 'materialized'?)",
            "models/m.sql",
            1,
        ),
        (
            {"customers": "SELECT 1 AS x\n"},
            "model 'customers' has the name of object 'customers's table",
            "models/customers.sql",
            None,
        ),
        (
            {"m": "SELECT 1 AS x; SELECT 2 AS y\n"},
            "a model is one SELECT (found 2 statement(s))",
            "models/m.sql",
            None,
        ),
    ],
)
def test_model_errors_name_file_and_line(
    tmp_path: Path, models: dict[str, str], message: str, file: str, line: int | None
) -> None:
    caught = error(tmp_path, models)
    assert message in caught.message
    assert caught.fields["file"] == file
    assert caught.fields["line"] == line


def test_a_prose_comment_is_not_a_header(tmp_path: Path) -> None:
    root = project(tmp_path, {"m": "-- Revenue per country: one row each\nSELECT 1 AS x\n"})
    plan = build_plan(load_project(root))
    assert plan.units["m"].depends == ()
