import dataclasses

import pytest

from penstock.catalog import ColumnType, parse_type
from penstock.catalog.types import TypeFamily

EXPECTED_NAMES = (
    "text, boolean, integer, bigint, double, decimal(p,s), date, timestamp, timestamptz, json"
)


@pytest.mark.parametrize(
    ("name", "duckdb_type", "family"),
    [
        ("text", "VARCHAR", "text"),
        ("boolean", "BOOLEAN", "boolean"),
        ("integer", "INTEGER", "number"),
        ("bigint", "BIGINT", "number"),
        ("double", "DOUBLE", "number"),
        ("date", "DATE", "date"),
        ("timestamp", "TIMESTAMP", "timestamp"),
        ("timestamptz", "TIMESTAMPTZ", "timestamp"),
        ("json", "JSON", "json"),
    ],
)
def test_simple_types(name: str, duckdb_type: str, family: TypeFamily) -> None:
    assert parse_type(name) == ColumnType(name=name, duckdb_type=duckdb_type, family=family)


def test_type_names_are_normalised() -> None:
    assert parse_type("  BigInt ").name == "bigint"


@pytest.mark.parametrize("spelling", ["decimal(12,2)", "decimal(12, 2)", "DECIMAL ( 12 , 2 )"])
def test_decimal(spelling: str) -> None:
    parsed = parse_type(spelling)
    assert parsed == ColumnType(
        name="decimal(12,2)", duckdb_type="DECIMAL(12,2)", family="number", precision=12, scale=2
    )


def test_decimal_bounds() -> None:
    assert parse_type("decimal(38,38)").duckdb_type == "DECIMAL(38,38)"
    assert parse_type("decimal(1,0)").duckdb_type == "DECIMAL(1,0)"


@pytest.mark.parametrize(
    ("spelling", "message"),
    [
        ("decimal(39,2)", "decimal precision must be between 1 and 38, got 39"),
        ("decimal(0,0)", "decimal precision must be between 1 and 38, got 0"),
        ("decimal(5,6)", "decimal scale must be between 0 and the precision (5), got 6"),
    ],
)
def test_decimal_out_of_range(spelling: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_type(spelling)
    assert str(info.value) == message


@pytest.mark.parametrize("name", ["varchar", "decimal", "decimal(12)", "int", ""])
def test_unknown_type(name: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_type(name)
    assert str(info.value) == f"unknown type {name!r} (expected one of: {EXPECTED_NAMES})"


def test_column_type_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        parse_type("text").name = "x"  # type: ignore[misc]


def test_only_timestamptz_holds_instants() -> None:
    assert parse_type("timestamptz").with_zone
    assert not parse_type("timestamp").with_zone
