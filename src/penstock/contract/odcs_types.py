"""penstock types in ODCS terms and back.

Export: each penstock type has an ODCS `logicalType`, its DuckDB type as `physicalType`, and
`logicalTypeOptions` that pin it down (`format: i32` for integer, `timezone: true` for
timestamptz). Import: a `physicalType` penstock knows (its own DuckDB names and the common SQL
ones: int4, varchar(18), numeric(10,2), timestamptz...) decides; otherwise the `logicalType`
does, and the approximation is reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from penstock.catalog.types import ColumnType

_LOGICAL = {
    "text": "string",
    "boolean": "boolean",
    "integer": "integer",
    "bigint": "integer",
    "double": "number",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamp",
    "json": "object",
}
_FORMAT = {"integer": "i32", "bigint": "i64", "double": "f64"}


def logical_type(column: ColumnType) -> str:
    return "number" if column.precision is not None else _LOGICAL[column.name]


def type_options(column: ColumnType) -> dict[str, Any]:
    """The `logicalTypeOptions` that say which penstock type a column has."""
    if column.name in _FORMAT:
        return {"format": _FORMAT[column.name]}
    if column.family == "timestamp":
        return {"timezone": column.with_zone}
    return {}


_PHYSICAL_SIMPLE = {
    "integer": (
        "int",
        "int4",
        "integer",
        "int32",
        "serial",
        "serial4",
        "int2",
        "smallint",
        "smallserial",
        "serial2",
        "tinyint",
        "int1",
        "mediumint",
    ),
    "bigint": ("bigint", "int8", "int64", "bigserial", "serial8", "long"),
    "double": (
        "double",
        "double precision",
        "float",
        "float8",
        "float4",
        "real",
        "float64",
        "float32",
    ),
    "boolean": ("bool", "boolean"),
    "text": (
        "text",
        "string",
        "varchar",
        "char",
        "character",
        "bpchar",
        "character varying",
        "uuid",
        "nvarchar",
        "nchar",
        "clob",
        "citext",
    ),
    "date": ("date",),
    "timestamp": (
        "timestamp",
        "datetime",
        "timestamp without time zone",
        "timestamp_ntz",
        "datetime2",
    ),
    "timestamptz": ("timestamptz", "timestamp with time zone", "timestamp_tz", "datetimeoffset"),
    "json": ("json", "jsonb"),
}
_BY_PHYSICAL = {name: penstock for penstock, names in _PHYSICAL_SIMPLE.items() for name in names}
_SIZED_TEXT = re.compile(
    r"(?P<name>varchar|char|character varying|character|bpchar|nvarchar|nchar|string)"
    r"\s*[\(\[]\s*(?P<length>\d+)\s*[\)\]]"
)
_DECIMAL = re.compile(r"(?:decimal|numeric|number)\s*[\(\[]\s*(\d+)\s*(?:,\s*(\d+)\s*)?[\)\]]")
_INTEGER_FORMATS = {
    "i8": "integer",
    "i16": "integer",
    "i32": "integer",
    "u8": "integer",
    "u16": "integer",
    "i64": "bigint",
    "u32": "bigint",
}


@dataclass(frozen=True)
class ImportedType:
    """The penstock type read from an ODCS property; `note` says what was approximated, and
    `max_length` is a length the physical type limits text to."""

    name: str
    note: str | None = None
    max_length: int | None = None


def import_type(logical: Any, physical: Any, options: dict[str, Any]) -> ImportedType:
    """The penstock type of an ODCS property with this logicalType, physicalType and
    logicalTypeOptions."""
    text = physical.strip().lower() if isinstance(physical, str) else ""
    found = _from_physical(text, options)
    if found is not None:
        return found
    return _from_logical(logical, physical, options)


def _from_physical(text: str, options: dict[str, Any]) -> ImportedType | None:
    if not text:
        return None
    simple = _BY_PHYSICAL.get(text)
    if simple == "timestamp" and options.get("timezone") is True:
        simple = "timestamptz"
    if simple is not None:
        return ImportedType(simple)
    if text.startswith("time") and not text.startswith("timestamp"):
        return ImportedType("text", note=f"{text}: penstock has no time type, read as text")
    sized = _SIZED_TEXT.fullmatch(text)
    if sized is not None:
        return ImportedType("text", max_length=int(sized["length"]))
    decimal = _DECIMAL.fullmatch(text)
    if decimal is not None:
        precision, scale = int(decimal[1]), int(decimal[2] or 0)
        if 1 <= precision <= 38 and scale <= precision:
            return ImportedType(f"decimal({precision},{scale})")
        return ImportedType("double", note=f"{text} is wider than decimal(38): read as double")
    if text in ("numeric", "decimal", "number"):
        return ImportedType(
            "double", note=f"{text} without a precision: read as double (not exact)"
        )
    return None


def _from_logical(logical: Any, physical: Any, options: dict[str, Any]) -> ImportedType:
    shown = f"physicalType {physical!r} is not a type penstock knows: " if physical else ""
    if logical == "string":
        return ImportedType("text", note=shown + "read as text" if shown else None)
    if logical == "boolean":
        return ImportedType("boolean", note=shown + "read as boolean" if shown else None)
    if logical == "integer":
        fmt = options.get("format")
        name = _INTEGER_FORMATS.get(fmt, "bigint") if isinstance(fmt, str) else "bigint"
        if fmt in ("i128", "u64", "u128"):
            name = "decimal(38,0)"
        return ImportedType(name, note=shown + f"read as {name}" if shown else None)
    if logical == "number":
        return ImportedType("double", note=shown + "read as double (not exact)")
    if logical == "date":
        return ImportedType("date", note=shown + "read as date" if shown else None)
    if logical == "timestamp":
        name = "timestamptz" if options.get("timezone") is True else "timestamp"
        return ImportedType(name, note=shown + f"read as {name}" if shown else None)
    if logical == "time":
        return ImportedType(
            "text", note="logicalType time: penstock has no time type, read as text"
        )
    if logical in ("object", "array") and shown:
        return ImportedType("text", note=f"{shown}logicalType {logical}: read as text")
    if logical in ("object", "array"):
        return ImportedType("json", note=f"logicalType {logical}: read as json (shape not checked)")
    what = f"logicalType {logical!r}" if logical is not None else "no logicalType"
    return ImportedType("text", note=f"{shown or ''}{what}: read as text")
