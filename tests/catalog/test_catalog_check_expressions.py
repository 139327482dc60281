"""Check expressions are vetted when the project loads: one scalar boolean expression over the
object's own columns, or an error naming the file, line and key path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from penstock.catalog import ExpressionCheck, Project, load_project
from penstock.errors import ProjectErrors

from helpers import write_project

PROJECT = """
name: shop
sources:
  landing: {kind: files, path: ./landing}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    columns:
      order_id: {type: bigint}
      amount: {type: "decimal(12,2)"}
      placed_at: {type: timestamp}
      "Status": {type: text}
    checks:
      - {name: ok_one, expression: "amount >= 0"}
      - name: probe
        expression: {EXPRESSION}
"""


def _load(tmp_path: Path, expression: str) -> Project:
    yml = PROJECT.replace("{EXPRESSION}", expression)
    return load_project(write_project(tmp_path, yml, {"landing/.keep": ""}))


@pytest.mark.parametrize(
    "expression",
    [
        '"amount > 0 AND order_id IS NOT NULL"',
        "\"coalesce(amount, 0) <= 1000 OR placed_at < TIMESTAMP '2024-01-01'\"",
        "\"status IN ('a', 'b') OR regexp_matches(Status, '^x')\"",
        '"amount BETWEEN 0 AND 10"',
        '"len(list_filter([1, 2], lambda x: x > order_id)) > 0"',
        '"note_col IS NULL"'.replace("note_col", "status"),
    ],
)
def test_scalar_boolean_expressions_over_the_columns_load(tmp_path: Path, expression: str) -> None:
    project = _load(tmp_path, expression)
    (probe,) = [c for c in project.objects["orders"].checks if c.name == "probe"]
    assert isinstance(probe, ExpressionCheck)
    assert probe.expression == expression[1:-1]  # kept verbatim, as written in the YAML


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ('"amount > 0 -- and more"', "must not hold a comment (-- or /* */)"),
        ('"amount > 0 /* x */"', "must not hold a comment (-- or /* */)"),
        ('"amount > 0; DROP TABLE orders"', "must be a single expression (no ;)"),
        ('"DROP TABLE orders"', "must be an expression, not a statement: DROP TABLE orders"),
        ('"SELECT true"', "must be an expression, not a statement: SELECT TRUE"),
        ("\"COPY orders TO 'x.csv'\"", "must be an expression, not a statement"),
        ('"amount > 0 OR orders.amount IS NULL"', "column 'orders.amount' is qualified"),
        (
            '"order_id IN (SELECT order_id FROM orders)"',
            "must be a scalar expression over the row, not a subquery",
        ),
        (
            '"EXISTS (SELECT 1)"',
            "must be a scalar expression over the row, not a subquery",
        ),
        ('"count(*) > 1"', "must be a scalar expression over the row, not an aggregate"),
        (
            '"sum(amount) OVER () > 1"',
            "must be a scalar expression over the row, not a window function",
        ),
        ('"amount > $1"', "must be a scalar expression over the row, not a parameter"),
        ('"o.amount > 0"', "column 'o.amount' is qualified: name the object's columns alone"),
        (
            '"amont > 0"',
            "unknown column 'amont' (the object's columns: order_id, amount, placed_at, Status)",
        ),
        ('"amount > 0) OR (true"', "not a SQL expression"),
        ('"amount +"', "not a SQL expression"),
        (
            '"amount + 1"',
            "must be a boolean expression (true when the row passes), not DECIMAL(13,2)",
        ),
        ('"no_such_function(amount)"', "does not bind in DuckDB"),
    ],
)
def test_unsafe_or_invalid_expressions_are_refused_at_their_line(
    tmp_path: Path, expression: str, message: str
) -> None:
    with pytest.raises(ProjectErrors) as info:
        _load(tmp_path, expression)
    (error,) = info.value.errors
    text = error.message
    prefix = "penstock.yml:17: objects.orders.checks[1].expression: check 'probe': "
    assert text.startswith(prefix + message), text


def test_a_valid_expression_is_remembered_and_a_bad_one_is_vetted_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vetted-valid expressions are kept (hashed with the column types) in
    .penstock/valid_checks.json and not vetted again; a problem is never remembered, a changed
    column type vets again, and a damaged cache file is ignored."""
    from penstock.catalog import expressions

    vetted: list[str] = []
    structure = expressions._structure_problem

    def counting(text: str, columns: dict[str, str]) -> str | None:
        vetted.append(text)
        return structure(text, columns)

    monkeypatch.setattr(expressions, "_structure_problem", counting)
    project = _load(tmp_path / "a", '"order_id > 0"')
    assert project.objects["orders"].checks[1].expression == "order_id > 0"
    assert sorted(vetted) == ["amount >= 0", "order_id > 0"]
    cache = tmp_path / "a" / ".penstock" / "valid_checks.json"
    assert len(json.loads(cache.read_text())) == 2
    vetted.clear()
    load_project(tmp_path / "a")
    assert vetted == []

    yml = (tmp_path / "a" / "penstock.yml").read_text()
    (tmp_path / "a" / "penstock.yml").write_text(yml.replace("type: bigint", "type: text"))
    with pytest.raises(ProjectErrors, match=r"check 'probe': does not bind"):
        load_project(tmp_path / "a")  # text > integer no longer binds: vetted again
    assert "order_id > 0" in vetted
    vetted.clear()
    with pytest.raises(ProjectErrors, match=r"check 'probe': does not bind"):
        load_project(tmp_path / "a")
    assert "order_id > 0" in vetted  # a problem is found afresh each time

    (tmp_path / "a" / "penstock.yml").write_text(yml)
    cache.write_text("{not json")
    vetted.clear()
    load_project(tmp_path / "a")
    assert sorted(vetted) == ["amount >= 0", "order_id > 0"]
    assert len(json.loads(cache.read_text())) == 2
