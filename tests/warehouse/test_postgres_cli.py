"""`penstock status`, `quarantine` and `rebuild` on a PostgreSQL warehouse go through its
adapter and answer as on DuckDB; odd identifiers are quoted; a bad URL or an unreachable
server is one clear line that never shows the password."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

import penstock

from helpers import write_project
from pg_projects import PgWarehouse

pytestmark = pytest.mark.services

Cli = Callable[..., tuple[int, str, str]]

ITEMS = """
name: items
warehouse: {warehouse}
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  items:
    source: landing
    files: "items/*.csv"
    key: [k]
    order_by: ts
    load: merge
    columns:
      k:   {{type: integer, required: true}}
      qty: {{type: integer, min: 0}}
      ts:  {{type: timestamp, required: true}}
"""


DROPS = {
    "1.csv": "1,1,2024-01-01\n2,-1,2024-01-01\n3,-3,2024-01-01\n",
    "2.csv": "2,2,2024-02-01\n",  # key 2 arrives valid: its quarantined row is superseded
}


def items_project(root: Path, warehouse: str) -> Path:
    return write_project(root, ITEMS.format(warehouse=warehouse))


def drop(project: Path, name: str) -> None:
    path = project / "landing" / "items" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("k,qty,ts\n" + DROPS[name])


def as_json(cli: Cli, *args: str | Path) -> Any:
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: without_times(v)
            for k, v in value.items()
            # times, and durations such as a source's latency, differ between any two runs
            if not k.endswith(("_at", "_s")) and k not in ("last_run_id",)
        }
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def test_status_and_quarantine_answer_as_on_duckdb(
    tmp_path: Path, pg_warehouse: PgWarehouse, cli: Cli
) -> None:
    duck = items_project(tmp_path / "duck", "duckdb:///warehouse.duckdb")
    pg = items_project(tmp_path / "pg", pg_warehouse.url)
    for name in DROPS:  # one run each: the second batch loads later than the first
        for project in (duck, pg):
            drop(project, name)
            assert penstock.run(project).failures == []
    status = {p: as_json(cli, "status", "-p", p) for p in (duck, pg)}
    assert without_times(status[pg]) == without_times(status[duck])
    (state,) = status[pg]["objects"]
    assert (state["rows"], state["batches_loaded"], state["rows_quarantined"]) == (2, 2, 2)
    view = {p: as_json(cli, "quarantine", "items", "-p", p) for p in (duck, pg)}
    assert without_times(view[pg]) == without_times(view[duck])
    rows = sorted((r["k"], r["_superseded"], r["_reasons"]) for r in view[pg]["rows"])
    assert rows == [("2", True, ["min:qty"]), ("3", False, ["min:qty"])]
    hidden = as_json(cli, "quarantine", "items", "-p", pg, "--hide-superseded")
    assert [r["k"] for r in hidden["rows"]] == ["3"]


def test_odd_identifiers_are_quoted(tmp_path: Path, pg_warehouse: PgWarehouse) -> None:
    schema = 'Odd "Sch"; DROP'
    url = pg_warehouse.conninfo + "?schema=" + schema.replace(" ", "%20").replace('"', "%22")
    project = write_project(
        tmp_path / "p",
        f"""
        name: odd
        warehouse: {json.dumps(url)}
        sources:
          landing: {{kind: files, path: ./landing, settle: 0s}}
        objects:
          odd:
            source: landing
            files: "odd/*.csv"
            target: Order
            key: [select]
            order_by: MixedCase
            load: merge
            columns:
              select:    {{type: integer, required: true}}
              user:      {{type: text}}
              MixedCase: {{type: date, required: true}}
        """,
        {
            "landing/odd/1.csv": "select,user,MixedCase\n1,ann,2024-01-01\n2,bo,2024-01-01\n",
            "landing/odd/2.csv": "select,user,MixedCase\n1,ann b,2024-02-01\n",
        },
    )
    try:
        assert penstock.run(project).failures == []
        with psycopg.connect(pg_warehouse.conninfo) as conn:
            columns = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = 'Order' ORDER BY ordinal_position",
                [schema],
            ).fetchall()
            rows = conn.execute(
                'SELECT "select", "user", "MixedCase" FROM "Odd ""Sch""; DROP"."Order" '
                'ORDER BY "select"'
            ).fetchall()
            loads = conn.execute(
                'SELECT rows_inserted, rows_updated FROM "Odd ""Sch""; DROP_penstock".loads '
                "ORDER BY loaded_at"
            ).fetchall()
        assert [c for (c,) in columns] == ["select", "user", "MixedCase", "_batch_id", "_loaded_at"]
        assert [(k, u) for k, u, _ in rows] == [(1, "ann b"), (2, "bo")]
        assert loads == [(2, 0), (0, 1)]
    finally:
        with psycopg.connect(pg_warehouse.conninfo, autocommit=True) as conn:
            for name in (schema, f"{schema}_penstock", f"{schema}_quarantine"):
                conn.execute(
                    f'DROP SCHEMA IF EXISTS "{name.replace(chr(34), chr(34) * 2)}" CASCADE'
                )


def test_a_name_postgres_would_cut_short_is_refused(
    tmp_path: Path, pg_warehouse: PgWarehouse, cli: Cli
) -> None:
    long = "c" * 64
    project = items_project(tmp_path / "p", pg_warehouse.url)
    drop(project, "1.csv")
    yml = project / "penstock.yml"
    yml.write_text(yml.read_text().replace("qty:", f"{long}:").replace("k,qty,ts", f"k,{long},ts"))
    code, _, err = cli("run", "-p", project)
    assert code == 2
    assert f"objects.items.columns.{long}" in err and "keeps 63 bytes" in err


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path: Path, cli: Cli) -> None:
    project = items_project(tmp_path / "p", "postgresql://ann:s3cr3t-pw@127.0.0.1:1/nowhere")
    code, out, err = cli("run", "-p", project)
    assert code != 0
    assert "s3cr3t-pw" not in out + err
    assert "cannot connect to the PostgreSQL warehouse postgresql://ann:***@127.0.0.1:1" in err
    code, out, err = cli("check", "-p", project)
    assert "s3cr3t-pw" not in out + err


def test_a_malformed_url_names_the_key(tmp_path: Path, cli: Cli) -> None:
    project = items_project(tmp_path / "p", "postgresql://ann:pw@127.0.0.1:5432/?schema=x")
    code, _, err = cli("run", "-p", project)
    assert code == 2
    assert "warehouse" in err and "expected postgresql://user@host:port/database" in err
    assert ":pw@" not in err


def test_query_reads_the_postgres_warehouse_read_only(
    tmp_path: Path, pg_warehouse: PgWarehouse, cli: Cli
) -> None:
    project = items_project(tmp_path / "p", pg_warehouse.url)
    drop(project, "1.csv")
    assert penstock.run(project).failures == []
    # unqualified names find the warehouse schema; the ledger is read with its own
    result = as_json(cli, "query", "-p", project, "SELECT k, qty FROM items ORDER BY k")
    assert [(r["k"], r["qty"]) for r in result["rows"]] == [(1, 1)]
    ledger = as_json(
        cli, "query", "-p", project, f'SELECT rows_in FROM "{pg_warehouse.ledger}".loads'
    )
    assert ledger["rows"] == [{"rows_in": 3}]
    for statement in ("DELETE FROM items", "SELECT 1; COMMIT; DELETE FROM items"):
        code, _, err = cli("query", "-p", project, statement)
        assert code == 2, err
    with psycopg.connect(pg_warehouse.conninfo) as conn:
        count = conn.execute(f'SELECT count(*) FROM "{pg_warehouse.schema}".items').fetchone()
    assert count == (1,)


def test_unique_and_references_are_refused_naming_the_column(tmp_path: Path, cli: Cli) -> None:
    project = items_project(tmp_path / "p", "postgresql://ann@127.0.0.1:1/nowhere")
    yml = project / "penstock.yml"
    yml.write_text(
        yml.read_text().replace(
            "qty: {type: integer, min: 0}", "qty: {type: integer, unique: true}"
        )
    )
    code, _, err = cli("run", "-p", project)
    assert code == 2
    assert "objects.items.columns.qty.unique: not available with a PostgreSQL warehouse" in err
