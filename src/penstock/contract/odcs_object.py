"""One ODCS schema object read as a penstock object (see odcs_import.py): its properties
as columns, its quality rules as checks, the values that do not fit left out with a warning
at their ODCS path."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from penstock.catalog.diagnostics import describe
from penstock.catalog.models import ObjectSpec
from penstock.contract.odcs_quality import (
    allows_none,
    check_name,
    expression_of,
    identifier,
    metric,
    row_count_bounds,
    rule_type,
    threshold_text,
)
from penstock.contract.odcs_types import import_type
from penstock.errors import UsageError

# keys read (or that say nothing when they hold their default)
_OBJECT_READ = {"name", "physicalName", "physicalType", "logicalType", "description", "properties"}
_PROPERTY_READ = {
    "name",
    "physicalName",
    "logicalType",
    "physicalType",
    "logicalTypeOptions",
    "required",
    "primaryKey",
    "primaryKeyPosition",
    "unique",
    "description",
    "quality",
    "customProperties",
}
_DEFAULTS = {"partitioned": False, "partitionKeyPosition": -1, "criticalDataElement": False}
_OPTION_BOUNDS = {"minimum": "min", "maximum": "max"}
_EXCLUSIVE = {"exclusiveMinimum": ">", "exclusiveMaximum": "<"}
_LENGTHS = {"minLength": ">=", "maxLength": "<="}
_ORDER = (
    "type",
    "required",
    "min",
    "max",
    "between",
    "in",
    "pattern",
    "length",
    "references",
    "unique",
    "pii",
    "timezone",
    "from",
    "description",
)
_TABLE_RULES = ("freshness", "duplicate_rate")
_SHARE = "penstock checks each row, a tolerated share is not mapped"


@dataclass(frozen=True)
class ImportWarning:
    """Something in the ODCS document penstock did not map: where (`schema[0].quality[1]`)
    and why."""

    path: str
    message: str


@dataclass
class ImportedObject:
    """One penstock object: its name and its YAML mapping (as under `objects:`)."""

    name: str
    spec: dict[str, Any]
    warnings: list[ImportWarning] = field(default_factory=list)


class ObjectReader:
    def __init__(self, element: dict[str, Any], path: str, source: str, taken: set[str]) -> None:
        self.element, self.path, self.source = element, path, source
        self.warnings: list[ImportWarning] = []
        self.columns: dict[str, dict[str, Any]] = {}
        self.checks: list[dict[str, Any]] = []
        self.row_count: dict[str, int] = {}
        self.keys: list[tuple[int, int, str]] = []  # (position, order, column)
        self.unique: list[tuple[str, str]] = []  # (column, path)
        self.origin: dict[tuple[str | int, ...], str] = {}  # penstock path → ODCS path
        self.dropped: dict[str, list[str]] = defaultdict(list)  # key → property paths
        written = element["name"]
        self.name = identifier(written) or "object"
        while self.name.lower() in taken:
            self.name += "_2"
        if self.name != written:
            self.warn(
                f"{path}.name", f"{written!r} is not a penstock name: imported as {self.name}"
            )

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(ImportWarning(path, message))

    def read(self, *, owner: str | None, purpose: str | None) -> ImportedObject:
        element, path = self.element, self.path
        for index, prop in enumerate(element.get("properties") or []):
            self._property(prop, f"{path}.properties[{index}]")
        for key, dropped in self.dropped.items():
            where = dropped[0] if len(dropped) == 1 else dropped[0].rsplit("[", 1)[0] + "[*]"
            self.warn(
                f"{where}.{key}",
                f"not kept: penstock has no place for {key} ({_count(len(dropped))})",
            )
        for index, rule in enumerate(element.get("quality") or []):
            self._table_rule(rule, f"{path}.quality[{index}]")
        custom = self._custom(element.get("customProperties"), f"{path}.customProperties")
        for key in element:
            if key not in _OBJECT_READ and key not in ("quality", "customProperties"):
                self.warn(f"{path}.{key}", "not kept: penstock has no place for it")
        spec = self._spec(owner, purpose, custom)
        return ImportedObject(self.name, self._settle(spec), self.warnings)

    def _custom(self, items: Any, path: str) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for index, item in enumerate(items or []):
            name = item.get("property") if isinstance(item, dict) else None
            if isinstance(name, str) and name.startswith("penstock") and isinstance(item, dict):
                found[name] = item.get("value")
            else:
                self.warn(f"{path}[{index}]", f"custom property {name!r} is not kept")
        return found

    def _spec(
        self, owner: str | None, purpose: str | None, custom: dict[str, Any]
    ) -> dict[str, Any]:
        key = [column for _, _, column in sorted(self.keys)]
        load = custom.get("penstockLoad")
        if load not in ("append", "merge", "scd2", "replace") or (
            load in ("merge", "scd2") and not key
        ):
            if load is not None:
                self.warn(f"{self.path}.customProperties", f"penstockLoad {load!r} does not fit")
            load = "merge" if key else "append"
        spec: dict[str, Any] = {"source": self.source, "files": f"{self.name}/*.csv"}
        if key:
            spec["key"] = key
        order_by = custom.get("penstockOrderBy")
        if isinstance(order_by, str) and order_by in self.columns:
            spec["order_by"] = order_by
        spec["load"] = load
        table = self.element.get("physicalName")
        if isinstance(table, str) and table != self.name:
            if identifier(table) == table:
                spec["target"] = table
            else:
                self.warn(f"{self.path}.physicalName", f"{table!r} is not a penstock table name")
        description = self.element.get("description") or purpose
        if isinstance(description, str) and description.strip():
            spec["description"] = " ".join(description.split())
        if owner:
            spec["owner"] = owner
        for column, where in self.unique:
            if key != [column] and column in self.columns:
                self.columns[column]["unique"] = True
                self.origin.setdefault(("columns", column, "unique"), where)
        spec["columns"] = {
            name: dict(sorted(column.items(), key=lambda item: _ORDER.index(item[0])))
            for name, column in self.columns.items()
        }
        checks = list(self.checks)
        if self.row_count:
            checks.append({"row_count": dict(self.row_count)})
        if checks:
            spec["checks"] = checks
        return spec

    def _property(self, prop: Any, path: str) -> None:
        if not isinstance(prop, dict) or not isinstance(prop.get("name"), str):
            self.warn(path, "a property without a name: skipped")
            return
        written = prop["name"]
        name = identifier(written).lstrip("_") or "column"
        while name.lower() in {c.lower() for c in self.columns}:
            name += "_2"
        column: dict[str, Any] = {}
        options = prop.get("logicalTypeOptions")
        options = options if isinstance(options, dict) else {}
        kind = import_type(prop.get("logicalType"), prop.get("physicalType"), options)
        column["type"] = kind.name
        if kind.note:
            self.warn(
                f"{path}.physicalType" if prop.get("physicalType") else f"{path}.logicalType",
                kind.note,
            )
        if kind.max_length is not None:
            self.warn(
                f"{path}.physicalType",
                f"{prop.get('physicalType')}: the length is not checked (penstock text has none)",
            )
        if prop.get("required") is True:
            column["required"] = True
        self._options(name, column, options, kind.name, f"{path}.logicalTypeOptions")
        if prop.get("primaryKey") is True:
            position = prop.get("primaryKeyPosition")
            rank = position if isinstance(position, int) and position > 0 else 10**6
            self.keys.append((rank, len(self.keys), name))
        if prop.get("unique") is True:
            self.unique.append((name, f"{path}.unique"))
        custom = self._custom(prop.get("customProperties"), f"{path}.customProperties")
        if custom.get("penstockPii") in ("hash", "mask", "drop", "keep"):
            column["pii"] = custom["penstockPii"]
        physical = custom.get("penstockFrom") or prop.get("physicalName")
        if isinstance(physical, str) and physical != name:
            column["from"] = physical
        elif name != written:
            column["from"] = written
        if isinstance(prop.get("description"), str) and prop["description"].strip():
            column["description"] = " ".join(prop["description"].split())
        self.columns[name] = column
        for key in column:
            self.origin.setdefault(("columns", name, key), path)
        for index, rule in enumerate(prop.get("quality") or []):
            self._column_rule(name, rule, f"{path}.quality[{index}]")
        for key, value in prop.items():
            if key in _PROPERTY_READ or _DEFAULTS.get(key, object()) == value:
                continue
            if value in (None, [], {}, ""):
                continue
            self.dropped[key].append(path)

    def _options(
        self, name: str, column: dict[str, Any], options: dict[str, Any], kind: str, path: str
    ) -> None:
        quoted = '"' + name + '"'
        for key, value in options.items():
            where = f"{path}.{key}"
            if key in _OPTION_BOUNDS:
                column[_OPTION_BOUNDS[key]] = value
                self.origin[("columns", name, _OPTION_BOUNDS[key])] = where
            elif key == "pattern":
                column["pattern"] = value
                self.origin[("columns", name, "pattern")] = where
            elif key in _EXCLUSIVE:
                literal = value if isinstance(value, int | float) else f"'{value}'"
                self._check(f"{name}_{key}", f"{quoted} {_EXCLUSIVE[key]} {literal}", where)
            elif key in _LENGTHS and isinstance(value, int):
                self._check(f"{name}_{key}", f"length({quoted}) {_LENGTHS[key]} {value}", where)
            elif key == "defaultTimezone":
                if kind in ("timestamp", "timestamptz") and value not in ("Etc/UTC", "UTC"):
                    column["timezone"] = value
                    self.origin[("columns", name, "timezone")] = where
            elif key == "timezone" or (key == "format" and kind in ("integer", "bigint", "double")):
                continue  # read by the type
            else:
                self.warn(where, f"{key}: {value!r} is not checked by penstock")

    def _check(self, name: str, expression: str, path: str) -> None:
        taken = {c.get("name") for c in self.checks}
        while name in taken:
            name += "_2"
        self.origin[("checks", len(self.checks))] = path
        self.checks.append({"name": name, "expression": expression})

    def _column_rule(self, name: str, rule: Any, path: str) -> None:
        if not isinstance(rule, dict):
            self.warn(path, "not a quality rule: skipped")
            return
        kind, what = rule_type(rule), metric(rule)
        column = self.columns[name]
        if kind == "library" and what in ("nullValues", "missingValues"):
            if allows_none(rule):
                column["required"] = True
                self.origin[("columns", name, "required")] = path
            else:
                self.warn(
                    path,
                    f"{what} {threshold_text(rule)}: {_SHARE}",
                )
            if what == "missingValues" and rule.get("arguments"):
                self.warn(
                    f"{path}.arguments", "missing-value tokens: declare null_values: on the object"
                )
        elif kind == "library" and what == "invalidValues":
            arguments = _arguments(rule)
            valid, pattern = arguments.get("validValues"), arguments.get("pattern")
            if not allows_none(rule):
                self.warn(
                    path,
                    f"invalidValues {threshold_text(rule)}: {_SHARE}",
                )
            elif isinstance(valid, list) and [v for v in valid if v not in (None, "")]:
                column["in"] = [v for v in valid if v not in (None, "")]
                self.origin[("columns", name, "in")] = path
            elif isinstance(pattern, str):
                column["pattern"] = pattern
                self.origin[("columns", name, "pattern")] = path
            else:
                self.warn(path, "invalidValues without validValues or pattern: not mapped")
        elif kind == "library" and what == "duplicateValues":
            if allows_none(rule):
                self.unique.append((name, path))
            else:
                self.warn(path, f"duplicateValues {threshold_text(rule)}: not mapped")
        elif kind == "custom" and rule.get("engine") == "penstock":
            implementation = rule.get("implementation")
            if isinstance(implementation, dict):
                for key, value in implementation.items():
                    if key in _ORDER[1:]:
                        column[key] = value
                        self.origin[("columns", name, key)] = path
                    else:
                        self.warn(f"{path}.implementation.{key}", "not a penstock column rule")
            else:
                self.warn(path, "a penstock rule without a mapping implementation: not mapped")
        else:
            self._table_rule(rule, path)

    def _table_rule(self, rule: Any, path: str) -> None:
        if not isinstance(rule, dict):
            self.warn(path, "not a quality rule: skipped")
            return
        kind, what = rule_type(rule), metric(rule)
        if kind == "library" and what == "rowCount":
            bounds = row_count_bounds(rule)
            if bounds is None:
                self.warn(path, f"rowCount {threshold_text(rule)}: not a bound on rows")
            else:
                self.row_count.update(bounds)
        elif kind == "library" and what == "duplicateValues" and allows_none(rule):
            arguments = _arguments(rule)
            columns = arguments.get("properties")
            if isinstance(columns, list) and len(columns) == 1 and isinstance(columns[0], str):
                self.unique.append((columns[0], path))
            else:
                self.warn(path, "duplicateValues over several columns: declare them as the key")
        elif kind == "sql":
            expression = expression_of(rule)
            if expression is None:
                self.warn(path, "a SQL rule penstock cannot run per row: not mapped")
            else:
                self._check(check_name(rule, f"check_{len(self.checks) + 1}"), expression, path)
                options = {
                    item["property"].removeprefix("penstock").lower(): item.get("value")
                    for item in rule.get("customProperties") or []
                    if isinstance(item, dict)
                    and item.get("property") in ("penstockSeverity", "penstockMaxFailureRate")
                }
                if "maxfailurerate" in options:
                    options["max_failure_rate"] = options.pop("maxfailurerate")
                self.checks[-1].update(options)
        elif kind == "custom" and rule.get("engine") == "penstock":
            implementation = rule.get("implementation")
            if isinstance(implementation, dict) and "reconcile" in implementation:
                # an import makes a files object; reconcile compares a database window
                self.warn(path, "a reconcile check applies to a database object: not mapped")
            elif isinstance(implementation, dict) and set(implementation) <= set(_TABLE_RULES):
                self.origin[("checks", len(self.checks))] = path
                self.checks.append(dict(implementation))
            else:
                self.warn(path, "a penstock rule that is not a table check: not mapped")
        elif kind == "custom":
            self.warn(path, f"a rule for engine {rule.get('engine')!r}: not mapped")
        elif kind == "text":
            self.warn(path, "a text rule describes quality in words: not checked")
        else:
            self.warn(path, f"{kind} rule {what!r}: not mapped")

    def _settle(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Validate as the loader does; leave out each value that does not fit, with a
        warning at its ODCS path."""
        for _ in range(50):
            try:
                ObjectSpec.model_validate({**spec, "name": self.name})
            except ValidationError as exc:
                problems = [
                    p for e in exc.errors(include_url=False) for p in describe(e, ObjectSpec)
                ]
                if not any(self._drop(spec, path, message) for path, message in problems):
                    text = "; ".join(f"{'.'.join(map(str, p))}: {m}" for p, m in problems)
                    raise UsageError(f"{self.path}: cannot import: {text}") from None
                continue
            return spec
        raise UsageError(f"{self.path}: cannot import: too many values that do not fit")

    def _drop(self, spec: dict[str, Any], path: tuple[str | int, ...], message: str) -> bool:
        if path[:1] == ("columns",) and len(path) >= 3:
            column = spec["columns"].get(path[1], {})
            key = str(path[2])
            if key in column and key != "type":
                del column[key]
                where = self.origin.get(("columns", str(path[1]), key), self.path)
                self.warn(where, f"not mapped: {key}: {message}")
                return True
        if path[:1] == ("checks",) and len(path) >= 2 and isinstance(path[1], int):
            checks = spec.get("checks") or []
            if path[1] < len(checks):
                dropped = checks.pop(path[1])
                if not checks:
                    spec.pop("checks")
                where = self.origin.get(("checks", path[1]), self.path)
                self.warn(where, f"not mapped: check {dropped.get('name', 'row_count')}: {message}")
                return True
        return False


def _arguments(rule: dict[str, Any]) -> dict[str, Any]:
    found = rule.get("arguments")
    return found if isinstance(found, dict) else {}


def _count(properties: int) -> str:
    return "1 property" if properties == 1 else f"{properties} properties"
