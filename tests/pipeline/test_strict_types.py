"""A value takes its declared type only when it represents it exactly; otherwise `type:<col>`.

Each case is (type, raw value, expected): the loaded value as DuckDB prints it (in UTC), TYPE
for a row quarantined with `type:v`, or BLANK for a missing value (loaded as NULL). One project
holds an object per type, so one run covers a whole table; CSV and Parquet (native types) both.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import penstock

from helpers import write_project

TYPE = "type-fail"
BLANK = "blank"
OSLO = "Europe/Oslo"

# (object name, declared type, timezone or None)
TYPES = {
    "t_integer": ("integer", None),
    "t_bigint": ("bigint", None),
    "t_decimal": ("decimal(12,2)", None),
    "t_double": ("double", None),
    "t_boolean": ("boolean", None),
    "t_date": ("date", None),
    "t_timestamp": ("timestamp", None),
    "t_timestamp_oslo": ("timestamp", OSLO),
    "t_timestamptz": ("timestamptz", None),
    "t_timestamptz_oslo": ("timestamptz", OSLO),
}

CSV_CASES: list[tuple[str, str, str]] = [
    # integer: digits with an optional sign; a fraction of zeros only
    ("t_integer", "1.5", TYPE),
    ("t_integer", "0x10", TYPE),
    ("t_integer", "42", "42"),
    ("t_integer", " 42\t", "42"),
    ("t_integer", "+7", "7"),
    ("t_integer", "-7", "-7"),
    ("t_integer", "007", "7"),
    ("t_integer", "7.00", "7"),
    # exponent notation: only when the value is a whole number (R writes 1000 as 1e3)
    ("t_integer", "1e3", "1000"),
    ("t_integer", "1.5e1", "15"),
    ("t_integer", "15e-1", TYPE),
    ("t_integer", "1e10", TYPE),
    ("t_integer", "1_000", TYPE),
    ("t_integer", "1,000", TYPE),
    ("t_integer", "2147483647", "2147483647"),
    ("t_integer", "2147483648", TYPE),
    ("t_integer", "\t", BLANK),
    ("t_integer", " \r\n ", BLANK),
    ("t_integer", "\x0b\x0c", BLANK),
    ("t_integer", "\u00a0", BLANK),
    ("t_bigint", "9223372036854775807", "9223372036854775807"),
    ("t_bigint", "9223372036854775808", TYPE),
    ("t_bigint", "1.5", TYPE),
    # decimal(12,2): at most 10 integer digits; fraction digits beyond 2 must be zeros
    ("t_decimal", "9.999", TYPE),
    ("t_decimal", "1.500", "1.50"),
    ("t_decimal", "10.5", "10.50"),
    ("t_decimal", ".5", "0.50"),
    ("t_decimal", "-0.01", "-0.01"),
    ("t_decimal", "1234567890.12", "1234567890.12"),
    ("t_decimal", "12345678901", TYPE),
    # exponent notation: when the value fits the scale exactly
    ("t_decimal", "1e2", "100.00"),
    ("t_decimal", "1.25e-1", TYPE),
    ("t_decimal", "1.2e-1", "0.12"),
    ("t_decimal", "-5E+1", "-50.00"),
    ("t_decimal", "1e10", TYPE),
    ("t_decimal", "0x10", TYPE),
    # double: decimal or exponent notation; no hex, NaN or infinity
    ("t_double", "1.5", "1.5"),
    ("t_double", "1e3", "1000.0"),
    ("t_double", "-2.5E-3", "-0.0025"),
    ("t_double", "0x10", TYPE),
    ("t_double", "nan", TYPE),
    ("t_double", "inf", TYPE),
    ("t_double", "-Infinity", TYPE),
    ("t_double", "1e999", TYPE),
    # boolean: true/false, t/f, yes/no, y/n, 1/0 in any case
    ("t_boolean", "true", "true"),
    ("t_boolean", "T", "true"),
    ("t_boolean", "Yes", "true"),
    ("t_boolean", "y", "true"),
    ("t_boolean", "1", "true"),
    ("t_boolean", "FALSE", "false"),
    ("t_boolean", "f", "false"),
    ("t_boolean", "no", "false"),
    ("t_boolean", "N", "false"),
    ("t_boolean", "0", "false"),
    ("t_boolean", "maybe", TYPE),
    ("t_boolean", "2", TYPE),
    ("t_boolean", "on", TYPE),
    # date: YYYY-MM-DD, a real day, no time part
    ("t_date", "2024-01-01", "2024-01-01"),
    ("t_date", " 2024-01-01 ", "2024-01-01"),
    ("t_date", "2024-01-01 10:00", TYPE),
    ("t_date", "2024-01-01T00:00:00", TYPE),
    ("t_date", "2024-02-30", TYPE),
    ("t_date", "2024-1-1", TYPE),
    ("t_date", "01/02/2024", TYPE),
    # timestamp: naive ISO date and time; no offset without `timezone:`
    ("t_timestamp", "2024-01-01 10:00", "2024-01-01 10:00:00"),
    ("t_timestamp", "2024-01-01T10:00:00", "2024-01-01 10:00:00"),
    ("t_timestamp", "2024-01-01", "2024-01-01 00:00:00"),
    ("t_timestamp", "2024-01-01 10:00:00.123456", "2024-01-01 10:00:00.123456"),
    ("t_timestamp", "2024-01-01 10:00:00.1234560", "2024-01-01 10:00:00.123456"),
    ("t_timestamp", "2024-01-01 10:00:00.1234567", TYPE),
    ("t_timestamp", "2024-01-01T10:00:00+02:00", TYPE),
    ("t_timestamp", "2024-01-01 10:00:00Z", TYPE),
    ("t_timestamp", "2024-01-01 24:00:00", TYPE),
    ("t_timestamp", "2024-01-01 10:00:60", TYPE),
    ("t_timestamp", "2024-01-01 10:00:00 Europe/Oslo", TYPE),
    ("t_timestamp", "2024-01-01 10", TYPE),
    # timestamp with timezone: Europe/Oslo: naive is Oslo time; an offset converts to it
    ("t_timestamp_oslo", "2024-01-01T10:00:00+02:00", "2024-01-01 09:00:00"),
    ("t_timestamp_oslo", "2024-07-01T10:00:00Z", "2024-07-01 12:00:00"),
    ("t_timestamp_oslo", "2024-01-01 10:00", "2024-01-01 10:00:00"),
    ("t_timestamp_oslo", "2024-01-01 10:00:00 CET", TYPE),
    # timestamptz: an offset is honoured; naive is UTC; stored as an instant
    ("t_timestamptz", "2024-01-01T10:00:00+02:00", "2024-01-01 08:00:00+00"),
    ("t_timestamptz", "2024-01-01 10:00:00Z", "2024-01-01 10:00:00+00"),
    ("t_timestamptz", "2024-01-01 10:00:00+0530", "2024-01-01 04:30:00+00"),
    ("t_timestamptz", "2024-01-01 10:00:00-03", "2024-01-01 13:00:00+00"),
    ("t_timestamptz", "2024-01-01 10:00", "2024-01-01 10:00:00+00"),
    ("t_timestamptz", "2024-01-01 10:00:00+25:00", TYPE),
    # timestamptz with timezone: Europe/Oslo: naive is Oslo time; DST gaps/overlaps fail
    ("t_timestamptz_oslo", "2024-01-01 10:00", "2024-01-01 09:00:00+00"),
    ("t_timestamptz_oslo", "2024-07-01 10:00", "2024-07-01 08:00:00+00"),
    ("t_timestamptz_oslo", "2024-03-31 02:30", TYPE),
    ("t_timestamptz_oslo", "2024-10-27 02:30", TYPE),
    ("t_timestamptz_oslo", "2024-10-27 01:30", "2024-10-26 23:30:00+00"),
    ("t_timestamptz_oslo", "2024-10-27 03:30", "2024-10-27 02:30:00+00"),
    ("t_timestamptz_oslo", "2024-01-01T10:00:00+02:00", "2024-01-01 08:00:00+00"),
]


def _project_yml(objects: dict[str, tuple[str, str | None]], fmt: str) -> str:
    lines = [
        "name: strict",
        "sources:",
        "  landing: {kind: files, path: ./landing, settle: 0s}",
        "objects:",
    ]
    for name, (type_name, zone) in objects.items():
        zone_key = f", timezone: {zone}" if zone else ""
        lines += [
            f"  {name}:",
            "    source: landing",
            f'    files: "{name}/*.{fmt}"',
            "    columns:",
            "      id: {type: text}",
            f'      v: {{type: "{type_name}"{zone_key}}}',
        ]
    return "\n".join(lines) + "\n"


def _outcomes(project: Path, objects: list[str]) -> dict[tuple[str, str], str]:
    """(object, case id) → the loaded value as text (in UTC), TYPE or BLANK."""
    conn = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    conn.execute("SET TimeZone = 'UTC'")
    out: dict[tuple[str, str], str] = {}
    try:
        for name in objects:
            loaded = conn.execute(f"SELECT id, CAST(v AS VARCHAR) FROM {name}").fetchall()
            for case_id, value in loaded:
                out[(name, case_id)] = BLANK if value is None else value
            tables = conn.execute(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = 'quarantine' AND table_name = ?",
                [name],
            ).fetchall()
            if tables:
                quarantined = conn.execute(f"SELECT id, _reasons FROM quarantine.{name}")
                for case_id, reasons in quarantined.fetchall():
                    assert reasons == ["type:v"], (name, case_id, reasons)
                    out[(name, case_id)] = TYPE
    finally:
        conn.close()
    return out


def test_text_values_take_their_type_only_when_exact(tmp_path: Path) -> None:
    by_object: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for index, (name, raw, _) in enumerate(CSV_CASES):
        by_object[name].append((f"c{index}", raw))
    files: dict[str, str | bytes] = {}
    for name, rows in by_object.items():
        buffer = io.StringIO()
        writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(["id", "v"])
        writer.writerows(rows)
        files[f"landing/{name}/a.csv"] = buffer.getvalue()
    project = write_project(tmp_path, _project_yml(TYPES, "csv"), files)
    result = penstock.run(project)
    assert result.status in ("success", "warning"), result
    outcomes = _outcomes(project, list(TYPES))
    got = [(name, raw, outcomes[(name, f"c{i}")]) for i, (name, raw, _) in enumerate(CSV_CASES)]
    assert got == CSV_CASES


# Parquet keeps its own types: a native value must come from the same family and survive a
# round trip through the declared type. (object, declared type, timezone, arrow array, expected)
NATIVE_CASES: list[tuple[str, str, str | None, pa.Array, list[str]]] = [
    ("n_double_int", "integer", None, pa.array([1.5, 2.0, -3.0], pa.float64()), [TYPE, "2", "-3"]),
    ("n_bigint_int", "integer", None, pa.array([3_000_000_000, 5], pa.int64()), [TYPE, "5"]),
    ("n_int_bigint", "bigint", None, pa.array([7], pa.int32()), ["7"]),
    (
        "n_double_decimal",
        "decimal(12,2)",
        None,
        pa.array([1.005, 0.5, 9.99], pa.float64()),
        [TYPE, "0.50", "9.99"],
    ),
    (
        "n_decimal_decimal",
        "decimal(12,2)",
        None,
        pa.array([Decimal("123.456"), Decimal("123.450")], pa.decimal128(10, 3)),
        [TYPE, "123.45"],
    ),
    (
        "n_double_double",
        "double",
        None,
        pa.array([float("nan"), float("inf"), 2.5], pa.float64()),
        [TYPE, TYPE, "2.5"],
    ),
    ("n_bigint_double", "double", None, pa.array([2**53 + 1, 12], pa.int64()), [TYPE, "12.0"]),
    ("n_int_boolean", "boolean", None, pa.array([1], pa.int64()), [TYPE]),
    ("n_bool_boolean", "boolean", None, pa.array([True, False]), ["true", "false"]),
    ("n_text_integer", "integer", None, pa.array(["1.5", "12", " "]), [TYPE, "12", BLANK]),
    (
        "n_ts_date",
        "date",
        None,
        pa.array([datetime(2024, 1, 1, 10, 0), datetime(2024, 1, 2)], pa.timestamp("us")),
        [TYPE, "2024-01-02"],
    ),
    (
        "n_tstz_timestamp",
        "timestamp",
        None,
        pa.array([datetime(2024, 1, 1, 8, 0, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
        [TYPE],
    ),
    (
        "n_tstz_timestamp_oslo",
        "timestamp",
        OSLO,
        pa.array([datetime(2024, 1, 1, 8, 0, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
        ["2024-01-01 09:00:00"],
    ),
    (
        "n_ts_timestamptz",
        "timestamptz",
        None,
        pa.array([datetime(2024, 1, 1, 8, 0)], pa.timestamp("us")),
        ["2024-01-01 08:00:00+00"],
    ),
    (
        "n_ts_timestamptz_oslo",
        "timestamptz",
        OSLO,
        pa.array([datetime(2024, 1, 1, 8, 0), datetime(2024, 3, 31, 2, 30)], pa.timestamp("us")),
        ["2024-01-01 07:00:00+00", TYPE],
    ),
    (
        "n_ns_timestamp",
        "timestamp",
        None,
        pa.array([1_704_067_200_000_000_001, 1_704_067_200_000_001_000], pa.timestamp("ns")),
        [TYPE, "2024-01-01 00:00:00.000001"],
    ),
    (
        "n_date_timestamp",
        "timestamp",
        None,
        pa.array([date(2024, 1, 1)], pa.date32()),
        ["2024-01-01 00:00:00"],
    ),
    ("n_date_date", "date", None, pa.array([date(2024, 1, 1)], pa.date32()), ["2024-01-01"]),
]


def test_native_values_take_their_type_only_when_exact(tmp_path: Path) -> None:
    objects = {name: (type_name, zone) for name, type_name, zone, _, _ in NATIVE_CASES}
    project = write_project(tmp_path, _project_yml(objects, "parquet"))
    for name, _, _, values, _ in NATIVE_CASES:
        path = project / "landing" / name / "a.parquet"
        path.parent.mkdir(parents=True)
        ids = pa.array([f"r{i}" for i in range(len(values))])
        pq.write_table(pa.table({"id": ids, "v": values}), path)
    result = penstock.run(project)
    assert result.status in ("success", "warning"), result
    outcomes = _outcomes(project, list(objects))
    got = {
        name: [outcomes[(name, f"r{i}")] for i in range(len(expected))]
        for name, _, _, _, expected in NATIVE_CASES
    }
    assert got == {name: expected for name, _, _, _, expected in NATIVE_CASES}


def test_blank_text_of_any_whitespace_is_missing(tmp_path: Path) -> None:
    yml = """
    name: blanks
    sources:
      landing: {kind: files, path: ./landing, settle: 0s}
    objects:
      people:
        source: landing
        files: "people/*.csv"
        columns:
          id: {type: integer, required: true}
          name: {type: text, required: true, pattern: "^[a-z]+$"}
    """
    blanks = ["\t", " \r\n", "\x0b", "\x0c", "\u00a0 ", "  "]
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(["id", "name"])
    writer.writerows([(str(i), blank) for i, blank in enumerate(blanks, 1)])
    writer.writerow(["\t", "ann"])
    project = write_project(tmp_path, yml, {"landing/people/a.csv": buffer.getvalue()})
    penstock.run(project)
    conn = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    try:
        rows = conn.execute(
            "SELECT _row_number, _reasons FROM quarantine.people ORDER BY _row_number"
        ).fetchall()
    finally:
        conn.close()
    # blank text is missing: `required` speaks, the pattern does not
    expected = [(i, ["required:name"]) for i in range(1, len(blanks) + 1)]
    assert rows == [*expected, (len(blanks) + 1, ["required:id"])]


@pytest.mark.parametrize("fmt", ["csv"])
def test_an_offset_decides_a_merge_by_the_instant(tmp_path: Path, fmt: str) -> None:
    """The later instant wins even when its wall-clock text is earlier."""
    yml = """
    name: merge_tz
    sources:
      landing: {kind: files, path: ./landing, settle: 0s}
    objects:
      orders:
        source: landing
        files: "orders/*.csv"
        key: [id]
        order_by: updated_at
        columns:
          id: {type: integer}
          status: {type: text}
          updated_at: {type: timestamptz}
    """
    project = write_project(
        tmp_path,
        yml,
        {"landing/orders/1.csv": "id,status,updated_at\n1,first,2024-01-01T10:00:00+02:00\n"},
    )
    penstock.run(project)
    (project / "landing/orders/2.csv").write_text(
        "id,status,updated_at\n1,second,2024-01-01T09:00:00Z\n"
    )
    penstock.run(project)
    conn = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    conn.execute("SET TimeZone = 'UTC'")
    try:
        rows = conn.execute("SELECT id, status, CAST(updated_at AS VARCHAR) FROM orders").fetchall()
    finally:
        conn.close()
    assert rows == [(1, "second", "2024-01-01 09:00:00+00")]
