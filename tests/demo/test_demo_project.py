"""The project files `penstock init [--demo]` writes, refusals, and the expectations API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import penstock.demo as demo_pkg
from penstock.demo import (
    EXPECTED_PATH,
    DemoExpectations,
    FileExpectation,
    create_demo_project,
    create_empty_project,
)
from penstock.errors import UsageError

ORDER_COLUMNS = {
    "order_id": {"type": "bigint", "required": True},
    "customer_id": {"type": "bigint", "required": True},
    "order_ts": {"type": "timestamp", "required": True, "max": "now"},
    "status": {"type": "text", "in": ["placed", "shipped", "delivered", "cancelled", "returned"]},
    "amount": {"type": "decimal(12,2)", "min": 0},
    "country": {"type": "text", "pattern": "^[A-Z]{2}$"},
    "email": {"type": "text", "pattern": "^[^@ ]+@[^@ ]+[.][^@ ]+$"},
    "quantity": {"type": "integer", "min": 1, "max": 1000},
    "updated_at": {"type": "timestamp", "required": True},
}


def test_public_api() -> None:
    assert set(demo_pkg.__all__) == {
        "EXPECTED_PATH",
        "DemoExpectations",
        "FileExpectation",
        "create_demo_project",
        "create_empty_project",
        "read_expectations",
        "write_orders_csv",
    }


def test_demo_project_files(demo: tuple[Path, DemoExpectations]) -> None:
    directory, _ = demo
    project = yaml.safe_load((directory / "penstock.yml").read_text(encoding="utf-8"))
    assert project["name"] == "shop_demo"
    assert project["warehouse"] == "duckdb:///warehouse.duckdb"
    assert project["lake"] == "./lake"
    assert project["metadata"] == "sqlite:///.penstock/metadata.db"
    assert project["include"] == ["objects/*.yml"]
    assert project["sources"] == {
        "landing": {"kind": "files", "path": "./landing", "owner": "demo <demo@example.com>"}
    }
    orders = project["objects"]["orders"]
    assert list(orders["columns"]) == list(ORDER_COLUMNS)
    assert orders["columns"] == ORDER_COLUMNS
    assert orders["checks"] == [
        {"name": "updated_after_order", "expression": "updated_at >= order_ts"},
        {"row_count": {"min": 1}},
    ]
    assert {k: orders[k] for k in ("source", "files", "format", "key", "order_by", "load")} == {
        "source": "landing",
        "files": "orders/*.csv",
        "format": "csv",
        "key": ["order_id"],
        "order_by": "updated_at",
        "load": "merge",
    }
    included = yaml.safe_load((directory / "objects/customers.yml").read_text(encoding="utf-8"))
    customers = included["objects"]["customers"]
    assert (customers["format"], customers["load"], customers["key"]) == (
        "jsonl",
        "scd2",
        ["customer_id"],
    )
    assert list(customers["columns"]) == [
        "customer_id",
        "name",
        "email",
        "country",
        "segment",
        "signup_date",
        "updated_at",
    ]
    assert customers["columns"]["signup_date"] == {"type": "date", "max": "now"}
    assert customers["columns"]["segment"] == {"type": "text", "in": ["consumer", "business"]}
    header = (directory / "landing/orders/drop_001.csv").read_text(encoding="utf-8").split("\n")[0]
    assert header.split(",") == list(ORDER_COLUMNS)
    assert json.loads((directory / EXPECTED_PATH).read_text(encoding="utf-8"))["seed"] == 7


def test_demo_refuses_existing_project(tmp_path: Path) -> None:
    (tmp_path / "penstock.yml").write_text("name: mine\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"penstock\.yml already exists"):
        create_demo_project(tmp_path)
    with pytest.raises(UsageError, match=r"penstock\.yml already exists"):
        create_empty_project(tmp_path, "x")
    assert (tmp_path / "penstock.yml").read_text(encoding="utf-8") == "name: mine\n"
    assert not (tmp_path / "landing").exists()


def test_demo_refuses_foreign_landing_files(tmp_path: Path) -> None:
    (tmp_path / "landing/orders").mkdir(parents=True)
    (tmp_path / "landing/orders/drop_009.csv").write_text("x\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"drop_009\.csv is not part of the demo"):
        create_demo_project(tmp_path)
    assert not (tmp_path / "penstock.yml").exists()


@pytest.mark.parametrize(
    "sizes",
    [{"order_rows": 10}, {"order_drops": 0}, {"customer_rows": 5}, {"customer_drops": 0}],
)
def test_demo_refuses_bad_sizes(tmp_path: Path, sizes: dict[str, int]) -> None:
    with pytest.raises(UsageError):
        create_demo_project(tmp_path / "p", **sizes)
    assert not (tmp_path / "p").exists()


def test_demo_is_repeatable_after_an_interrupted_run(tmp_path: Path) -> None:
    first = create_demo_project(tmp_path / "a", order_rows=300, customer_rows=200)
    (tmp_path / "a/penstock.yml").unlink()  # as if killed before the last write
    again = create_demo_project(tmp_path / "a", order_rows=300, customer_rows=200)
    assert again == first


def test_small_and_other_shaped_demo(tmp_path: Path) -> None:
    expected = create_demo_project(
        tmp_path, seed=11, order_rows=400, order_drops=4, customer_rows=300, customer_drops=3
    )
    assert len([p for p in expected.files if p.startswith("landing/orders/")]) == 4
    assert len([p for p in expected.files if p.startswith("landing/customers/")]) == 3
    assert expected.late_order_id is not None
    assert set(expected.late_order_expected) == {"status", "amount"}
    for fe in expected.files.values():
        assert fe.loaded == fe.rows_in - len(fe.quarantined) - fe.duplicates
    changed = expected.changed_customer_ids
    assert len(set(changed)) == len(changed)
    assert not set(changed) & set(expected.unchanged_repeat_customer_ids)
    # both rows of each in-file pair are versions: the older one adds to the history
    pairs = len(expected.customer_duplicate_winners)
    assert pairs > 0
    assert expected.customers_versions == expected.customers_current + len(changed) + pairs


def test_single_drop_has_no_late_update(tmp_path: Path) -> None:
    expected = create_demo_project(tmp_path, order_rows=200, order_drops=1, customer_drops=1)
    assert expected.late_order_id is None and expected.late_order_expected == {}
    assert expected.changed_customer_ids == expected.unchanged_repeat_customer_ids == []


def test_empty_project(tmp_path: Path) -> None:
    target = tmp_path / "new"
    create_empty_project(target, "my shop: ☃")
    project = yaml.safe_load((target / "penstock.yml").read_text(encoding="utf-8"))
    assert project["name"] == "my shop: ☃"
    assert project["warehouse"] == "duckdb:///warehouse.duckdb"
    assert project["lake"] == "./lake"
    assert project["metadata"] == "sqlite:///.penstock/metadata.db"
    assert project["sources"] == {"landing": {"kind": "files", "path": "./landing"}}
    events = project["objects"]["events"]
    assert events["source"] == "landing" and events["files"] == "events/*.csv"
    assert len(events["columns"]) == 2
    assert (target / "landing/events/.gitkeep").is_file()
    with pytest.raises(UsageError):
        create_empty_project(tmp_path / "other", "  ")


def test_expectations_round_trip_through_json() -> None:
    fe = FileExpectation.build("orders", 10, {7: ["malformed"], 2: ["type:amount"]}, 1)
    assert fe.loaded == 7 and list(fe.quarantined) == [2, 7]
    assert FileExpectation.from_dict(json.loads(json.dumps(fe.to_dict()))) == fe
    with pytest.raises(ValueError, match="loaded"):
        FileExpectation("orders", 10, {}, 0, 9)
    expected = DemoExpectations(
        seed=1,
        files={"landing/orders/drop_001.csv": fe},
        orders_rows=5,
        late_order_id=3,
        late_order_expected={"status": "shipped", "amount": "1.50"},
        duplicate_winners={4: "2024-01-01 00:00:00"},
        customers_current=2,
        customers_versions=3,
        changed_customer_ids=[1],
        unchanged_repeat_customer_ids=[2],
        reason_counts=DemoExpectations.count_reasons({"x": fe}),
    )
    assert expected.reason_counts == {"orders": {"malformed": 1, "type:amount": 1}}
    assert DemoExpectations.from_dict(json.loads(expected.to_json())) == expected
