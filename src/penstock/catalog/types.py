"""Column types a project may declare, and how they map to DuckDB."""

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

TypeFamily = Literal["text", "boolean", "number", "date", "timestamp", "json"]

TYPE_NAMES: tuple[str, ...] = (
    "text",
    "boolean",
    "integer",
    "bigint",
    "double",
    "decimal(p,s)",
    "date",
    "timestamp",
    "timestamptz",
    "json",
)

_SIMPLE: dict[str, tuple[str, TypeFamily]] = {
    "text": ("VARCHAR", "text"),
    "boolean": ("BOOLEAN", "boolean"),
    "integer": ("INTEGER", "number"),
    "bigint": ("BIGINT", "number"),
    "double": ("DOUBLE", "number"),
    "date": ("DATE", "date"),
    "timestamp": ("TIMESTAMP", "timestamp"),
    # an instant: stored as DuckDB TIMESTAMPTZ (UTC); offsets in the data are honoured
    "timestamptz": ("TIMESTAMPTZ", "timestamp"),
    "json": ("JSON", "json"),
}

_DECIMAL = re.compile(r"decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)")
_MAX_PRECISION = 38


@dataclass(frozen=True)
class ColumnType:
    """A parsed column type: its normalised name, DuckDB type and family."""

    name: str
    duckdb_type: str
    family: TypeFamily
    precision: int | None = None
    scale: int | None = None

    @property
    def with_zone(self) -> bool:
        """True for `timestamptz`: values are instants, not wall-clock times."""
        return self.name == "timestamptz"


@lru_cache(maxsize=256)
def parse_type(name: str) -> ColumnType:
    """Parse a declared type name such as `bigint` or `decimal(12, 2)`.

    Raises ValueError naming the allowed types when `name` is not one of them.
    """
    text = name.strip().lower()
    simple = _SIMPLE.get(text)
    if simple is not None:
        return ColumnType(name=text, duckdb_type=simple[0], family=simple[1])
    match = _DECIMAL.fullmatch(text)
    if match is not None:
        precision, scale = int(match.group(1)), int(match.group(2))
        if not 1 <= precision <= _MAX_PRECISION:
            raise ValueError(
                f"decimal precision must be between 1 and {_MAX_PRECISION}, got {precision}"
            )
        if scale > precision:
            raise ValueError(
                f"decimal scale must be between 0 and the precision ({precision}), got {scale}"
            )
        return ColumnType(
            name=f"decimal({precision},{scale})",
            duckdb_type=f"DECIMAL({precision},{scale})",
            family="number",
            precision=precision,
            scale=scale,
        )
    raise ValueError(f"unknown type {name!r} (expected one of: {', '.join(TYPE_NAMES)})")
