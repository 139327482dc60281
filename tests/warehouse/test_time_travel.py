"""Time travel over SCD2 objects (issue 12, part 4): `penstock history OBJECT KEY…` and
`penstock query --as-of TIME`, which reads SCD2 tables as they were at TIME."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from penstock.catalog import load_project
from penstock.errors import UsageError
from penstock.warehouse.time_travel import as_of_sql, parse_as_of

from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: travel
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  cities:
    source: landing
    files: "cities/*.csv"
    key: [person]
    order_by: moved_at
    load: scd2
    columns:
      person: {type: text, required: true}
      city: {type: text}
      moved_at: {type: timestamp, required: true}
  visits:
    source: landing
    files: "visits/*.csv"
    columns:
      person: {type: text}
      n: {type: integer}
"""
FILES = {
    "landing/cities/1.csv": (
        "person,city,moved_at\nada,Oslo,2024-01-01 00:00:00\nbob,Rome,2024-02-01 00:00:00\n"
    ),
    "landing/cities/2.csv": "person,city,moved_at\nada,Lima,2024-03-01 00:00:00\n",
    "landing/visits/1.csv": "person,n\nada,3\nbob,1\n",
}


@pytest.fixture
def travel(tmp_path: Path, cli: Cli) -> Path:
    project = write_project(tmp_path, PROJECT, FILES)
    assert cli("run", "-p", project)[0] == 0
    return project


def rows(cli: Cli, project: Path, *args: str) -> list[dict[str, object]]:
    code, out, err = cli("query", "-p", project, "--json", *args)
    assert code == 0, err
    return list(json.loads(out)["rows"])


def test_as_of_reads_the_versions_valid_then(travel: Path, cli: Cli) -> None:
    sql = "SELECT person, city FROM cities ORDER BY person"
    assert rows(cli, travel, sql) == [  # without --as-of: every version
        {"person": "ada", "city": "Oslo"},
        {"person": "ada", "city": "Lima"},
        {"person": "bob", "city": "Rome"},
    ]
    assert rows(cli, travel, "--as-of", "2023-12-31", sql) == []
    assert rows(cli, travel, "--as-of", "2024-01-15", sql) == [{"person": "ada", "city": "Oslo"}]
    assert rows(cli, travel, "--as-of", "2024-02-01", sql) == [
        {"person": "ada", "city": "Oslo"},
        {"person": "bob", "city": "Rome"},
    ]
    # the end of a version is exclusive: at the next one's start the next one holds
    assert rows(cli, travel, "--as-of", "2024-03-01T00:00", sql) == [
        {"person": "ada", "city": "Lima"},
        {"person": "bob", "city": "Rome"},
    ]
    # an offset is converted to UTC: 2024-03-01 00:30+01:00 is 2024-02-29 23:30
    assert rows(cli, travel, "--as-of", "2024-03-01T00:30+01:00", sql)[0]["city"] == "Oslo"
    # joined with a table that is not scd2 (read as it is now), aliased
    joined = (
        "SELECT c.person, c.city, v.n FROM cities AS c JOIN visits v ON v.person = c.person "
        "ORDER BY 1"
    )
    code, _, err = cli("query", "-p", travel, "--as-of", "2024-02-15", joined)
    assert code == 0 and "applies to cities; visits (not scd2) read as they are now" in err
    assert rows(cli, travel, "--as-of", "2024-02-15", joined) == [
        {"person": "ada", "city": "Oslo", "n": 3},
        {"person": "bob", "city": "Rome", "n": 1},
    ]


def test_history_lists_every_version_with_its_file(travel: Path, cli: Cli) -> None:
    code, out, err = cli("history", "cities", "ada", "-p", travel, "--json")
    assert code == 0, err
    versions = json.loads(out)["rows"]
    assert [(v["city"], v["_is_current"], v["source_file"]) for v in versions] == [
        ("Oslo", False, "landing/cities/1.csv"),
        ("Lima", True, "landing/cities/2.csv"),
    ]
    assert versions[0]["_valid_to"] == versions[1]["_valid_from"]
    assert versions[1]["_valid_to"] is None
    code, out, _ = cli("history", "cities", "zoe", "-p", travel)
    assert code == 0 and "no version of key zoe" in out
    code, _, err = cli("history", "visits", "ada", "-p", travel)
    assert code != 0 and "loads with append: only an scd2 object keeps versions" in err
    code, _, err = cli("history", "cities", "ada", "extra", "-p", travel)
    assert code != 0 and "keyed by person: give 1 value(s), got 2" in err
    code, _, err = cli("query", "-p", travel, "--as-of", "soon", "SELECT 1")
    assert code != 0 and "give a date (2026-01-31)" in err


def test_the_rewrite_touches_reads_of_scd2_tables_only(tmp_path: Path) -> None:
    project = load_project(write_project(tmp_path, PROJECT))
    at = parse_as_of("2024-02-15")
    assert at == datetime(2024, 2, 15)
    # a CTE named like the table is not a read of it; quarantine.cities is not the table
    sql = (
        "WITH cities AS (SELECT 1 AS person) SELECT * FROM cities "
        "UNION ALL SELECT count(*) FROM quarantine.cities"
    )
    unchanged = as_of_sql(sql, project, at)
    assert unchanged.rewritten == () and "_valid_from" not in unchanged.sql
    nested = as_of_sql(
        "SELECT * FROM visits WHERE person IN (SELECT person FROM main.cities)", project, at
    )
    assert (nested.rewritten, nested.current) == (("cities",), ("visits",))
    assert (
        "FROM main.\"cities\" WHERE _valid_from <= CAST('2024-02-15 00:00:00' AS TIMESTAMP)"
        in nested.sql
    )
    with pytest.raises(UsageError, match="give one statement"):
        as_of_sql("SELECT 1; SELECT 2", project, at)
