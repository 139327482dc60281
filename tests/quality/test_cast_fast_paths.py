"""The fast proofs of the strict casts (quality/casts.py) never change what a value becomes.

Each typed column's cast tries a cheap proof for the plain spelling first (a value written as
DuckDB writes it back) and falls back to the column's pattern. The proofs must accept only text
the pattern accepts, and give the same value: every case below is cast with the proofs and
without them (`fast=False`: the patterns alone, as before the proofs existed) and must agree;
the tricky spellings must be refused by the proof itself (they go to the pattern), and the
plain ones accepted by it (or the speed-up is silently gone). One DuckDB connection, one query
per column type: fast.
"""

from __future__ import annotations

import random

import duckdb
import pytest

from penstock.catalog import ColumnSpec
from penstock.quality.casts import (
    canonical_sql,
    plain_date_sql,
    plain_timestamp_sql,
    strict_cast_sql,
)

# values the fast proofs must NOT accept (the pattern decides them, often as a type failure)
NOT_CANONICAL_INTEGERS = [
    "+5", "007", "-0", "1e3", " 12", "12 ", "\t12", "7.00", "7.", "0x10", "1_000", "1,000",
    "9223372036854775808", "-9223372036854775809", "", " ", "12\u00a0", "٣",
    "1.5e1", "15e-1", "1e+05", " 1e3", "1e19",
]  # fmt: skip
NOT_CANONICAL_DECIMALS_1 = [
    "1.50", "1", "+1.5", "01.5", ".5", "1.", "1.5e0", " 1.5", "-0.0", "1e3", "1.25e-1", "15E-2",
    "0e9",
]  # fmt: skip
NOT_PLAIN_DATES = [
    "2024-02-30", "2024-1-1", "2024-01-1", " 2024-01-01", "2024-01-01 ", "10000-01-01",
    "-999-01-01", "+2024-01-01", "2024-01-01T00:00:00", "2024/01/01", "20240101",
]  # fmt: skip
NOT_PLAIN_TIMESTAMPS = [
    "2024-02-30T00:00:00", "2024-01-01T24:00:00", "2024-01-01T23:59:60", "2024-12-31 23:59:60",
    "2024-01-01T00:00:00.1234567", "2024-01-01T00:00:00.5", "2024-01-01T00:00:00.",
    "2024-01-01T00:00:00Z", "2024-01-01T00:00:00+02:00", "2024-01-01t00:00:00",
    "2024-1-01T00:00:00", "2024-01-01T0:00:00", " 2024-01-01T00:00:00", "2024-01-01T00:00:00 ",
    " 2024-01-01T00:00:0", "2024-01-01T00:00", "2024-01-01", "10000-01-01T00:00:00",
    "-999-01-01T00:00:00", "+2024-01-01T00:00", "2024-01-01 10:00:00 CET", "2024-01-01T10",
]  # fmt: skip

# spellings the proofs must accept: the common case they exist for
CANONICAL = {
    "BIGINT": ["0", "-12", "16416053", "9223372036854775807", "-9223372036854775808"],
    "INTEGER": ["1", "-7", "1000", "2147483647"],
    "DECIMAL(14,2)": ["4762.29", "0.50", "-0.01", "123456789012.00"],
    "DECIMAL(10,1)": ["1.5", "-0.5", "0.0"],
    "DECIMAL(2,2)": [".50", "-.01"],
    "DECIMAL(5,0)": ["12345", "-1", "0"],
}
PLAIN_DATES = ["2024-01-01", "2024-02-29", "0999-12-31", "0001-01-01"]
PLAIN_TIMESTAMPS = [
    "2026-01-01T01:58:38", "2024-02-29 23:59:59", "0999-01-01T00:00:00", "2024-03-31T02:30:00",
]  # fmt: skip

# (column type, timezone): every text-typed cast that has a fast proof
COLUMNS = [
    ("integer", None),
    ("bigint", None),
    ("decimal(14,2)", None),
    ("decimal(10,1)", None),
    ("decimal(2,2)", None),
    ("decimal(5,0)", None),
    ("date", None),
    ("timestamp", None),
    ("timestamp", "Europe/Oslo"),
    ("timestamptz", None),
    ("timestamptz", "Europe/Oslo"),
]


def _random_values(seed: int, n: int) -> list[str]:
    """Short strings over the characters numbers and ISO times are made of, and mutations of
    plain timestamps: a cheap property test of `fast == reference`."""
    rng = random.Random(seed)
    alphabet = "0123456789" * 4 + "+-.eE: T0Z\t"
    out = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8))) for _ in range(n)]
    for _ in range(n):
        y, mo, d = rng.randint(0, 10999), rng.randint(0, 13), rng.randint(0, 32)
        h, mi, s = rng.randint(0, 25), rng.randint(0, 61), rng.randint(0, 61)
        sep = rng.choice("T T-")
        frac = rng.choice(["", "", ".5", ".000000", ".1234567", "."])
        text = f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}"
        out.append(text[: rng.randint(8, len(text))] if rng.random() < 0.2 else text)
    for _ in range(n):
        whole, frac = rng.randint(-(10**14), 10**14), rng.randint(0, 999)
        out.append(rng.choice([f"{whole}", f"{whole}.{frac}", f"{whole}.{frac:03d}", f"0{whole}"]))
    return out


ALL_VALUES = sorted(
    {
        *NOT_CANONICAL_INTEGERS,
        *NOT_CANONICAL_DECIMALS_1,
        *NOT_PLAIN_DATES,
        *NOT_PLAIN_TIMESTAMPS,
        *(v for values in CANONICAL.values() for v in values),
        *PLAIN_DATES,
        *PLAIN_TIMESTAMPS,
        *_random_values(7, 700),
    }
)


@pytest.fixture(scope="module")
def conn() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    c.execute("CREATE TABLE v (x VARCHAR)")
    c.executemany("INSERT INTO v VALUES (?)", [[v] for v in [*ALL_VALUES, None]])
    return c


def _holds(conn: duckdb.DuckDBPyConnection, condition: str, values: list[str]) -> list[str]:
    """The values for which `condition` (SQL over `x`) is TRUE."""
    rows = conn.execute(
        f"SELECT x FROM (SELECT unnest(?::VARCHAR[]) AS x) WHERE {condition}", [values]
    ).fetchall()
    return [r[0] for r in rows]


def test_the_proofs_refuse_every_spelling_the_pattern_must_judge(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    for target in ("BIGINT", "INTEGER"):
        assert _holds(conn, canonical_sql("x", target), NOT_CANONICAL_INTEGERS) == []
    assert _holds(conn, canonical_sql("x", "DECIMAL(10,1)"), NOT_CANONICAL_DECIMALS_1) == []
    assert _holds(conn, plain_date_sql("x"), NOT_PLAIN_DATES) == []
    assert _holds(conn, plain_timestamp_sql("x"), NOT_PLAIN_TIMESTAMPS) == []


def test_the_proofs_accept_the_plain_spellings(conn: duckdb.DuckDBPyConnection) -> None:
    for target, values in CANONICAL.items():
        assert _holds(conn, canonical_sql("x", target), values) == values, target
    assert _holds(conn, plain_date_sql("x"), PLAIN_DATES) == PLAIN_DATES
    assert _holds(conn, plain_timestamp_sql("x"), PLAIN_TIMESTAMPS) == PLAIN_TIMESTAMPS


@pytest.mark.parametrize(("type_name", "zone"), COLUMNS)
def test_a_value_casts_the_same_with_or_without_the_proofs(
    conn: duckdb.DuckDBPyConnection, type_name: str, zone: str | None
) -> None:
    spec = ColumnSpec(type=type_name, timezone=zone)
    fast = strict_cast_sql("x", spec, "VARCHAR", True)
    reference = strict_cast_sql("x", spec, "VARCHAR", True, fast=False)
    assert fast != reference  # the proof is in the expression
    rows = conn.execute(
        f"SELECT x, CAST({fast} AS VARCHAR), CAST({reference} AS VARCHAR) FROM v"
    ).fetchall()
    differ = [(x, a, b) for x, a, b in rows if a != b]
    assert differ == []
    typed = sum(1 for _, a, _ in rows if a is not None)
    assert typed >= 10  # the cases do exercise the accepting side too


def test_the_documented_edge_cases_keep_their_outcome(conn: duckdb.DuckDBPyConnection) -> None:
    """A few spellings and what they become (NULL: a type failure), with the proofs on."""

    def cast(type_name: str, value: str) -> str | None:
        sql = strict_cast_sql("x", ColumnSpec(type=type_name), "VARCHAR", True)
        found = conn.execute(f"SELECT CAST({sql} AS VARCHAR) FROM (SELECT ? AS x)", [value])
        row = found.fetchone()
        assert row is not None
        return row[0]

    assert [cast("bigint", v) for v in ("+5", "007", "1e3", " 12", "7.00", "-0", "15e-1")] == [
        "5", "7", "1000", "12", "7", "0", None,
    ]  # fmt: skip
    assert [cast("decimal(10,1)", v) for v in ("1.50", "1.55", "1.5")] == ["1.5", None, "1.5"]
    # exponent notation: exact or nothing (DuckDB's own cast would round 1.25e-1 to 0.1)
    assert [
        cast("decimal(10,1)", v) for v in ("1e3", "1.5E+2", "1.25e-1", "0.000e-400", "1e12")
    ] == ["1000.0", "150.0", None, "0.0", None]
    assert [
        cast("timestamp", v)
        for v in (
            "2024-02-30T00:00:00",
            "2024-01-01T24:00:00",
            "2024-01-01T23:59:60",
            "2024-01-01T00:00:00.1234567",
            "2024-01-01T00:00:00.1234560",
            "10000-01-01T00:00:00",
            "2024-01-01T10:00:00",
        )
    ] == [None, None, None, None, "2024-01-01 00:00:00.123456", None, "2024-01-01 10:00:00"]
    assert [cast("date", v) for v in ("10000-01-01", "2024-1-1", "2024-01-01")] == [
        None, None, "2024-01-01",
    ]  # fmt: skip
