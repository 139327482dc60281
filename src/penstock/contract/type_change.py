"""How a column's type change moves the set of values it accepts.

A change is *widened* when every value the old type accepts is a value of the new type,
exactly (integer → bigint, decimal(10,2) → decimal(12,2), date → timestamp); *narrowed* when
the reverse holds (some old values now fail); otherwise *changed*: neither contains the other
(decimal(12,2) → decimal(12,4)), or the values keep loading but mean something else to their
readers (bigint → double loses exactness past 2^53, anything → text, timestamp ↔ timestamptz).
Only a widening is not breaking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from penstock.catalog.types import ColumnType

TypeKind = Literal["type_widened", "type_narrowed", "type_changed"]

# decimal(p,s) holds every integer when p-s reaches these (int32: 10 digits, int64: 19).
_INTEGER_DIGITS = {"integer": 10, "bigint": 19}
# decimal(p,0) fits in these when p is at most (every 9-digit number is an int32).
_FITS_DIGITS = {"integer": 9, "bigint": 18}


@dataclass(frozen=True)
class TypeChange:
    kind: TypeKind
    breaking: bool
    reason: str


def type_change(old: ColumnType, new: ColumnType) -> TypeChange | None:
    """What changing a column from `old` to `new` does; None when they are the same type."""
    if old.name == new.name:
        return None
    if new.name == "text":
        return TypeChange(
            "type_changed",
            True,
            f"values load as text: readers that use them as {old.name} break",
        )
    if _contains(new, old):
        return TypeChange("type_widened", False, f"every {old.name} value is a {new.name}")
    if _contains(old, new):
        return TypeChange("type_narrowed", True, _narrowing(old, new))
    return TypeChange("type_changed", True, _incompatible(old, new))


def _contains(wide: ColumnType, narrow: ColumnType) -> bool:
    """True when every value of `narrow` is, exactly, a value of `wide`."""
    if wide.name == narrow.name or wide.name == "text":
        return True  # text accepts any value (as text)
    if wide.family == "number" and narrow.family == "number":
        return _number_contains(wide, narrow)
    # a date reads as its midnight in a timestamp column (and in timestamptz: midnight UTC,
    # or in the column's timezone)
    return narrow.name == "date" and wide.family == "timestamp"


def _number_contains(wide: ColumnType, narrow: ColumnType) -> bool:
    if wide.name == "double":
        return narrow.name == "integer"  # int32 is exact in a double; int64 and decimals not
    if narrow.name == "double":
        return False
    if wide.precision is not None and wide.scale is not None:
        if narrow.precision is not None and narrow.scale is not None:
            return (
                wide.scale >= narrow.scale
                and wide.precision - wide.scale >= narrow.precision - narrow.scale
            )
        return wide.precision - wide.scale >= _INTEGER_DIGITS[narrow.name]
    # wide is integer or bigint
    if narrow.precision is not None and narrow.scale is not None:
        return narrow.scale == 0 and narrow.precision <= _FITS_DIGITS[wide.name]
    return wide.name == "bigint" and narrow.name == "integer"


def _narrowing(old: ColumnType, new: ColumnType) -> str:
    if old.family == "text":
        return f"text that is not a {new.name} fails"
    if old.family == "timestamp" and new.name == "date":
        return "values with a time of day fail"
    if old.scale is not None and new.scale is not None and new.scale < old.scale:
        return f"values with more than {new.scale} decimal places fail"
    if new.scale is not None and new.precision is not None:
        return f"values with more than {new.precision - new.scale} integer digits fail"
    if old.scale or old.name == "double":
        return f"values with a fraction or out of {new.name}'s range fail"
    return f"{old.name} values out of {new.name}'s range fail"


def _incompatible(old: ColumnType, new: ColumnType) -> str:
    if {old.name, new.name} == {"timestamp", "timestamptz"}:
        if new.name == "timestamptz":
            return "local times become instants in UTC: readers see other values"
        return "instants become local times: values with an offset fail without timezone:"
    if new.name == "double":
        return f"a double holds {old.name} values inexactly"
    if (
        old.scale is not None
        and new.scale is not None
        and old.precision is not None
        and new.precision is not None
    ):
        return (
            f"integer digits {old.precision - old.scale} → {new.precision - new.scale}, "
            f"decimal places {old.scale} → {new.scale}: some old values fail"
        )
    if old.family == new.family == "number":
        return f"some {old.name} values are not {new.name} values"
    return f"{old.name} values are not {new.name} values: they fail or change meaning"
