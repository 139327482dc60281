"""`contract diff` case by case: each change to a contract gives its kind, column and
breaking flag (contract/diff.py)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from penstock.catalog.models import ObjectSpec
from penstock.contract.diff import diff_contracts

BASE: dict[str, Any] = {
    "source": "landing",
    "files": "t/*.csv",
    "key": ["id"],
    "load": "merge",
    "columns": {
        "id": {"type": "bigint", "required": True},
        "name": {"type": "text", "required": True},
        "ref": {"type": "text"},
        "qty": {"type": "integer", "min": 1, "max": 100},
        "amount": {"type": "decimal(12,2)"},
        "status": {"type": "text", "in": ["a", "b", "c"]},
        "code": {"type": "text", "pattern": "^[A-Z]{2}$"},
        "at": {"type": "timestamp", "max": "now"},
        "day": {"type": "date", "min": "2020-01-01"},
    },
    "checks": [{"name": "positive", "expression": "qty > 0"}, {"row_count": {"min": 1}}],
}

Edit = Callable[[dict[str, Any]], None]


def spec(data: dict[str, Any]) -> ObjectSpec:
    return ObjectSpec.model_validate({**data, "name": "t"})


def col(name: str, **values: Any) -> Edit:
    """Set (or, with None, remove) keys of column `name`, adding the column if new."""

    def edit(data: dict[str, Any]) -> None:
        column = data["columns"].setdefault(name, {})
        for key, value in values.items():
            if value is None:
                column.pop(key, None)
            else:
                column[key] = value

    return edit


def drop(name: str) -> Edit:
    return lambda data: data["columns"].pop(name)


def top(**values: Any) -> Edit:
    return lambda data: data.update(values)


def checks(*items: dict[str, Any]) -> Edit:
    return lambda data: data.update(checks=list(items))


ROW_COUNT = {"row_count": {"min": 1}}
POSITIVE = {"name": "positive", "expression": "qty > 0"}

CASES: list[tuple[str, Edit, list[tuple[str, str | None, bool]]]] = [
    ("optional column added", col("note", type="text"), [("column_added", "note", False)]),
    (
        "required column added",
        col("note", type="text", required=True),
        [("column_added", "note", True)],
    ),
    ("column removed", drop("ref"), [("column_removed", "ref", True)]),
    ("integer to bigint", col("qty", type="bigint"), [("type_widened", "qty", False)]),
    ("bigint to integer", col("id", type="integer"), [("type_narrowed", "id", True)]),
    ("integer to double", col("qty", type="double"), [("type_widened", "qty", False)]),
    ("bigint to double", col("id", type="double"), [("type_changed", "id", True)]),
    (
        "decimal fewer digits",
        col("amount", type="decimal(10,2)"),
        [("type_narrowed", "amount", True)],
    ),
    (
        "decimal more digits",
        col("amount", type="decimal(14,2)"),
        [("type_widened", "amount", False)],
    ),
    ("decimal scale up", col("amount", type="decimal(13,3)"), [("type_widened", "amount", False)]),
    (
        "decimal scale down",
        col("amount", type="decimal(11,1)"),
        [("type_narrowed", "amount", True)],
    ),
    (
        "decimal scale traded for digits",
        col("amount", type="decimal(12,3)"),
        [("type_changed", "amount", True)],
    ),
    ("integer to decimal", col("qty", type="decimal(12,2)"), [("type_widened", "qty", False)]),
    ("bigint to small decimal", col("id", type="decimal(12,2)"), [("type_changed", "id", True)]),
    ("decimal to integer", col("amount", type="integer"), [("type_narrowed", "amount", True)]),
    (
        "integer to whole decimal",
        col("qty", type="decimal(10,0)"),
        [("type_widened", "qty", False)],
    ),
    ("integer to short decimal", col("qty", type="decimal(9,0)"), [("type_narrowed", "qty", True)]),
    ("text to bigint", col("ref", type="bigint"), [("type_narrowed", "ref", True)]),
    (
        "date to text",
        col("day", type="text", min=None),
        [("type_changed", "day", True), ("check_removed", "day", False)],
    ),
    ("timestamp to timestamptz", col("at", type="timestamptz"), [("type_changed", "at", True)]),
    ("date to timestamp", col("day", type="timestamp"), [("type_widened", "day", False)]),
    ("timestamp to date", col("at", type="date"), [("type_narrowed", "at", True)]),
    ("required added", col("ref", required=True), [("required_added", "ref", True)]),
    ("required removed", col("name", required=None), [("required_removed", "name", False)]),
    (
        "key widened to two columns",
        top(key=["id", "ref"]),
        [("key_changed", None, True), ("required_added", "ref", True)],
    ),
    (
        "order_by added",
        top(order_by="at"),
        [("order_by_changed", None, True), ("required_added", "at", True)],
    ),
    ("load mode", top(load="scd2"), [("load_changed", None, True)]),
    (
        "schema drift stricter",
        top(schema_drift={"missing_columns": "quarantine"}),
        [("schema_drift_changed", None, True)],
    ),
    (
        "schema drift evolves",
        top(schema_drift={"new_columns": "evolve"}),
        [("schema_drift_changed", None, False)],
    ),
    ("table renamed", top(target="t_v2"), [("table_changed", None, True)]),
    ("description", top(description="new words"), [("description_changed", None, False)]),
    ("min raised", col("qty", min=2), [("check_tightened", "qty", True)]),
    ("min lowered", col("qty", min=0), [("check_loosened", "qty", False)]),
    ("max lowered", col("qty", max=50), [("check_tightened", "qty", True)]),
    ("max raised", col("qty", max=500), [("check_loosened", "qty", False)]),
    ("min removed", col("qty", min=None), [("check_removed", "qty", False)]),
    ("min added", col("amount", min=0), [("check_added", "amount", True)]),
    ("date min raised", col("day", min="2021-01-01"), [("check_tightened", "day", True)]),
    ("now against a date", col("at", max="2030-01-01 00:00:00"), [("check_changed", "at", True)]),
    ("in shrunk", col("status", **{"in": ["a", "b"]}), [("check_tightened", "status", True)]),
    (
        "in grown",
        col("status", **{"in": ["a", "b", "c", "d"]}),
        [("check_loosened", "status", False)],
    ),
    ("in swapped", col("status", **{"in": ["a", "b", "d"]}), [("check_changed", "status", True)]),
    ("in added", col("ref", **{"in": ["x"]}), [("check_added", "ref", True)]),
    ("in removed", col("status", **{"in": None}), [("check_removed", "status", False)]),
    ("pattern changed", col("code", pattern="^[A-Z]{3}$"), [("check_changed", "code", True)]),
    ("pattern identical", col("code", pattern="^[A-Z]{2}$"), []),
    ("pattern removed", col("code", pattern=None), [("check_removed", "code", False)]),
    ("pattern added", col("ref", pattern="^r"), [("check_added", "ref", True)]),
    (
        "expression check added",
        checks(POSITIVE, {"name": "small", "expression": "qty < 50"}, ROW_COUNT),
        [("check_added", None, True)],
    ),
    ("expression check removed", checks(ROW_COUNT), [("check_removed", None, False)]),
    (
        "expression changed",
        checks({"name": "positive", "expression": "qty > 1"}, ROW_COUNT),
        [("check_changed", None, True)],
    ),
    (
        "expression respaced",
        checks({"name": "positive", "expression": "qty  >  0"}, ROW_COUNT),
        [],
    ),
    (
        "row_count min raised",
        checks(POSITIVE, {"row_count": {"min": 10}}),
        [("check_tightened", None, True)],
    ),
    (
        "row_count min lowered",
        checks(POSITIVE, {"row_count": {"min": 0}}),
        [("check_loosened", None, False)],
    ),
    (
        "row_count max added",
        checks(POSITIVE, {"row_count": {"min": 1, "max": 1000}}),
        [("check_added", None, True)],
    ),
    ("row_count removed", checks(POSITIVE), [("check_removed", None, False)]),
    ("between added", col("qty", between=[1, 50]), [("check_added", "qty", True)]),
    ("length added", col("code", length=2), [("check_added", "code", True)]),
    ("length max lowered", col("ref", length={"max": 9}), [("check_added", "ref", True)]),
    ("references added", col("ref", references="t.name"), [("check_added", "ref", True)]),
    ("unique added", col("ref", unique=True), [("check_added", "ref", True)]),
    ("pii hash added", col("ref", pii="hash"), [("setting_changed", "ref", True)]),
    ("pii keep added", col("ref", pii="keep"), [("setting_changed", "ref", False)]),
    (
        "a rule becomes a warning",
        col("code", pattern={"value": "^[A-Z]{2}$", "severity": "warn"}),
        [("check_loosened", "code", False)],
    ),
    (
        "a rule gets a max_failure_rate",
        col("code", pattern={"value": "^[A-Z]{2}$", "max_failure_rate": "1%"}),
        [("check_tightened", "code", True)],
    ),
    (
        "a freshness check added as a warning",
        checks(
            POSITIVE,
            ROW_COUNT,
            {"freshness": {"column": "at", "max_age": "1d", "severity": "warn"}},
        ),
        [("check_added", None, False)],
    ),
    (
        "a duplicate_rate check added",
        checks(POSITIVE, ROW_COUNT, {"duplicate_rate": {"max": "1%"}}),
        [("check_added", None, True)],
    ),
    (
        "an expression check becomes a warning",
        checks({**POSITIVE, "severity": "warn"}, ROW_COUNT),
        [("check_loosened", None, False)],
    ),
]


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_change_has_its_kind_and_breaking_flag(
    edit: Edit, expected: list[tuple[str, str | None, bool]]
) -> None:
    new = copy.deepcopy(BASE)
    edit(new)
    changes = diff_contracts({"t": spec(BASE)}, {"t": spec(new)})
    assert [(c.kind, c.column, c.breaking) for c in changes] == expected
    assert all(c.object == "t" and c.detail for c in changes)
    # the reverse change is found too, and at most one of the two widens or loosens
    back = diff_contracts({"t": spec(new)}, {"t": spec(BASE)})
    assert len(back) == len(changes)


def test_objects_added_and_removed_and_one_object_only() -> None:
    old = {"t": spec(BASE)}
    new = {"u": spec(BASE)}
    changes = diff_contracts(old, new)
    assert [(c.kind, c.object, c.breaking) for c in changes] == [
        ("object_removed", "t", True),
        ("object_added", "u", False),
    ]
    assert [c.object for c in diff_contracts(old, new, only="u")] == ["u"]
    assert diff_contracts(old, old) == []


def test_details_say_why() -> None:
    new = copy.deepcopy(BASE)
    col("amount", type="decimal(10,2)")(new)
    col("qty", min=2)(new)
    details = {c.column: c.detail for c in diff_contracts({"t": spec(BASE)}, {"t": spec(new)})}
    assert details["amount"] == (
        "decimal(12,2) → decimal(10,2): values with more than 8 integer digits fail"
    )
    assert details["qty"] == "min raised 1 → 2: more values fail"
