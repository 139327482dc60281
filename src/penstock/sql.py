"""Small helpers for building SQL text safely: identifiers and literals are always quoted."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal


def ident(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"


def literal(value: object) -> str:
    """A SQL literal for a Python value (str, bool, int, float, Decimal, date, datetime, None)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def idents(names: Iterable[str], prefix: str = "") -> str:
    """A comma-separated list of quoted identifiers, each optionally qualified by `prefix`."""
    return ", ".join(f"{prefix}{ident(n)}" for n in names)


def join_on(left: str, right: str, columns: Iterable[str]) -> str:
    """`left.k1 = right.k1 AND ...`: keys are compared as tuples, column by column."""
    return " AND ".join(f"{left}.{ident(c)} = {right}.{ident(c)}" for c in columns)
