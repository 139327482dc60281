import os
from collections.abc import Callable
from pathlib import Path

import pytest

from penstock.catalog import (
    ColumnSpec,
    CsvOptions,
    ExpressionCheck,
    FilesSource,
    RowCountBounds,
    RowCountCheck,
    load_project,
)
from penstock.errors import ProjectError, ProjectErrors
from penstock.secrets import redact

LoadErrors = Callable[[Path], list[str]]
WriteFiles = Callable[..., Path]

FULL = """
name: shop
warehouse: duckdb:///wh/shop.duckdb
include: [objects/*.yml]
retention_days: 30
sources:
  landing: {kind: files, path: ./landing, owner: data-team}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    csv: {delimiter: ";", header: false, encoding: latin-1}
    key: [order_id]
    order_by: updated_at
    group: raw
    on_invalid: fail
    target: orders_raw
    description: All orders
    owner: shop-team
    columns:
      order_id:   {type: bigint, required: true}
      order_ts:   {type: timestamp, required: true, max: now}
      status:     {type: text, in: [placed, shipped, delivered, cancelled, returned]}
      amount:     {type: "decimal(12, 2)", min: 0}
      country:    {type: text, pattern: "^[A-Z]{2}$"}
      quantity:   {type: integer, min: 1, max: 1000}
      updated_at: {type: timestamp, required: true}
      birth_date: {type: date, min: 1900-01-01, max: now}
    checks:
      - {name: updated_after_order, expression: "updated_at >= order_ts"}
      - {row_count: {min: 1}}
"""

CUSTOMERS = """
sources:
  crm: {kind: files, path: /srv/crm}
objects:
  customers:
    source: crm
    files: "customers/*.jsonl"
    columns:
      customer_id: {type: integer}
"""

EVENTS = """
objects:
  events:
    source: landing
    files: "events/*.parquet"
    key: event_id
    columns:
      event_id: {type: text}
"""


@pytest.fixture
def full_project(write_files: WriteFiles, tmp_path: Path) -> Path:
    return (
        write_files(
            {
                "shop/penstock.yml": FULL,
                "shop/objects/customers.yml": CUSTOMERS,
                "shop/objects/events.yml": EVENTS,
            }
        )
        / "shop"
    )


def test_full_project(full_project: Path) -> None:
    project = load_project(full_project)
    assert project.name == "shop"
    assert project.root == full_project.resolve()
    assert project.retention_days == 30
    assert project.lake == "./lake"
    assert project.lake_path == project.root / "lake"
    assert project.warehouse_path == project.root / "wh" / "shop.duckdb"
    assert project.metadata_url == f"sqlite:///{project.root}/.penstock/metadata.db"
    assert project.sources == {
        "landing": FilesSource(kind="files", path="./landing", owner="data-team"),
        "crm": FilesSource(kind="files", path="/srv/crm"),
    }
    assert [o.name for o in project.objects_in_order()] == ["orders", "customers", "events"]

    orders = project.objects["orders"]
    assert orders.format == "csv"
    assert orders.csv == CsvOptions(delimiter=";", header=False, encoding="latin-1")
    assert orders.key == ("order_id",)
    assert orders.load == "merge"
    assert (orders.group, orders.on_invalid, orders.table_name) == ("raw", "fail", "orders_raw")
    assert (orders.description, orders.owner) == ("All orders", "shop-team")
    assert list(orders.columns) == [
        "order_id",
        "order_ts",
        "status",
        "amount",
        "country",
        "quantity",
        "updated_at",
        "birth_date",
    ]
    assert orders.columns["amount"] == ColumnSpec(type="decimal(12,2)", min=0)
    assert orders.columns["amount"].column_type.duckdb_type == "DECIMAL(12,2)"
    assert orders.columns["birth_date"].min == "1900-01-01"
    assert orders.columns["birth_date"].max == "now"
    assert orders.columns["status"].in_ == [
        "placed",
        "shipped",
        "delivered",
        "cancelled",
        "returned",
    ]
    assert orders.columns["quantity"].min == 1
    assert orders.is_required("order_id") and orders.is_required("updated_at")
    assert not orders.is_required("status")
    assert orders.checks == [
        ExpressionCheck(name="updated_after_order", expression="updated_at >= order_ts"),
        RowCountCheck(row_count=RowCountBounds(min=1)),
    ]

    customers = project.objects["customers"]
    assert (customers.format, customers.csv, customers.load) == ("jsonl", None, "append")
    assert customers.group == "default"
    assert customers.on_invalid == "quarantine"
    events = project.objects["events"]
    assert (events.format, events.key, events.load) == ("parquet", ("event_id",), "merge")

    assert project.origins["objects.orders"] == ("penstock.yml", 8)
    assert project.origins["objects.orders.columns.amount"] == ("penstock.yml", 23)
    assert project.origins["objects.orders.checks[1]"] == ("penstock.yml", 30)
    assert project.origins["sources.landing"] == ("penstock.yml", 6)
    assert project.origins["sources.crm"] == ("objects/customers.yml", 2)
    assert project.origins["objects.customers"] == ("objects/customers.yml", 4)
    assert project.origins["objects.events.columns.event_id"] == ("objects/events.yml", 7)
    assert project.origin("objects.nope") is None

    assert [o.name for o in project.select("group:raw,events")] == ["orders", "events"]


def test_load_from_the_file_itself(full_project: Path) -> None:
    assert load_project(full_project / "penstock.yml").name == "shop"


def test_load_from_current_directory(full_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(full_project)
    assert load_project().root == full_project.resolve()


def test_defaults(write_files: WriteFiles) -> None:
    root = write_files({"penstock.yml": "name: tiny\n"})
    project = load_project(root)
    assert project.warehouse == "duckdb:///warehouse.duckdb"
    assert project.lake == "./lake"
    assert project.metadata == "sqlite:///.penstock/metadata.db"
    assert project.retention_days == 90
    assert (project.sources, project.objects, project.include) == ({}, {}, [])


def test_hash_is_stable_across_directories(write_files: WriteFiles, tmp_path: Path) -> None:
    files = {"penstock.yml": FULL, "objects/customers.yml": CUSTOMERS}
    first = load_project(write_files(files, tmp_path / "a"))
    second = load_project(write_files(files, tmp_path / "b"))
    assert first.root != second.root
    assert first.project_hash == second.project_hash
    changed = FULL.replace("quantity:   {type: integer,", "quantity:   {type: bigint,")
    third = load_project(write_files({**files, "penstock.yml": changed}, tmp_path / "c"))
    assert third.project_hash != first.project_hash
    included = CUSTOMERS.replace("type: integer", "type: text")
    fourth = load_project(write_files({**files, "objects/customers.yml": included}, tmp_path / "d"))
    assert fourth.project_hash != first.project_hash


def test_include_order_and_no_match(write_files: WriteFiles) -> None:
    spec = "    source: landing\n    files: x/*.csv\n    columns: {a: {type: text}}\n"
    root = write_files(
        {
            "penstock.yml": "name: p\ninclude: [more/*.yml, none/*.yml, other.yml]\n"
            "sources:\n  landing: {kind: files, path: .}\n"
            f"objects:\n  zeta:\n{spec}",
            "more/b.yml": f"objects:\n  bravo:\n{spec}",
            "more/a.yml": f"objects:\n  alpha:\n{spec}",
            "other.yml": f"objects:\n  omega:\n{spec}",
            # no document: declares nothing (`discover > more/c.yml` empties it first)
            "more/c.yml": "",
            "more/d.yml": "# objects to come\n",
        }
    )
    names = [o.name for o in load_project(root).objects_in_order()]
    assert names == ["zeta", "alpha", "bravo", "omega"]


def test_no_project_file(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as info:
        load_project(tmp_path)
    assert not isinstance(info.value, ProjectErrors)
    assert info.value.message == f"no penstock.yml in {tmp_path.resolve()}"


ORDERS = """
name: shop
sources:
  landing: {kind: files, path: ./landing}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [order_id]
    columns:
      order_id: {type: bigint}
      amount: {type: "decimal(12,2)", min: 0}
"""


def orders_with(old: str, new: str) -> str:
    assert old in ORDERS
    return ORDERS.replace(old, new)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "    columns:",
            "    colums: {}\n    columns:",
            "penstock.yml:9: objects.orders.colums: unknown key (did you mean 'columns'?)",
        ),
        (
            "min: 0",
            "min: abc",
            "penstock.yml:11: objects.orders.columns.amount.min: expected a number",
        ),
        (
            "    source: landing",
            "    source: landng",
            "penstock.yml:6: objects.orders.source: unknown source 'landng' (declared: landing)",
        ),
        (
            "amount: {",
            "country: {type: text, pattern: '(?=x)'}\n      amount: {",
            "penstock.yml:11: objects.orders.columns.country.pattern: "
            "invalid regular expression: invalid perl operator: (?=",
        ),
        (
            "amount: {",
            "country: {type: text, pattern: '[a-'}\n      amount: {",
            "penstock.yml:11: objects.orders.columns.country.pattern: "
            "invalid regular expression: missing ]: [a-",
        ),
        (
            "key: [order_id]",
            "key: [order_idd]",
            "penstock.yml:8: objects.orders.key: key column 'order_idd' is not a declared column",
        ),
        (
            "key: [order_id]",
            "key: order_id\n    order_by: updated",
            "penstock.yml:9: objects.orders.order_by: "
            "order_by column 'updated' is not a declared column",
        ),
        (
            "type: bigint",
            "type: long",
            "penstock.yml:10: objects.orders.columns.order_id.type: unknown type 'long' "
            "(expected one of: text, boolean, integer, bigint, double, decimal(p,s), date, "
            "timestamp, timestamptz, json)",
        ),
        (
            "key: [order_id]",
            "load: merge",
            "penstock.yml:8: objects.orders.load: merge needs a key",
        ),
        (
            "key: [order_id]",
            "key: [order_id]\n    load: upsert",
            "penstock.yml:9: objects.orders.load: expected one of: append, merge, scd2, replace",
        ),
        (
            "    source: landing\n",
            "",
            "penstock.yml:5: objects.orders: missing required key 'source'",
        ),
        (
            "{kind: files, path: ./landing}",
            "{kind: kafka, path: ./landing}",
            "penstock.yml:3: sources.landing: unknown source kind 'kafka' "
            "(available: files, postgres, mysql, rest)",
        ),
        (
            "{kind: files, path: ./landing}",
            "{kind: files, path: ./landing, pat: x}",
            "penstock.yml:3: sources.landing.pat: unknown key (did you mean 'path'?)",
        ),
        (
            "name: shop",
            "name: shop\nretention_days: 0",
            "penstock.yml:2: retention_days: must be at least 1",
        ),
        (
            "name: shop",
            "name: shop\nretention_days: ninety",
            "penstock.yml:2: retention_days: expected an integer",
        ),
        (
            "    files:",
            "    format: csv\n    csv: {header: maybe}\n    files:",
            "penstock.yml:8: objects.orders.csv.header: expected true or false",
        ),
        (
            "    files:",
            "    format: parquet\n    csv: {header: true}\n    files:",
            "penstock.yml:8: objects.orders.csv: csv options only apply when format is csv, "
            "not parquet",
        ),
        (
            '    files: "orders/*.csv"',
            '    files: "orders/*.txt"',
            "penstock.yml:5: objects.orders.format: cannot infer the format from 'orders/*.txt' "
            "(set format: csv, jsonl, json or parquet)",
        ),
        (
            '    files: "orders/*.csv"\n',
            "",
            "penstock.yml:5: objects.orders: missing required key 'files' "
            "(source 'landing' is files)",
        ),
        (
            "    key:",
            "    name: other\n    key:",
            "penstock.yml:8: objects.orders.name: unknown key "
            "(an object's name is its key under objects:)",
        ),
        (
            "name: shop",
            "name: shop\nroot: /elsewhere",
            "penstock.yml:2: root: unknown key",
        ),
        (
            "name: shop",
            "name: shop\nmetdata: x",
            "penstock.yml:2: metdata: unknown key (did you mean 'metadata'?)",
        ),
        (
            "      amount:",
            "      _loaded_at: {type: timestamp}\n      amount:",
            "penstock.yml:11: objects.orders.columns._loaded_at: column name '_loaded_at' "
            "starts with _, which is reserved for system columns",
        ),
        (
            "    key: [order_id]",
            "    key: [order_id]\n    checks:\n      - {name: a, expression: x, expresion: y}",
            "penstock.yml:10: objects.orders.checks[0].expresion: unknown key "
            "(did you mean 'expression'?)",
        ),
        (
            "    key: [order_id]",
            "    key: [order_id]\n    checks:\n      - {nam: a}",
            "penstock.yml:10: objects.orders.checks[0]: a check is one of "
            "{name: ..., expression: ...}, {row_count: {min: ..., max: ...}}, "
            "{freshness: {column: ..., max_age: ...}}, {duplicate_rate: {max: ...}} or "
            "{reconcile: {severity: ...}}",
        ),
        (
            "    key: [order_id]",
            "    key: [order_id]\n    checks:\n      - {row_count: {min: 2, max: 1}}",
            "penstock.yml:10: objects.orders.checks[0].row_count: min (2) is greater than max (1)",
        ),
        (
            "    key: [order_id]",
            "    key: [order_id]\n    checks:\n      - {name: a, expression: order_id > 0}\n"
            "      - {name: a, expression: amount > 0}",
            "penstock.yml:11: objects.orders.checks[1].name: duplicate check name 'a'",
        ),
        (
            'amount: {type: "decimal(12,2)", min: 0}',
            'amount: {type: "decimal(12,2)", in: [1, x]}',
            "penstock.yml:11: objects.orders.columns.amount.in: expected numbers, got 'x'",
        ),
        (
            "objects:",
            "objects:\n  bad-name:\n    source: landing\n    files: a.csv\n"
            "    columns: {a: {type: text}}",
            "penstock.yml:5: objects.bad-name: object name 'bad-name' must start with a letter "
            "or _ and hold only letters, digits and _",
        ),
        (
            "sources:\n  landing: {kind: files, path: ./landing}",
            "sources:\n  landing: {path: ./landing}",
            "penstock.yml:3: sources.landing: missing required key 'kind'",
        ),
        (
            "  landing: {kind: files, path: ./landing}",
            "  landing: ./landing",
            "penstock.yml:3: sources.landing: expected a mapping",
        ),
    ],
)
def test_single_errors(
    old: str, new: str, expected: str, write_files: WriteFiles, load_errors: LoadErrors
) -> None:
    root = write_files({"penstock.yml": orders_with(old, new)})
    assert load_errors(root) == [expected]


def test_several_errors_are_all_reported(write_files: WriteFiles, load_errors: LoadErrors) -> None:
    root = write_files(
        {
            "penstock.yml": """
                name: shop
                retention_days: 0
                sources:
                  landing: {kind: files, path: ./landing}
                objects:
                  orders:
                    source: landing
                    files: "orders/*.csv"
                    colums: {}
                    load: upsert
                    columns:
                      amount: {type: "decimal(12,2)", min: abc}
                      country: {type: text, pattern: "[a-"}
            """
        }
    )
    errors = load_errors(root)
    assert errors == [
        "penstock.yml:2: retention_days: must be at least 1",
        "penstock.yml:9: objects.orders.colums: unknown key (did you mean 'columns'?)",
        "penstock.yml:10: objects.orders.load: expected one of: append, merge, scd2, replace",
        "penstock.yml:12: objects.orders.columns.amount.min: expected a number",
        "penstock.yml:13: objects.orders.columns.country.pattern: "
        "invalid regular expression: missing ]: [a-",
    ]
    with pytest.raises(ProjectErrors) as info:
        load_project(root)
    assert str(info.value) == "penstock.yml:2: retention_days: must be at least 1 (and 4 more)"
    assert info.value.message == "\n".join(errors)
    assert info.value.exit_code == 2


def test_invalid_yaml(write_files: WriteFiles, load_errors: LoadErrors) -> None:
    root = write_files({"penstock.yml": "name: shop\nobjects:\n  orders: [a\n  b: 1\n"})
    assert load_errors(root) == [
        "penstock.yml:4: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence at line 3)"
    ]


def test_duplicate_key(write_files: WriteFiles, load_errors: LoadErrors) -> None:
    root = write_files({"penstock.yml": orders_with("    key:", "    source: other\n    key:")})
    assert load_errors(root) == ["penstock.yml:8: objects.orders.source: duplicate key 'source'"]


def test_errors_in_included_files(write_files: WriteFiles, load_errors: LoadErrors) -> None:
    root = write_files(
        {
            "penstock.yml": orders_with("name: shop", "name: shop\ninclude: objects/*.yml"),
            "objects/customers.yml": """
                objects:
                  customers:
                    source: landing
                    files: c/*.csv
                    columns:
                      id: {type: integer, max: x}
            """,
            "objects/dup.yml": """
                name: nope
                sources:
                  landing: {kind: files, path: .}
                objects:
                  orders:
                    source: landing
            """,
            "objects/broken.yml": "objects: [",
        }
    )
    assert load_errors(root) == [
        "objects/broken.yml:1: invalid YAML: expected the node content, but found "
        "'<stream end>' (while parsing a flow node at line 1)",
        "objects/customers.yml:6: objects.customers.columns.id.max: expected a number",
        "objects/dup.yml:1: name: unknown key (included files hold only sources and objects)",
        "objects/dup.yml:3: sources.landing: source 'landing' is already defined at penstock.yml:4",
        "objects/dup.yml:5: objects.orders: object 'orders' is already defined at penstock.yml:6",
    ]


def test_env_and_file_references(write_files: WriteFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_LANDING", "/mnt/landing-zone-7")
    root = write_files(
        {
            "penstock.yml": orders_with(
                "name: shop", "name: shop\nmetadata: ${file:secrets/meta_url.txt}"
            ).replace("./landing", "'${env:SHOP_LANDING}'"),
            "secrets/meta_url.txt": "postgresql://meta:hunter2-pw@db/meta\n",
        }
    )
    project = load_project(root)
    assert project.sources["landing"].path == "/mnt/landing-zone-7"
    assert project.metadata == "postgresql://meta:hunter2-pw@db/meta"
    assert project.metadata_url == "postgresql://meta:hunter2-pw@db/meta"
    assert redact(f"cannot connect to {project.metadata}") == "cannot connect to ***"


def test_missing_env_var(
    write_files: WriteFiles, load_errors: LoadErrors, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOP_DB_URL", raising=False)
    root = write_files({"penstock.yml": "name: shop\nmetadata: ${env:SHOP_DB_URL}\n"})
    assert load_errors(root) == [
        "penstock.yml:2: metadata: environment variable SHOP_DB_URL is not set"
    ]


def test_missing_reference_file(write_files: WriteFiles, load_errors: LoadErrors) -> None:
    root = write_files({"penstock.yml": "name: shop\nmetadata: ${file:nope.txt}\n"})
    assert load_errors(root) == [
        "penstock.yml:2: metadata: cannot read file 'nope.txt': No such file or directory"
    ]


def test_secret_in_error_is_redacted(
    write_files: WriteFiles, load_errors: LoadErrors, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAREHOUSE_PW", "pa55word")
    root = write_files({"penstock.yml": "name: shop\nwarehouse: warehouse-${env:WAREHOUSE_PW}\n"})
    assert load_errors(root) == [
        "penstock.yml:2: warehouse: expected a URL such as duckdb:///warehouse.duckdb"
    ]
    assert redact("warehouse-pa55word") == "warehouse-***"


def test_empty_and_non_mapping_project(write_files: WriteFiles, load_errors: LoadErrors) -> None:
    assert load_errors(write_files({"penstock.yml": ""})) == ["penstock.yml: the file is empty"]
    assert load_errors(write_files({"penstock.yml": "- a\n"})) == [
        "penstock.yml:1: the top level must be a mapping of keys, not a list"
    ]


def test_missing_name(write_files: WriteFiles, load_errors: LoadErrors) -> None:
    assert load_errors(write_files({"penstock.yml": "lake: ./l\n"})) == [
        "penstock.yml: missing required key 'name'"
    ]


def test_absolute_include_is_refused(write_files: WriteFiles, load_errors: LoadErrors) -> None:
    root = write_files({"penstock.yml": f"name: p\ninclude:\n  - {os.sep}etc/*.yml\n"})
    assert load_errors(root) == [
        "penstock.yml:3: include[0]: include patterns must be relative to the project directory"
    ]


def test_included_section_must_be_a_mapping(
    write_files: WriteFiles, load_errors: LoadErrors
) -> None:
    root = write_files(
        {"penstock.yml": "name: p\ninclude: [x.yml]\n", "x.yml": "objects: [a]\nsource: {}\n"}
    )
    assert load_errors(root) == [
        "x.yml:1: objects: expected a mapping",
        "x.yml:2: source: unknown key (did you mean 'sources'?)",
    ]
