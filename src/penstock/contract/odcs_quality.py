"""ODCS quality rules in penstock terms: which rules a penstock contract can enforce.

penstock checks each row (and each batch's row count), so a rule maps when it allows no
failing row: `nullValues`/`missingValues` of 0 is `required`, `invalidValues` of 0 with
`validValues` is `in` (with `pattern`, a pattern), `rowCount` bounds are `row_count`, a
`type: sql` rule penstock wrote (or that counts the rows `WHERE NOT (expression)` and must be
0) is an expression check, a `type: custom` rule of engine `penstock` is what its
implementation says. Anything else (a tolerated share of bad values, another engine's rule,
a text rule, a query penstock cannot run per row) is reported, not guessed.
"""

from __future__ import annotations

import re
from typing import Any

OPERATORS = (
    "mustBe",
    "mustNotBe",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeBetween",
    "mustNotBeBetween",
)
_COUNT_NOT = re.compile(
    r"^\s*select\s+count\s*\(\s*\*\s*\)\s+from\s+\S+\s+where\s+not\s*\((?P<expr>.+)\)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


def rule_type(rule: dict[str, Any]) -> str:
    """The rule's type: as written, else `library` (the ODCS default)."""
    kind = rule.get("type")
    return kind if isinstance(kind, str) else "library"


def metric(rule: dict[str, Any]) -> str | None:
    found = rule.get("metric", rule.get("rule"))
    return found if isinstance(found, str) else None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def allows_none(rule: dict[str, Any]) -> bool:
    """True when the rule lets no value fail (a count of 0, or 0%)."""
    if rule.get("mustBe") == 0 or rule.get("mustBeLessOrEqualTo") == 0:
        return True
    below = rule.get("mustBeLessThan")
    if isinstance(below, int | float) and 0 < below <= 1 and rule.get("unit") != "percent":
        return True
    between = rule.get("mustBeBetween")
    return isinstance(between, list) and between[-1:] == [0]


def threshold_text(rule: dict[str, Any]) -> str:
    """The rule's operator as written (`mustBeLessOrEqualTo 5 percent`), for messages."""
    for name in OPERATORS:
        if name in rule:
            unit = f" {rule['unit']}" if isinstance(rule.get("unit"), str) else ""
            return f"{name} {rule[name]}{unit}"
    return "no threshold"


def row_count_bounds(rule: dict[str, Any]) -> dict[str, int] | None:
    """{min, max} of a rowCount rule in rows, or None when it says something else."""
    if rule.get("unit") not in (None, "rows"):
        return None
    values = {name: rule[name] for name in OPERATORS if name in rule}
    if len(values) != 1:
        return None
    ((name, value),) = values.items()
    if name == "mustBeBetween":
        if not (isinstance(value, list) and len(value) == 2 and all(_whole(v) for v in value)):
            return None
        low, high = int(value[0]), int(value[1])
        return {"min": low, "max": high} if 0 <= low <= high else None
    if not _whole(value):
        return None
    count = int(value)
    bounds: dict[str, int] | None = {
        "mustBe": {"min": count, "max": count},
        "mustBeGreaterThan": {"min": count + 1},
        "mustBeGreaterOrEqualTo": {"min": count},
        "mustBeLessThan": {"max": count - 1},
        "mustBeLessOrEqualTo": {"max": count},
    }.get(name)
    if bounds is None or any(v < 0 for v in bounds.values()):
        return None
    return bounds


def _whole(value: Any) -> bool:
    return _number(value) and float(value).is_integer()


def expression_of(rule: dict[str, Any]) -> str | None:
    """The row condition of a `type: sql` rule: the `penstockExpression` it carries, or the
    condition of a `SELECT COUNT(*) FROM t WHERE NOT (condition)` that must be 0."""
    for item in rule.get("customProperties") or []:
        if isinstance(item, dict) and item.get("property") == "penstockExpression":
            value = item.get("value")
            return value if isinstance(value, str) and value.strip() else None
    query = rule.get("query")
    if not isinstance(query, str) or rule.get("mustBe") != 0:
        return None
    match = _COUNT_NOT.match(query)
    return match["expr"].strip() if match is not None else None


def check_name(rule: dict[str, Any], fallback: str) -> str:
    """A check name from the rule's name (`check:updated_after_order` gives
    `updated_after_order`), made an identifier; `fallback` when it has none."""
    name = rule.get("name")
    if not isinstance(name, str) or not name.strip():
        return fallback
    return identifier(name.strip().removeprefix("check:")) or fallback


def identifier(text: str) -> str:
    """`text` made a penstock identifier: letters, digits and _, not starting with a digit."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")
    if name and name[0].isdigit():
        name = f"c_{name}"
    return name
