"""Each database's column types → penstock's contract types (what `penstock discover`
proposes, and what the reads deliver exactly; README "Database sources" has the table).

Numerics stay exact: an integer type to integer or bigint (an unsigned bigint, whose values
may exceed bigint, to decimal(20,0)), numeric/decimal(p,s) to decimal(p,s) (beyond 38 digits,
or PostgreSQL's numeric without a precision, to text: every digit kept). Instants stay
instants: timestamptz (PostgreSQL) and TIMESTAMP (MySQL, stored in UTC) to timestamptz;
wall-clock times (timestamp, DATETIME) to timestamp. JSON to json (its text). Anything else
(uuid, time, interval, enum, arrays...) to text: the database's own text form.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_DECIMAL = 38


@dataclass(frozen=True)
class CatalogColumn:
    """A column as the database's catalog describes it."""

    name: str
    data_type: str  # information_schema's data_type (PostgreSQL: udt_name), lower case
    column_type: str  # MySQL's full column type (`tinyint(1)`, `bigint unsigned`); else ""
    precision: int | None
    scale: int | None
    nullable: bool


def contract_type(kind: str, column: CatalogColumn) -> str:
    """The contract type that reads `column` exactly."""
    if kind == "postgres":
        return _postgres(column)
    return _mysql(column)


def _decimal(column: CatalogColumn) -> str:
    p, s = column.precision, column.scale
    if p is None or p > MAX_DECIMAL:
        return "text"
    return f"decimal({p},{s or 0})"


_PG = {
    "int2": "integer",
    "int4": "integer",
    "int8": "bigint",
    "float4": "double",
    "float8": "double",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "json": "json",
    "jsonb": "json",
}


def _postgres(column: CatalogColumn) -> str:
    if column.data_type == "numeric":
        return _decimal(column)
    return _PG.get(column.data_type, "text")


_MY = {
    "tinyint": "integer",
    "smallint": "integer",
    "mediumint": "integer",
    "int": "integer",
    "integer": "integer",
    "bigint": "bigint",
    "float": "double",
    "double": "double",
    "real": "double",
    "date": "date",
    "datetime": "timestamp",
    "timestamp": "timestamptz",
    "json": "json",
}


def _mysql(column: CatalogColumn) -> str:
    data_type, full = column.data_type, column.column_type
    unsigned = "unsigned" in full
    if data_type == "tinyint" and full.startswith("tinyint(1)"):
        return "boolean"
    if data_type == "bit":  # read as its number (sources/mysql.py)
        width = column.precision or 1
        return "boolean" if width == 1 else "bigint" if width < 64 else "decimal(20,0)"
    if data_type in ("decimal", "numeric"):
        return _decimal(column)
    if data_type == "int" and unsigned:
        return "bigint"
    if data_type == "bigint" and unsigned:
        return "decimal(20,0)"
    return _MY.get(data_type, "text")


CURSOR_NAMES = (
    "updated_at",
    "modified_at",
    "last_modified",
    "last_modified_at",
    "updated",
    "modified",
    "changed_at",
    "last_update",
    "updated_on",
)


def suggest_cursor(columns: list[tuple[str, str, bool]]) -> str | None:
    """A column that dates each row's last change: (name, contract type, nullable) → the best
    candidate, a NOT NULL timestamp named like `updated_at` first."""
    temporal = [c for c in columns if c[1] in ("timestamptz", "timestamp")]

    def rank(column: tuple[str, str, bool]) -> tuple[int, int, int]:
        name = column[0].lower()
        named = CURSOR_NAMES.index(name) if name in CURSOR_NAMES else len(CURSOR_NAMES)
        hinted = 0 if ("updat" in name or "modif" in name or "chang" in name) else 1
        return (named, hinted, 1 if column[2] else 0)

    candidates = [c for c in temporal if rank(c)[:2] != (len(CURSOR_NAMES), 1)]
    return min(candidates, key=rank)[0] if candidates else None
