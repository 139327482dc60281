"""`penstock contract diff` on the command line: exit codes, JSON, one object, object files
and errors that name the file and line."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """\
name: shop
sources:
  landing: {kind: files, path: ./landing}
include: [objects/*.yml]
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [order_id]
    columns:
      order_id: {type: bigint, required: true}
      amount:   {type: "decimal(12,2)", min: 0}
      status:   {type: text, in: [placed, shipped]}
"""
CUSTOMERS = """\
objects:
  customers:
    source: landing
    files: "customers/*.csv"
    columns:
      customer_id: {type: bigint, required: true}
      country:     {type: text, pattern: "^[A-Z]{2}$"}
"""


def project(root: Path, penstock_yml: str = PROJECT, customers: str = CUSTOMERS) -> Path:
    (root / "objects").mkdir(parents=True)
    (root / "penstock.yml").write_text(textwrap.dedent(penstock_yml))
    (root / "objects" / "customers.yml").write_text(textwrap.dedent(customers))
    return root


def test_no_change_exits_0(tmp_path: Path, cli: Cli) -> None:
    old, new = project(tmp_path / "old"), project(tmp_path / "new")
    code, out, _ = cli("contract", "diff", old / "penstock.yml", new / "penstock.yml")
    assert (code, out.strip()) == (0, "no contract changes")
    code, out, _ = cli("contract", "diff", old, new, "--json")
    assert (code, json.loads(out)) == (0, [])


def test_a_breaking_change_exits_1_and_json_lists_every_change(tmp_path: Path, cli: Cli) -> None:
    old = project(tmp_path / "old")
    new = project(
        tmp_path / "new",
        PROJECT.replace('"decimal(12,2)"', '"decimal(10,2)"').replace(
            "in: [placed, shipped]", "in: [placed, shipped, returned]"
        ),
        CUSTOMERS + "      segment:     {type: text}\n",
    )
    code, out, err = cli("contract", "diff", old / "penstock.yml", new / "penstock.yml")
    assert code == 1, err
    assert "type_narrowed" in out and "decimal(12,2) → decimal(10,2)" in out
    code, out, _ = cli("contract", "diff", old / "penstock.yml", new / "penstock.yml", "--json")
    assert code == 1
    assert json.loads(out) == [
        {
            "kind": "type_narrowed",
            "object": "orders",
            "column": "amount",
            "breaking": True,
            "detail": "decimal(12,2) → decimal(10,2): values with more than 8 integer digits fail",
        },
        {
            "kind": "check_loosened",
            "object": "orders",
            "column": "status",
            "breaking": False,
            "detail": "in: allows [returned]",
        },
        {
            "kind": "column_added",
            "object": "customers",
            "column": "segment",
            "breaking": False,
            "detail": "a new optional text column",
        },
    ]
    # one object: only its changes, and none breaks
    code, out, _ = cli("contract", "diff", old, new, "--object", "customers", "--json")
    assert code == 0
    assert [c["kind"] for c in json.loads(out)] == ["column_added"]


def test_object_files_compare_on_their_own(tmp_path: Path, cli: Cli) -> None:
    project(tmp_path / "old")
    project(tmp_path / "new", customers=CUSTOMERS.replace("^[A-Z]{2}$", "^[A-Z]{3}$"))
    code, out, _ = cli(
        "contract",
        "diff",
        tmp_path / "old" / "objects" / "customers.yml",
        tmp_path / "new" / "objects" / "customers.yml",
        "--json",
    )
    assert code == 1
    (change,) = json.loads(out)
    assert (change["kind"], change["column"], change["breaking"]) == (
        "check_changed",
        "country",
        True,
    )
    # an object file against the project it belongs to: the project's other object is new
    code, out, _ = cli(
        "contract", "diff", tmp_path / "old" / "objects" / "customers.yml", tmp_path / "old"
    )
    assert code == 0 and "object_added" in out


@pytest.mark.parametrize("side", ["project", "object file"])
def test_errors_name_the_file_and_line(tmp_path: Path, cli: Cli, side: str) -> None:
    old = project(tmp_path / "old")
    new = project(tmp_path / "new", customers=CUSTOMERS.replace('pattern: "^[A-Z]{2}$"', "min: x"))
    target = new if side == "project" else new / "objects" / "customers.yml"
    code, out, err = cli("contract", "diff", old, target)
    assert code == 2 and out == ""
    where = str(new / "objects" / "customers.yml")
    assert f"error: {where}:7: objects.customers.columns.country.min:" in err, err


def test_unknown_object_and_missing_file_are_usage_errors(tmp_path: Path, cli: Cli) -> None:
    old = project(tmp_path / "old")
    code, _, err = cli("contract", "diff", old, old, "--object", "nope")
    assert code == 2 and "unknown object 'nope' (objects: orders, customers)" in err
    code, _, err = cli("contract", "diff", old, tmp_path / "missing.yml")
    assert code == 2 and "missing.yml" in err


def test_odcs_contracts_compare_as_they_import(tmp_path: Path, cli: Cli) -> None:
    old = project(tmp_path / "old")
    assert cli("contract", "export", "orders", "-p", old, "-o", tmp_path / "old.odcs.yaml")[0] == 0
    text = (tmp_path / "old.odcs.yaml").read_text()
    (tmp_path / "new.odcs.yaml").write_text(text.replace("minimum: 0", "minimum: 1"))
    code, out, _ = cli("contract", "diff", old, tmp_path / "old.odcs.yaml", "--object", "orders")
    assert (code, out.strip()) == (0, "no contract changes")
    code, out, _ = cli(
        "contract", "diff", tmp_path / "old.odcs.yaml", tmp_path / "new.odcs.yaml", "--json"
    )
    assert code == 1
    (change,) = json.loads(out)
    assert (change["kind"], change["column"], change["detail"]) == (
        "check_tightened",
        "amount",
        "min raised 0 → 1: more values fail",
    )
