"""ODCS: `contract export` validates against the v3.1.0 JSON schema, every shared example
imports into objects the loader accepts (what cannot be mapped reported by ODCS path), and
export then import gives the demo's contracts back."""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from odcs_shared import examples, odcs_dir, schema_errors

from penstock.catalog import ObjectSpec, load_project
from penstock.catalog.columns import ExpressionCheck, RowCountCheck
from penstock.contract.odcs_export import export_odcs
from penstock.contract.odcs_import import ImportResult, import_odcs
from penstock.demo.expectations import DemoExpectations

from helpers import query

Cli = Callable[..., tuple[int, str, str]]

RICH = """\
name: rich
warehouse: "postgresql://loader:secret@db.example.com:6543/shop?sslmode=require"
sources:
  landing: {kind: files, path: ./landing}
objects:
  events:
    source: landing
    files: "events/*.jsonl"
    key: [tenant, event_id]
    order_by: at
    load: scd2
    target: event_log
    description: Events as they happen
    owner: "events team <events@example.com>"
    columns:
      tenant:   {type: text, required: true, pattern: "^t[0-9]+$"}
      event_id: {type: bigint, required: true, description: Unique per tenant}
      at:       {type: timestamptz, timezone: Europe/Oslo, min: "2020-01-01 00:00:00"}
      day:      {type: date, max: now, from: "Event Day"}
      kind:     {type: text, in: [click, view]}
      score:    {type: double, min: -1.5, max: 1.5}
      price:    {type: "decimal(10,3)"}
      ok:       {type: boolean, in: [true]}
      payload:  {type: json}
      level:    {type: integer, in: [1, 2, 3]}
    checks:
      - {name: scored, expression: "score IS NOT NULL OR kind = 'view'"}
      - {row_count: {min: 5, max: 500}}
"""


def rich_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "penstock.yml").write_text(RICH)
    return root


def test_the_schema_and_examples_are_where_the_tests_expect() -> None:
    assert {p.name for p in examples()} >= {"full-example.odcs.yaml"}
    # the validator is strict: an unknown key anywhere is an error
    assert schema_errors({"apiVersion": "v3.1.0"})  # kind, id, version, status missing
    bogus = yaml.safe_load((odcs_dir() / "examples" / "column-validity.odcs.yaml").read_text())
    assert schema_errors(bogus) == []
    bogus["schema"][0]["properties"][0]["penstock"] = 1
    assert schema_errors(bogus)


def test_export_of_the_demo_objects_validates(demo: tuple[Path, DemoExpectations]) -> None:
    project = load_project(demo[0])
    for spec in project.objects_in_order():
        contract = export_odcs(project, spec)
        assert schema_errors(contract) == [], spec.name
        (element,) = contract["schema"]
        assert [p["name"] for p in element["properties"]] == list(spec.columns)


def test_export_maps_types_keys_checks_and_the_server(tmp_path: Path) -> None:
    project = load_project(rich_project(tmp_path / "rich"))
    contract = export_odcs(project, project.objects["events"])
    assert schema_errors(contract) == []
    # a PostgreSQL warehouse is a server, without its user or password
    assert contract["servers"] == [
        {
            "server": "warehouse",
            "type": "postgres",
            "host": "db.example.com",
            "port": 6543,
            "database": "shop",
            "schema": "public",
        }
    ]
    assert "secret" not in json.dumps(contract) and "loader" not in json.dumps(contract)
    assert contract["team"] == {"name": "events team <events@example.com>"}
    assert contract["description"] == {"purpose": "Events as they happen"}
    (element,) = contract["schema"]
    assert element["physicalName"] == "event_log"
    props = {p["name"]: p for p in element["properties"]}
    assert (props["tenant"]["primaryKey"], props["tenant"]["primaryKeyPosition"]) == (True, 1)
    assert (props["event_id"]["primaryKeyPosition"], props["event_id"]["required"]) == (2, True)
    assert "unique" not in props["tenant"]  # a two-column key of an scd2 object
    assert props["tenant"]["logicalTypeOptions"] == {"pattern": "^t[0-9]+$"}
    assert props["at"]["logicalTypeOptions"] == {
        "timezone": True,
        "minimum": "2020-01-01 00:00:00",
        "defaultTimezone": "Europe/Oslo",
    }
    assert (props["price"]["logicalType"], props["price"]["physicalType"]) == (
        "number",
        "DECIMAL(10,3)",
    )
    assert props["event_id"]["logicalTypeOptions"] == {"format": "i64"}
    assert props["payload"]["logicalType"] == "object"
    assert props["day"]["quality"] == [
        {
            "name": "max:day",
            "type": "custom",
            "engine": "penstock",
            "implementation": {"max": "now"},
            "dimension": "accuracy",
            "description": "day is at most the time its batch was extracted",
        }
    ]
    (in_rule,) = props["kind"]["quality"]
    assert (in_rule["name"], in_rule["metric"], in_rule["arguments"], in_rule["mustBe"]) == (
        "in:kind",
        "invalidValues",
        {"validValues": ["click", "view"]},
        0,
    )
    expression, row_count = element["quality"]
    assert expression["name"] == "check:scored" and expression["type"] == "sql"
    assert expression["query"] == (
        "SELECT COUNT(*) FROM event_log WHERE NOT (score IS NOT NULL OR kind = 'view')"
    )
    assert row_count["metric"] == "rowCount" and row_count["mustBeBetween"] == [5, 500]


def write_imported(root: Path, result: ImportResult) -> Path:
    """A project including the imported objects, as `contract import` writes them."""
    from penstock.contract.yaml_out import object_file

    (root / "objects").mkdir(parents=True)
    (root / "landing").mkdir()
    (root / "penstock.yml").write_text(
        "name: imported\n"
        "sources:\n  landing: {kind: files, path: ./landing, settle: 0s}\n"
        "include: [objects/*.yml]\n"
    )
    for imported in result.objects:
        text = object_file(imported.name, imported.spec, ["imported"])
        (root / "objects" / f"{imported.name}.yml").write_text(text)
    return root


def read(name: str) -> Any:
    return yaml.safe_load((odcs_dir() / "examples" / name).read_text())


@pytest.mark.parametrize("example", examples(), ids=lambda p: p.name)
def test_every_example_imports_into_objects_the_loader_accepts(
    example: Path, tmp_path: Path
) -> None:
    data = yaml.safe_load(example.read_text())
    result = import_odcs(data)
    assert len(result.objects) == len(data.get("schema") or [])
    project = load_project(write_imported(tmp_path / "p", result))
    assert sorted(project.objects) == sorted(o.name for o in result.objects)
    # nothing is dropped silently: every top-level key penstock does not read is reported
    paths = {w.path for w in result.warnings}
    read_keys = {"apiVersion", "kind", "id", "version", "status", "name", "schema"}
    for key, value in data.items():
        if key in read_keys or key in ("team", "description") or not value:
            continue
        assert any(p == key or p.startswith((f"{key}.", f"{key}[")) for p in paths), key


def warnings_of(result: ImportResult) -> dict[str, str]:
    return {w.path: w.message for w in result.warnings}


def test_full_example_maps_keys_types_rules_and_reports_the_rest() -> None:
    result = import_odcs(read("full-example.odcs.yaml"))
    tbl, receivers = (o.spec for o in result.objects)
    assert tbl["target"] == "tbl_1" and tbl["key"] == ["rcvr_id"] and tbl["load"] == "merge"
    assert tbl["owner"] == "my-team"
    assert tbl["columns"]["transaction_reference_date"] == {
        "type": "date",
        "from": "txn_ref_dt",
        "description": "Reference date for transaction",
    }
    # nullValues must be 0 → required
    assert tbl["columns"]["rcvr_cntry_code"]["required"] is True
    assert tbl["checks"] == [{"row_count": {"min": 1000001}}]  # rowCount > 1000000
    assert receivers["key"] == ["id", "country_code"]
    assert receivers["columns"]["receiver_name"] == {
        "type": "text",
        "required": True,
        "description": "Name of the receiver",
    }
    found = warnings_of(result)
    assert found["servers[0]"].startswith("a postgres server is not imported")
    assert (
        found["slaProperties[0]"]
        == "SLA property latency is not mapped (declare sla: on the object)"
    )
    assert "team.members" in found and "roles" in found and "price" in found
    assert found["schema[0].properties[1].physicalType"] == (
        "varchar(18): the length is not checked (penstock text has none)"
    )
    assert found["schema[0].relationships"].startswith("not kept")
    # unique on one column of a two-column key: penstock's unique rule (no other key holds it)
    assert receivers["columns"]["id"]["unique"] is True
    assert "schema[1].properties[0].unique" not in found


def test_adventureworks_maps_physical_types() -> None:
    result = import_odcs(read("postgresql-adventureworks-contract.odcs.yaml"))
    assert len(result.objects) == 68
    objects = {o.name: o.spec for o in result.objects}
    department = objects["department"]["columns"]
    assert department["departmentid"]["type"] == "integer"  # serial
    assert department["modifieddate"]["type"] == "timestamp"  # logicalType date, physical wins
    assert department["name"]["type"] == "text"  # a domain type: logicalType object, reported
    employee = objects["employee"]["columns"]
    assert (employee["birthdate"]["type"], employee["rowguid"]["type"]) == ("date", "text")
    found = warnings_of(result)
    assert found["schema[0].properties[1].physicalType"] == (
        "physicalType 'Name' is not a type penstock knows: logicalType object: read as text"
    )
    numeric = [p for p, m in found.items() if m.startswith("numeric without a precision")]
    assert numeric  # read as double, and said so
    assert any(m.startswith("time: penstock has no time type") for m in found.values())


def test_completeness_and_validity_rules() -> None:
    complete = import_odcs(read("column-completeness.odcs.yaml"))
    (air,) = complete.objects
    assert air.spec["columns"] == {"UniqueID": {"type": "integer", "required": True}}
    assert air.spec["key"] == ["UniqueID"]
    valid = import_odcs(read("column-validity.odcs.yaml"))
    (air,) = valid.objects
    assert air.spec["columns"] == {"air_quality_status": {"type": "text"}}
    assert warnings_of(valid)["schema[0].properties[0].quality[0]"] == (
        "invalidValues mustBeLessOrEqualTo 5 percent: penstock checks each row, a tolerated "
        "share is not mapped"
    )
    sla = import_odcs(read("database-table-sla.odcs.yaml"))
    assert sla.objects == []
    assert len([w for w in sla.warnings if w.path.startswith("slaProperties[")]) == 8


def test_rules_penstock_cannot_enforce_are_reported() -> None:
    contract = {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "x",
        "version": "1",
        "status": "active",
        "schema": [
            {
                "name": "t",
                "properties": [
                    {
                        "name": "a",
                        "logicalType": "string",
                        "logicalTypeOptions": {"maxLength": 5, "format": "email"},
                        "quality": [
                            {"type": "text", "description": "looks right"},
                            {"type": "custom", "engine": "soda", "implementation": "x"},
                            {"metric": "nullValues", "mustBeLessThan": 10, "unit": "percent"},
                        ],
                    },
                    {"name": "b", "logicalType": "integer", "logicalTypeOptions": {"minimum": 3}},
                    {
                        "name": "c",
                        "logicalType": "string",
                        "logicalTypeOptions": {"pattern": "(?<=x)"},
                    },
                ],
                "quality": [
                    {"type": "sql", "query": "SELECT AVG(b) FROM t", "mustBeLessThan": 3},
                    {"metric": "rowCount", "mustNotBe": 0},
                ],
            }
        ],
    }
    result = import_odcs(contract)
    (t,) = result.objects
    assert t.spec["columns"]["b"] == {"type": "bigint", "min": 3}
    assert t.spec["checks"] == [{"name": "a_maxLength", "expression": 'length("a") <= 5'}]
    found = warnings_of(result)
    prefix = "schema[0].properties[0]"
    assert (
        found[f"{prefix}.logicalTypeOptions.format"] == "format: 'email' is not checked by penstock"
    )
    assert found[f"{prefix}.quality[0]"] == "a text rule describes quality in words: not checked"
    assert found[f"{prefix}.quality[1]"] == "a rule for engine 'soda': not mapped"
    assert found[f"{prefix}.quality[2]"].startswith("nullValues mustBeLessThan 10 percent")
    # a pattern RE2 refuses is left out, and said so
    assert "pattern" not in t.spec["columns"]["c"]
    assert found["schema[0].properties[2].logicalTypeOptions.pattern"].startswith(
        "not mapped: pattern: invalid regular expression"
    )
    assert found["schema[0].quality[0]"] == "a SQL rule penstock cannot run per row: not mapped"
    assert found["schema[0].quality[1]"] == "rowCount mustNotBe 0: not a bound on rows"


def canonical(spec: ObjectSpec) -> dict[str, Any]:
    """What a round trip keeps: columns (type, required, bounds, in, pattern, timezone, from),
    key, order_by, load and checks."""
    return {
        "columns": {
            name: (
                c.type,
                spec.is_required(name),
                c.min,
                c.max,
                c.in_,
                c.pattern,
                c.timezone,
                c.from_,
                c.description,
            )
            for name, c in spec.columns.items()
        },
        "key": spec.key,
        "order_by": spec.order_by,
        "load": spec.load,
        "table": spec.table_name,
        "checks": [
            (c.name, c.expression) if isinstance(c, ExpressionCheck) else c.row_count
            for c in spec.checks
            if isinstance(c, ExpressionCheck | RowCountCheck)
        ],
    }


def round_trip(project_dir: Path, tmp_path: Path) -> None:
    project = load_project(project_dir)
    for spec in project.objects_in_order():
        result = import_odcs(export_odcs(project, spec))
        assert [w for w in result.warnings if not w.path.startswith("servers")] == []
        (imported,) = result.objects
        root = write_imported(tmp_path / spec.name, result)
        again = load_project(root).objects[imported.name]
        assert canonical(again) == canonical(spec), spec.name


def test_export_then_import_gives_the_demo_contracts_back(
    demo: tuple[Path, DemoExpectations], tmp_path: Path
) -> None:
    round_trip(demo[0], tmp_path)


def test_export_then_import_keeps_every_kind_of_rule(tmp_path: Path) -> None:
    round_trip(rich_project(tmp_path / "rich"), tmp_path)


def test_the_commands_export_import_and_run_a_csv(tmp_path: Path, cli: Cli) -> None:
    """`contract export` writes a file that validates, `contract import` writes object files
    that a project includes and runs: a row breaking the imported contract is quarantined."""
    example = odcs_dir() / "examples" / "column-completeness.odcs.yaml"
    root = tmp_path / "p"
    root.mkdir()
    shutil.copy(example, root / "air.odcs.yaml")
    code, out, err = cli(
        "contract", "import", root / "air.odcs.yaml", "--output", root / "objects", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["objects"] == [
        {
            "object": "Air_Quality",
            "file": str(root / "objects" / "Air_Quality.yml"),
            "columns": 1,
            "key": ["UniqueID"],
            "checks": 0,
        }
    ]
    assert {"path": "schema[0].tags", "message": "not kept: penstock has no place for it"} in (
        report["warnings"]
    )
    written = (root / "objects" / "Air_Quality.yml").read_text()
    assert "#   schema[0].tags: not kept" in written  # the file says what was left out
    # a second import refuses to overwrite, unless forced
    code, _, err = cli("contract", "import", root / "air.odcs.yaml", "-o", root / "objects")
    assert code == 2 and "--force" in err
    (root / "penstock.yml").write_text(
        textwrap.dedent(
            """\
            name: air
            sources:
              landing: {kind: files, path: ./landing, settle: 0s}
            include: [objects/*.yml]
            """
        )
    )
    (root / "landing" / "Air_Quality").mkdir(parents=True)
    (root / "landing" / "Air_Quality" / "a.csv").write_text("UniqueID\n1\n2\n\nx\n")
    code, out, err = cli("run", "-p", root)
    assert code == 0, out + err
    assert query(root, "SELECT UniqueID FROM Air_Quality ORDER BY 1") == [(1,), (2,)]
    reasons = query(root, "SELECT _reasons FROM quarantine.Air_Quality ORDER BY _row_number")
    assert reasons == [(["required:UniqueID"],), (["type:UniqueID"],)]
    code, out, err = cli("contract", "export", "Air_Quality", "-p", root, "-o", root / "out.yaml")
    assert code == 0, err
    exported = yaml.safe_load((root / "out.yaml").read_text())
    assert schema_errors(exported) == []
    code, out, _ = cli("contract", "export", "Air_Quality", "-p", root)
    assert code == 0 and yaml.safe_load(out) == exported
    code, out, _ = cli("contract", "export", "Air_Quality", "-p", root, "--json")
    assert code == 0 and json.loads(out) == exported
    code, _, err = cli("contract", "export", "nope", "-p", root)
    assert code == 2 and "unknown object 'nope' (objects: Air_Quality)" in err


NEW_RULES = """
name: rules
privacy: {key: "${env:PENSTOCK_TEST_ODCS_PII_KEY}"}
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  t:
    source: landing
    files: "t/*.csv"
    key: [id]
    order_by: at
    sla: {freshness: 1d}
    columns:
      id:     {type: bigint, required: true}
      parent: {type: bigint, references: t.id}
      qty:    {type: integer, between: {value: [1, 50], severity: warn}}
      code:   {type: text, length: {min: 2, max: 3, max_failure_rate: 1%}, unique: true}
      email:  {type: text, pattern: {value: "@", severity: warn}, pii: hash}
      phone:  {type: text, pii: mask}
      at:     {type: timestamp, required: true}
    checks:
      - {name: small, expression: "qty < 40", severity: warn, max_failure_rate: 5%}
      - {freshness: {column: at, max_age: 1d, severity: warn}}
      - {duplicate_rate: {max: 2%}}
"""


def test_export_then_import_keeps_the_newer_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """between, length, references, unique, pii, rule options and the batch checks ride
    through ODCS as penstock rules and properties, and come back the same."""
    monkeypatch.setenv("PENSTOCK_TEST_ODCS_PII_KEY", "a-key-long-enough-for-the-test")
    root = tmp_path / "rules"
    root.mkdir()
    (root / "penstock.yml").write_text(NEW_RULES)
    project = load_project(root)
    spec = project.objects["t"]
    document = export_odcs(project, spec)
    assert schema_errors(document) == []
    result = import_odcs(document)
    assert [w for w in result.warnings if not w.path.startswith("servers")] == []
    (imported,) = result.objects
    back = ObjectSpec.model_validate({**imported.spec, "name": "t"})
    assert {n: c.model_dump() for n, c in back.columns.items()} == {
        n: c.model_dump() for n, c in spec.columns.items()
    }
    assert [c.model_dump() for c in back.checks] == [c.model_dump() for c in spec.checks]


def test_a_reconcile_check_exports_and_is_reported_where_it_cannot_import(tmp_path: Path) -> None:
    """`reconcile` (a database object's check) exports as a penstock table rule in its
    dimension, the document validates, and an import, which makes a files object, reports
    it instead of dropping it silently."""
    root = tmp_path / "db"
    root.mkdir()
    (root / "penstock.yml").write_text(
        textwrap.dedent(
            """
            name: reconciled
            sources:
              shop: {kind: postgres, url: "postgresql://reader@127.0.0.1:5432/shop"}
            objects:
              orders:
                source: shop
                table: orders
                key: [id]
                columns:
                  id: {type: bigint, required: true}
                checks:
                  - {reconcile: {severity: warn}, dimension: consistency}
            """
        )
    )
    project = load_project(root)
    document = export_odcs(project, project.objects["orders"])
    assert schema_errors(document) == []
    rules = [r for s in document["schema"] for r in s.get("quality", [])]
    (rule,) = [r for r in rules if r["name"] == "check:reconcile"]
    assert rule["implementation"] == {"reconcile": {"severity": "warn"}}
    assert rule["dimension"] == "consistency"
    result = import_odcs(document)
    assert any("reconcile" in w.message for w in result.warnings), result.warnings
