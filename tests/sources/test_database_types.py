"""The type mapping of each database, every supported type and NULL, loaded and read back
exactly: numerics to the last digit, instants in UTC, JSON as its text, unicode text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

import penstock
from penstock.catalog import load_project
from penstock.sources.discover import discover_tables

from db_sources import db_project, source_db
from helpers import query

pytestmark = pytest.mark.services

UNICODE = "héllo ✓ 日本語 🎉"
BIG = Decimal("1234567890123456789012345678.0123456789")
INSTANT = datetime(2024, 6, 1, 10, 0, 0, 500000, tzinfo=UTC)


def columns_yaml(columns: dict[str, str]) -> str:
    return "\n".join(f'    {name}: {{type: "{kind}"}}' for name, kind in columns.items())


def load_types(tmp_path: Path, kind: str, url: str, columns: dict[str, str]) -> Path:
    objects = (
        "types:\n  source: shop_db\n  table: types\n  key: [id]\n  columns:\n"
        "    id: {type: bigint}\n" + columns_yaml(columns)
    )
    project = db_project(tmp_path / "p", source_db(kind, url), objects)
    result = penstock.run(project)
    assert result.status in ("success", "warning"), [o.error for o in result.outcomes]
    return project


def as_utc(value: object) -> object:
    return value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo else value


def read_back(project: Path, names: list[str]) -> dict[int, tuple[object, ...]]:
    rows = query(project, f"SELECT id, {', '.join(names)} FROM types ORDER BY id")
    return {r[0]: tuple(as_utc(v) for v in r[1:]) for r in rows}


PG_COLUMNS = {
    "c_smallint": ("smallint", "integer", -32768),
    "c_int": ("integer", "integer", 2147483647),
    "c_bigint": ("bigint", "bigint", 9223372036854775807),
    "c_real": ("real", "double", 1.5),
    "c_double": ("double precision", "double", 2.5e300),
    "c_numeric": ("numeric(38,10)", "decimal(38,10)", BIG),
    "c_numeric_free": ("numeric", "decimal(12,2)", Decimal("12.50")),
    "c_bool": ("boolean", "boolean", True),
    "c_text": ("text", "text", UNICODE),
    "c_varchar": ("varchar(40)", "text", UNICODE),
    "c_char": ("char(4)", "text", "ab  "),
    "c_date": ("date", "date", date(2024, 2, 29)),
    "c_ts": ("timestamp(6)", "timestamp", datetime(2024, 2, 29, 23, 59, 59, 123456)),
    "c_tstz": ("timestamptz", "timestamptz", INSTANT),
    "c_json": ("json", "json", '{"a": [1, 2.50]}'),
    "c_jsonb": ("jsonb", "json", '{"b": "ü"}'),
    "c_uuid": ("uuid", "text", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
}
PG_VALUES = (
    "-32768, 2147483647, 9223372036854775807, 1.5, 2.5e300, "
    f"{BIG}, 12.5, true, '{UNICODE}', '{UNICODE}', 'ab', '2024-02-29', "
    "'2024-02-29 23:59:59.123456', '2024-06-01 12:00:00.5+02', '{\"a\": [1, 2.50]}', "
    "'{\"b\": \"ü\"}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"
)


def test_postgres_types(pg_url: str, tmp_path: Path) -> None:
    db = source_db("postgres", pg_url)
    ddl = ", ".join(f"{n} {t[0]}" for n, t in PG_COLUMNS.items())
    nulls = ", ".join("NULL" for _ in PG_COLUMNS)
    db.execute(
        f"CREATE TABLE types (id bigint PRIMARY KEY, {ddl})",
        f"INSERT INTO types VALUES (1, {PG_VALUES}), (2, {nulls})",
    )
    project = load_types(tmp_path, "postgres", pg_url, {n: t[1] for n, t in PG_COLUMNS.items()})
    got = read_back(project, list(PG_COLUMNS))
    assert got[1] == tuple(t[2] for t in PG_COLUMNS.values())
    assert got[2] == tuple(None for _ in PG_COLUMNS)


MYSQL_COLUMNS = {
    "c_tinyint": ("tinyint", "integer", -128),
    "c_smallint": ("smallint", "integer", -32768),
    "c_mediumint": ("mediumint", "integer", 8388607),
    "c_int": ("int", "integer", 2147483647),
    "c_bigint": ("bigint", "bigint", -9223372036854775808),
    "c_ubigint": ("bigint unsigned", "bigint", 42),
    "c_float": ("float", "double", 1.5),
    "c_double": ("double", "double", 2.5e300),
    "c_decimal": ("decimal(38,10)", "decimal(38,10)", BIG),
    "c_bool": ("tinyint(1)", "boolean", True),
    "c_varchar": ("varchar(40)", "text", UNICODE),
    "c_text": ("text", "text", UNICODE),
    "c_enum": ("enum('small','large')", "text", "large"),
    "c_date": ("date", "date", date(2024, 2, 29)),
    "c_datetime": ("datetime(6)", "timestamp", datetime(2024, 2, 29, 23, 59, 59, 123456)),
    "c_ts": ("timestamp(6) NULL", "timestamptz", INSTANT),
    "c_json": ("json", "json", '{"a": [1, 2.50]}'),
    # bits as their number (their bytes as text were not UTF-8: b'10100101' came back as ?)
    "c_bit1": ("bit(1)", "boolean", True),
    "c_bit8": ("bit(8)", "bigint", 165),
    "c_bit64": ("bit(64)", "decimal(20,0)", Decimal(2**64 - 1)),
    # bytes as DuckDB writes them in text: every byte kept, a backslash as \x5C
    "c_blob": ("blob", "text", "\\x00\\xFF\\x5CA"),
}
MYSQL_VALUES = (
    f"-128, -32768, 8388607, 2147483647, -9223372036854775808, 42, 1.5, 2.5e300, {BIG}, 1, "
    f"'{UNICODE}', '{UNICODE}', 'large', '2024-02-29', '2024-02-29 23:59:59.123456', "
    "'2024-06-01 12:00:00.5', '{\"a\": [1, 2.50]}', b'1', b'10100101', x'FFFFFFFFFFFFFFFF', "
    "x'00ff5c41'"
)


def test_mysql_types(mysql_url: str, tmp_path: Path) -> None:
    db = source_db("mysql", mysql_url)
    ddl = ", ".join(f"{n} {t[0]}" for n, t in MYSQL_COLUMNS.items())
    nulls = ", ".join("NULL" for _ in MYSQL_COLUMNS)
    over = MYSQL_VALUES.replace(", 42, ", ", 18446744073709551615, ", 1)
    db.execute(
        f"CREATE TABLE types (id bigint PRIMARY KEY, {ddl}) CHARACTER SET utf8mb4",
        "SET time_zone = '+02:00'",  # the TIMESTAMP is 10:00:00.5 UTC
        f"INSERT INTO types VALUES (1, {MYSQL_VALUES}), (2, {nulls}), (3, {over})",
    )
    project = load_types(tmp_path, "mysql", mysql_url, {n: t[1] for n, t in MYSQL_COLUMNS.items()})
    (found,) = discover_tables(load_project(project), "shop_db", ["types"])
    proposed = {c.name: c.type for c in found.columns}
    assert {n: proposed[n] for n in MYSQL_COLUMNS if n.startswith(("c_bit", "c_blob"))} == {
        n: t[1] for n, t in MYSQL_COLUMNS.items() if n.startswith(("c_bit", "c_blob"))
    }
    got = read_back(project, list(MYSQL_COLUMNS))
    assert got[1] == tuple(t[2] for t in MYSQL_COLUMNS.values())
    assert got[2] == tuple(None for _ in MYSQL_COLUMNS)
    # an unsigned value beyond bigint is not wrapped or rounded: the row fails its contract
    assert 3 not in got
    assert query(project, "SELECT id, _reasons FROM quarantine.types") == [
        ("3", ["type:c_ubigint"])
    ]


def test_instants_are_utc_whatever_the_offset(pg_url: str, tmp_path: Path) -> None:
    db = source_db("postgres", pg_url)
    db.execute(
        "CREATE TABLE types (id bigint PRIMARY KEY, happened timestamptz)",
        "INSERT INTO types VALUES (1, '2024-03-31 01:30:00-09:30'), (2, '2024-03-31 23:30:00+14')",
    )
    project = load_types(tmp_path, "postgres", pg_url, {"happened": "timestamptz"})
    got = read_back(project, ["happened"])
    want = {
        1: datetime(2024, 3, 31, 1, 30, tzinfo=timezone(-timedelta(hours=9, minutes=30))),
        2: datetime(2024, 3, 31, 23, 30, tzinfo=timezone(timedelta(hours=14))),
    }
    assert got == {k: (v.astimezone(UTC),) for k, v in want.items()}
