"""`penstock discover`: a database's catalog as object YAML that runs as printed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import penstock

from db_sources import SourceDb, db_project
from helpers import query

pytestmark = pytest.mark.services


def create_tables(db: SourceDb) -> None:
    quote = '"' if db.kind == "postgres" else "`"
    zoned = "timestamptz" if db.kind == "postgres" else "timestamp(6) NULL"
    db.execute(
        f"CREATE TABLE customers (id integer NOT NULL, region varchar(8) NOT NULL, "
        f"name text, {quote}Signed Up{quote} date, balance decimal(14,4) NOT NULL, "
        f"vip boolean, profile json, created_at {db.timestamp} NOT NULL, "
        f"updated_at {zoned}, PRIMARY KEY (region, id))",
        "INSERT INTO customers VALUES (1, 'eu', 'Zoë', '2024-01-02', 10.5, true, "
        "'{\"a\": 1}', '2024-01-02 03:04:05', '2024-05-06 07:08:09'), "
        "(2, 'us', NULL, NULL, 0, NULL, NULL, '2024-01-03 00:00:00', NULL)",
        "CREATE TABLE events (seen_at date, what varchar(10))",
    )


def test_discover_prints_yaml_that_runs(
    db: SourceDb, tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    create_tables(db)
    project = db_project(tmp_path / "p", db, "{}")
    code, out, err = cli("discover", "shop_db", "customers", "events", "-p", project)
    assert code == 0, err
    for line in (
        "  customers:",
        "    table: customers",
        "    key: [region, id]",
        "    cursor: updated_at    # suggested: incremental by this column",
        '      balance: {type: "decimal(14,4)", required: true}',
        "      vip: {type: boolean}",  # MySQL's boolean is tinyint(1)
        "      signed_up: {type: date, from: 'Signed Up'}",
        "      profile: {type: json}",  # MariaDB's is longtext checked by json_valid
        "      created_at: {type: timestamp, required: true}",
        "      updated_at: {type: timestamptz}",  # MySQL's TIMESTAMP is an instant
        "  events:",
        "    # no primary key: each full read replaces the table (key: to merge)",
    ):
        assert any(got.split("    #")[0] == line.split("    #")[0] for got in out.splitlines()), (
            line,
            out,
        )
    # as printed, it runs: paste it under the source and load
    head = (project / "penstock.yml").read_text().split("objects:")[0]
    (project / "penstock.yml").write_text(head + out)
    result = penstock.run(project)
    assert result.status == "success", [o.error for o in result.outcomes if o.error]
    rows = query(project, "SELECT id, region, name, balance, vip FROM customers ORDER BY id")
    assert [(r[0], r[1], r[2], str(r[3]), r[4]) for r in rows] == [
        (1, "eu", "Zoë", "10.5000", True),
        (2, "us", None, "0.0000", None),
    ]

    code, out, _ = cli("discover", "shop_db", "customers", "--json", "-p", project)
    found = json.loads(out)["objects"][0]
    assert found["key"] == ["region", "id"] and found["cursor"] == "updated_at"
    assert {c["name"]: c["required"] for c in found["columns"]}["name"] is False

    code, out, err = cli("discover", "shop_db", "no_such_table", "-p", project)
    assert code == 2
    assert "source 'shop_db' has no table named 'no_such_table'" in err


def test_plan_says_a_database_object_reads_its_next_window(
    pg_url: str, tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    from db_sources import source_db

    db = source_db("postgres", pg_url)
    project = db_project(
        tmp_path / "p", db, "t:\n  source: shop_db\n  table: t\n  columns:\n    a: {type: text}"
    )
    code, out, _ = cli("plan", "-p", project, "--json")
    assert code == 0
    assert "read its next window from the database" in out
