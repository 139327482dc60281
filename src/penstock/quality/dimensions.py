"""Which data quality dimension each rule of a contract belongs to.

Defaults by rule kind (a column's `dimensions: {min: accuracy}`, or a check's `dimension:`,
overrides them):

| dimension | rules |
| --- | --- |
| completeness | `required`, `row_count`, `reconcile` |
| validity | `type`, `in`, `pattern`, `min`, `max`, `between`, `length`, `malformed`, `encoding` |
| uniqueness | `unique`, `duplicate_rate`, and the batch's duplicates of a key |
| consistency | expression checks (`check:<name>`), `references` |
| accuracy | none by default: assign checks to it |
| timeliness | `max: now` (a time in the future of the batch's extraction), `freshness` |

Any other rule counts under validity. A batch failing a rule's `max_failure_rate`
(`failure_rate:<reason>`) fails that rule's dimension for every record.

Every reason a quarantined row carries maps to one dimension, so a row's failed dimensions
follow from its reasons (`row_dimensions`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from penstock.catalog import ExpressionCheck, ObjectSpec, RowCountCheck
from penstock.catalog.batch_checks import ReconcileCheck
from penstock.catalog.quality_settings import DIMENSIONS, Dimension
from penstock.memo import per_spec

__all__ = [
    "DEFAULT_DIMENSION",
    "DIMENSIONS",
    "checked_dimensions",
    "dimension_of",
    "reason_dimensions",
    "reason_names",
    "row_dimensions",
]

DEFAULT_DIMENSION: dict[str, Dimension] = {
    "required": "completeness",
    "row_count": "completeness",
    "type": "validity",
    "in": "validity",
    "pattern": "validity",
    "min": "validity",
    "max": "validity",
    "malformed": "validity",
    "encoding": "validity",
    "check": "consistency",
    "between": "validity",
    "length": "validity",
    "references": "consistency",
    "unique": "uniqueness",
    "schema": "completeness",  # schema:missing:<column>: the file lacks a contract column
}
_BATCH_CHECKS: dict[str, Dimension] = {
    "check:freshness": "timeliness",
    "check:duplicate_rate": "uniqueness",
}
RATE_PREFIX = "failure_rate:"
RECORD_RULES = ("malformed", "encoding")


def _kind(reason: str) -> str:
    return reason.split(":", 1)[0]


def reason_dimensions(obj: ObjectSpec) -> dict[str, Dimension]:
    """Every reason the object's rows can carry, with its dimension (contract order)."""
    return dict(_reason_dimensions(obj))


@per_spec
def _reason_dimensions(obj: ObjectSpec) -> dict[str, Dimension]:
    """`reason_dimensions`, once per spec (asked for every batch: shared, never changed)."""
    out: dict[str, Dimension] = {}
    for name, spec in obj.columns.items():
        override = spec.dimensions or {}
        rules = ["type"]
        if obj.is_required(name):
            rules.append("required")
        rules += [
            r for r, v in (("min", spec.min), ("max", spec.max), ("in", spec.in_)) if v is not None
        ]
        if spec.pattern is not None:
            rules.append("pattern")
        rules += [
            r
            for r, v in (
                ("between", spec.between),
                ("length", spec.length),
                ("references", spec.references),
                ("unique", spec.unique or None),
            )
            if v is not None
        ]
        for rule in rules:
            default = DEFAULT_DIMENSION[rule]
            if rule == "max" and spec.max == "now":
                default = "timeliness"
            out[f"{rule}:{name}"] = override.get(rule, default)
    for check in obj.checks:
        if isinstance(check, RowCountCheck):
            out["check:row_count"] = check.dimension or "completeness"
        elif isinstance(check, ReconcileCheck):
            out["check:reconcile"] = check.dimension or "completeness"
        elif isinstance(check, ExpressionCheck):
            out[f"check:{check.name}"] = check.dimension or "consistency"
        elif f"check:{check.name}" in _BATCH_CHECKS:
            out[f"check:{check.name}"] = _BATCH_CHECKS[f"check:{check.name}"]
    for rule in RECORD_RULES:
        out[rule] = "validity"
    return out


@per_spec
def reason_names(obj: ObjectSpec) -> tuple[str, ...]:
    """The keys of `reason_dimensions` (contract order), once per spec."""
    return tuple(_reason_dimensions(obj))


def dimension_of(dimensions: Mapping[str, Dimension], reason: str) -> Dimension:
    """A reason's dimension: the contract's, else its kind's default, else validity."""
    found = dimensions.get(reason)
    if found is not None:
        return found
    if reason.startswith(RATE_PREFIX):  # a rule over its max_failure_rate: the rule's dimension
        return dimension_of(dimensions, reason.removeprefix(RATE_PREFIX))
    return DEFAULT_DIMENSION.get(_kind(reason), "validity")


def row_dimensions(dimensions: Mapping[str, Dimension], reasons: Iterable[str]) -> list[str]:
    """The dimensions a row with these reasons failed, in the canonical order."""
    failed = {dimension_of(dimensions, r) for r in reasons}
    return [d for d in DIMENSIONS if d in failed]


def checked_dimensions(obj: ObjectSpec) -> list[Dimension]:
    """The dimensions the object's contract measures: those with at least one rule, and
    uniqueness when rows can repeat a key (a key is declared)."""
    return list(_checked_dimensions(obj))


@per_spec
def _checked_dimensions(obj: ObjectSpec) -> tuple[Dimension, ...]:
    used = set(_reason_dimensions(obj).values())
    if obj.key:
        used.add("uniqueness")
    return tuple(d for d in DIMENSIONS if d in used)
