"""Write an object's contract as an Open Data Contract Standard (ODCS) v3.1.0 document.

What maps natively: columns become schema properties (logicalType, physicalType as the
DuckDB type, required, primaryKey with its position from `key`, unique for a one-column key
of a `merge` object, min/max/pattern as logicalTypeOptions), the object's description and
owner (as the team), and the warehouse as a server when its URL can be said in ODCS (DuckDB
file, PostgreSQL; never credentials). Checks become quality rules named with penstock's
reason names: `in` is the library metric invalidValues, `row_count` the metric rowCount, an
expression check a `type: sql` rule counting the rows where it is false, a bound of `now` a
`type: custom` rule of engine `penstock`. What only penstock knows (load mode, order_by,
`from:`) rides in customProperties named `penstock...`, so an import gives it back.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from penstock.catalog.batch_checks import DuplicateRateCheck, FreshnessCheck, ReconcileCheck
from penstock.catalog.columns import ColumnSpec, ExpressionCheck
from penstock.catalog.models import ObjectSpec, Project
from penstock.contract.odcs_types import logical_type, type_options

API_VERSION = "v3.1.0"
ENGINE = "penstock"


def export_odcs(project: Project, spec: ObjectSpec) -> dict[str, Any]:
    """The ODCS contract of `spec`, as plain data ready for YAML."""
    contract: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "DataContract",
        "id": f"{project.name}.{spec.name}",
        "name": spec.name,
        "version": "1.0.0",
        "status": "active",
    }
    if spec.description:
        contract["description"] = {"purpose": spec.description}
    source = project.sources.get(spec.source)
    owner = spec.owner or (source.owner if source is not None else None)
    if owner:
        contract["team"] = {"name": owner}
    server = warehouse_server(project.warehouse)
    if server is not None:
        contract["servers"] = [server]
    contract["schema"] = [_schema_object(spec)]
    contract["customProperties"] = [
        {"property": "penstockProject", "value": project.name},
        {"property": "penstockCatalogVersion", "value": project.project_hash[:16]},
    ]
    return contract


def warehouse_server(url: str) -> dict[str, Any] | None:
    """The warehouse as an ODCS server (no user, no password), or None when ODCS cannot say
    where it is (an in-memory DuckDB)."""
    if url.startswith("duckdb:///"):
        database = url.removeprefix("duckdb:///").split("?", 1)[0]
        if not database or database.startswith(":memory:"):
            return None
        return {"server": "warehouse", "type": "duckdb", "database": database, "schema": "main"}
    parts = urlsplit(url)
    if parts.scheme.split("+")[0] in ("postgresql", "postgres") and parts.hostname:
        database = parts.path.lstrip("/")
        if not database:
            return None
        return {
            "server": "warehouse",
            "type": "postgres",
            "host": parts.hostname,
            "port": parts.port or 5432,
            "database": database,
            "schema": "public",
        }
    return None


def _schema_object(spec: ObjectSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": spec.name,
        "physicalName": spec.table_name,
        "physicalType": "table",
        "logicalType": "object",
    }
    if spec.description:
        out["description"] = spec.description
    out["properties"] = [_property(spec, name, column) for name, column in spec.columns.items()]
    quality = [_table_rule(spec, check) for check in spec.checks]
    if quality:
        out["quality"] = quality
    custom = [{"property": "penstockLoad", "value": spec.load}]
    if spec.order_by is not None:
        custom.append({"property": "penstockOrderBy", "value": spec.order_by})
    out["customProperties"] = custom
    return out


def _property(spec: ObjectSpec, name: str, column: ColumnSpec) -> dict[str, Any]:
    kind = column.column_type
    out: dict[str, Any] = {
        "name": name,
        "logicalType": logical_type(kind),
        "physicalType": kind.duckdb_type,
    }
    options = type_options(kind)
    for rule, option in (("min", "minimum"), ("max", "maximum")):
        bound = getattr(column, rule)
        if bound is not None and bound != "now":
            options[option] = bound
    if column.timezone is not None:
        options["defaultTimezone"] = column.timezone
    if column.pattern is not None:
        options["pattern"] = column.pattern
    if options:
        out["logicalTypeOptions"] = options
    out["required"] = spec.is_required(name)
    if name in spec.key:
        out["primaryKey"] = True
        out["primaryKeyPosition"] = spec.key.index(name) + 1
        if spec.load == "merge" and len(spec.key) == 1:
            out["unique"] = True
    if column.unique:
        out["unique"] = True
    if column.description:
        out["description"] = column.description
    quality = _column_rules(name, column)
    if quality:
        out["quality"] = quality
    custom = []
    if column.from_ is not None:
        custom.append({"property": "penstockFrom", "value": column.from_})
    if column.pii is not None:
        custom.append({"property": "penstockPii", "value": column.pii})
    if custom:
        out["customProperties"] = custom
    return out


def _column_rules(name: str, column: ColumnSpec) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    if column.in_ is not None:
        rules.append(
            {
                "name": f"in:{name}",
                "type": "library",
                "metric": "invalidValues",
                "arguments": {"validValues": list(column.in_)},
                "mustBe": 0,
                "dimension": "conformity",
                "description": f"{name} is one of the listed values",
            }
        )
    for rule, value in _penstock_rules(column).items():
        rules.append(
            {
                "name": f"{rule}:{name}",
                "type": "custom",
                "engine": ENGINE,
                "implementation": {rule: value},
                "description": f"penstock rule {rule} of {name}",
            }
        )
    for rule, word in (("min", "least"), ("max", "most")):
        if getattr(column, rule) == "now" and rule not in column.rule_options:
            rules.append(
                {
                    "name": f"{rule}:{name}",
                    "type": "custom",
                    "engine": ENGINE,
                    "implementation": {rule: "now"},
                    "dimension": "accuracy",
                    "description": f"{name} is at {word} the time its batch was extracted",
                }
            )
    return rules


def _penstock_rules(column: ColumnSpec) -> dict[str, Any]:
    """The column rules ODCS has no words for, as penstock writes them: between, length,
    references, and any rule with a severity or max_failure_rate (its value with them)."""
    out: dict[str, Any] = {}
    if column.between is not None:
        out["between"] = list(column.between)
    if column.length is not None:
        out["length"] = column.length.model_dump(exclude_none=True)
    if column.references is not None:
        out["references"] = column.references
    for rule, options in column.rule_options.items():
        written = options.model_dump(exclude_defaults=True)
        if "max_failure_rate" in written:
            written["max_failure_rate"] = f"{written['max_failure_rate'] * 100:g}%"
        value = out.get(rule, getattr(column, "in_" if rule == "in" else rule))
        out[rule] = {**value, **written} if rule == "length" else {"value": value, **written}
    return out


def _table_rule(spec: ObjectSpec, check: Any) -> dict[str, Any]:
    if isinstance(check, ReconcileCheck):
        return {
            "name": "check:reconcile",
            "type": "custom",
            "engine": ENGINE,
            "implementation": {"reconcile": check.reconcile.model_dump(exclude_defaults=True)},
            "dimension": check.dimension or "completeness",
            "description": "penstock batch check reconcile: as many rows as the source counts "
            "in the batch's window",
        }
    if isinstance(check, FreshnessCheck | DuplicateRateCheck):
        kind = check.name
        written = check.model_dump(exclude_defaults=True)[kind]
        if isinstance(check, FreshnessCheck) and check.freshness.max_age is None and spec.sla:
            written["max_age"] = spec.sla.freshness  # the bound it takes from the SLA
        if isinstance(check, DuplicateRateCheck):
            written["max"] = f"{check.duplicate_rate.max * 100:g}%"
        return {
            "name": f"check:{kind}",
            "type": "custom",
            "engine": ENGINE,
            "implementation": {kind: written},
            "dimension": "timeliness" if kind == "freshness" else "uniqueness",
            "description": f"penstock batch check {kind}",
        }
    if isinstance(check, ExpressionCheck):
        custom = [{"property": "penstockExpression", "value": check.expression}]
        if check.severity != "error":
            custom.append({"property": "penstockSeverity", "value": check.severity})
        if check.max_failure_rate is not None:
            rate = f"{check.max_failure_rate * 100:g}%"
            custom.append({"property": "penstockMaxFailureRate", "value": rate})
        return {
            "name": f"check:{check.name}",
            "type": "sql",
            "query": f"SELECT COUNT(*) FROM {spec.table_name} WHERE NOT ({check.expression})",
            "mustBe": 0,
            "dimension": "consistency",
            "description": f"no row where {check.expression} is false",
            "customProperties": custom,
        }
    low, high = check.row_count.min, check.row_count.max
    rule: dict[str, Any] = {"name": "check:row_count", "type": "library", "metric": "rowCount"}
    if low is not None and high is not None:
        if low == high:
            rule["mustBe"] = low
        else:
            rule["mustBeBetween"] = [low, high]
    elif low is not None:
        rule["mustBeGreaterOrEqualTo"] = low
    else:
        rule["mustBeLessOrEqualTo"] = high
    rule.update(unit="rows", dimension="completeness", description="rows in each batch")
    return rule
