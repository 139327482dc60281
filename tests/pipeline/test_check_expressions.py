"""Check expressions run as vetted: a valid one fails its rows by name; one that could break
out of its place in the SQL stops the run before anything touches the warehouse."""

from __future__ import annotations

from pathlib import Path

import pytest

import penstock
from penstock.errors import ProjectErrors

from helpers import query, write_project

PROJECT = """
name: checks
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    columns:
      id: {type: integer}
      placed_at: {type: timestamptz}
      shipped_at: {type: timestamptz}
    checks:
      - {name: shipped_after_placed, expression: "EXPRESSION"}
"""
DATA = (
    "id,placed_at,shipped_at\n"
    "1,2024-01-01T10:00:00+02:00,2024-01-01T09:00:00Z\n"  # shipped an hour after, by the instant
    "2,2024-01-01T10:00:00Z,2024-01-01T11:00:00+02:00\n"  # shipped before it was placed
    "3,2024-01-01T10:00:00Z,\n"
)


def test_a_check_compares_typed_values_and_fails_rows_by_name(tmp_path: Path) -> None:
    yml = PROJECT.replace("EXPRESSION", "shipped_at >= placed_at")
    project = write_project(tmp_path, yml, {"landing/orders/a.csv": DATA})
    penstock.run(project)
    assert query(project, "SELECT id FROM orders ORDER BY id") == [(1,), (3,)]
    assert query(project, "SELECT id, _reasons FROM quarantine.orders") == [
        ("2", ["check:shipped_after_placed"])
    ]


@pytest.mark.parametrize(
    "expression",
    [
        "true) OR (true",
        "true; DROP TABLE penstock.loads",
        "id > 0 -- ignore the rest",
        "id IN (SELECT id FROM orders)",
    ],
)
def test_an_expression_that_could_escape_stops_before_the_warehouse(
    tmp_path: Path, expression: str
) -> None:
    yml = PROJECT.replace("EXPRESSION", expression)
    project = write_project(tmp_path, yml, {"landing/orders/a.csv": DATA})
    with pytest.raises(ProjectErrors) as info:
        penstock.run(project)
    assert info.value.message.startswith("penstock.yml:14: objects.orders.checks[0].expression: ")
    assert not (project / "warehouse.duckdb").exists()
    assert not (project / "lake").exists()
