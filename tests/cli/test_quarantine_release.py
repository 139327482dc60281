"""`penstock quarantine release OBJECT` (issue 10, part 6): quarantined rows validated again
against the current contract load exactly once, the accounting stays exact, and a rebuild ends
where the release left the warehouse."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from helpers import query, write_project
from pg_projects import PgWarehouse

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: releasing
warehouse: {warehouse}
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  items:
    source: landing
    files: "items/*.csv"
    key: [id]
    order_by: v
    load: merge
    columns:
      id: {{type: bigint, required: true}}
      v: {{type: integer, required: true}}
      qty: {{type: integer, min: {qty_min}}}
      country: {{type: text, pattern: "^[A-Z]{{2}}$"}}
  events:
    source: landing
    files: "events/*.csv"
    load: append
    columns:
      id: {{type: bigint, required: true}}
      qty: {{type: integer, min: {qty_min}}}
"""

FILES = {
    # batch a: rows 2 (qty -1) and 3 (qty -2) break min: 0; row 4 (country 'uk') its pattern
    "landing/items/a.csv": "id,v,qty,country\n1,1,5,DE\n2,1,-1,FR\n3,1,-2,NL\n4,1,2,uk\n",
    # batch b: id 3 again, later (v 2): it stays when a's row 3 is released (stale)
    "landing/items/b.csv": "id,v,qty,country\n3,2,7,BE\n5,1,-3,AT\n6,1,x,IT\n",
    "landing/events/a.csv": "id,qty\n1,1\n2,-1\n3,-1\n",
}

TABLES = ("items", "quarantine.items", "events", "quarantine.events")


def configure(project: Path, warehouse: str, qty_min: int) -> None:
    (project / "penstock.yml").write_text(PROJECT.format(warehouse=warehouse, qty_min=qty_min))


def contents(project: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Table rows (without the load time, which the merge check leaves to the ledger), the
    quarantine's rows and reasons, and the ledger's accounting, as a release leaves them."""
    return {
        "items": query(project, "SELECT id, v, qty, country, _batch_id FROM items ORDER BY id"),
        "events": query(project, "SELECT id, qty, _batch_id FROM events ORDER BY ALL"),
        "quarantine": query(
            project,
            "SELECT _batch_id, _row_number, _reasons FROM quarantine.items "
            "UNION ALL SELECT _batch_id, _row_number, _reasons FROM quarantine.events ORDER BY ALL",
        ),
        "ledger": ledger(project),
    }


def lake_rows(project: Path, name: str) -> list[tuple[Any, ...]]:
    """(batch, record number) of the rows in the lake's quarantine files of `name`."""
    files = sorted((project / "lake/quarantine" / name).glob("*.parquet"))
    if not files:
        return []
    paths = ", ".join(f"'{f}'" for f in files)
    return duckdb.sql(
        f"SELECT _batch_id, _row_number FROM read_parquet([{paths}]) ORDER BY ALL"
    ).fetchall()


def ledger(project: Path) -> list[tuple[Any, ...]]:
    return query(
        project,
        "SELECT object, source_file, rows_in, rows_loaded, rows_quarantined, rows_duplicate "
        "FROM penstock.loads ORDER BY object, source_file",
    )


def batch(project: Path, name: str) -> str:
    rows = query(project, f"SELECT batch_id FROM penstock.loads WHERE source_file LIKE '%{name}'")
    return str(rows[0][0])


def test_release_after_a_contract_fix(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, "name: x\n", FILES)
    configure(project, "duckdb:///warehouse.duckdb", qty_min=0)
    assert cli("run", "-p", project)[0] == 0
    a, b = batch(project, "items/a.csv"), batch(project, "items/b.csv")
    before = contents(project)
    assert before["ledger"] == [
        ("events", "landing/events/a.csv", 3, 1, 2, 0),
        ("items", "landing/items/a.csv", 4, 1, 3, 0),
        ("items", "landing/items/b.csv", 3, 1, 2, 0),
    ]

    # the contract relaxed: qty may go down to -2 (row 5 of b, qty -3, still fails)
    configure(project, "duckdb:///warehouse.duckdb", qty_min=-2)
    code, out, _ = cli("quarantine", "release", "items", "-p", project, "--dry-run", "--json")
    assert code == 0
    dry = json.loads(out)
    assert (dry["examined"], dry["released"], dry["still_failing"]) == (5, 2, 3)
    assert dry["reasons"] == {"min:qty": 1, "pattern:country": 1, "type:qty": 1}
    assert contents(project) == before  # a dry run changes nothing
    # --where may name _superseded (a and b loaded together: none is superseded)
    code, out, _ = cli(
        "quarantine", "release", "items", "-p", project, "--dry-run", "--json",
        "--where", "NOT _superseded",
    )  # fmt: skip
    assert json.loads(out)["examined"] == 5

    # --where narrows: only batch a's row 2
    where = f"_batch_id = '{a}' AND _row_number = 2"
    code, out, _ = cli("quarantine", "release", "items", "-p", project, "--where", where)
    assert code == 0 and "released 1 of 1 quarantined row(s) (1 loaded, 0 duplicate)" in out
    assert query(project, "SELECT id, qty FROM items ORDER BY id") == [(1, 5), (2, -1), (3, 7)]

    # the rest: a's row 3 (id 3, v 1) is older than b's stored id 3 (v 2): counted, not stored
    code, out, _ = cli("quarantine", "release", "items", "-p", project, "--json")
    assert code == 0
    done = json.loads(out)
    assert (done["examined"], done["released"], done["still_failing"]) == (4, 1, 3)
    assert done["batches"] == [{"batch_id": a, "loaded": 1, "duplicate": 0, "stale": 1}]
    after = contents(project)
    assert after["items"] == [(1, 1, 5, "DE", a), (2, 1, -1, "FR", a), (3, 2, 7, "BE", b)]
    held = query(
        project, "SELECT _batch_id, _row_number, _reasons FROM quarantine.items ORDER BY ALL"
    )
    assert held == sorted([(a, 4, ["pattern:country"]), (b, 2, ["min:qty"]), (b, 3, ["type:qty"])])
    assert lake_rows(project, "items") == [r[:2] for r in held]  # the lake's files agree
    # every released row left the quarantine and entered the accounting once
    assert after["ledger"] == [
        ("events", "landing/events/a.csv", 3, 1, 2, 0),
        ("items", "landing/items/a.csv", 4, 3, 1, 0),
        ("items", "landing/items/b.csv", 3, 1, 2, 0),
    ]
    assert query(project, f"SELECT rows_stale FROM penstock.loads WHERE batch_id = '{a}'") == [(1,)]
    code, out, _ = cli("status", "-p", project, "--json")
    items = next(o for o in json.loads(out)["objects"] if o["object"] == "items")
    assert (items["rows"], items["rows_quarantined"]) == (3, 3)

    # nothing left to release of items; events (append) releases both its rows
    code, out, _ = cli("quarantine", "release", "items", "-p", project, "--json")
    assert json.loads(out)["released"] == 0
    code, out, _ = cli("quarantine", "release", "events", "-p", project)
    assert code == 0 and "released 2 of 2 quarantined row(s) (2 loaded" in out
    after = contents(project)
    e = batch(project, "events/a.csv")
    assert after["events"] == [(1, 1, e), (2, -1, e), (3, -1, e)]
    assert after["ledger"][0] == ("events", "landing/events/a.csv", 3, 3, 0, 0)
    # a rebuild replays the stage zone under the same contract: it ends where the releases
    # left the warehouse
    assert cli("rebuild", "-p", project)[0] == 0
    assert contents(project) == after
    assert lake_rows(project, "items") == [r[:2] for r in held]
    assert lake_rows(project, "events") == []


def pg_contents(pg: PgWarehouse) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(pg.conninfo) as conn:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(sql).fetchall()]

        return {
            "items": rows(
                f'SELECT id, v, qty, country, _batch_id FROM "{pg.schema}".items ORDER BY id'
            ),
            "quarantine": rows(
                f'SELECT _batch_id, _row_number, _reasons FROM "{pg.quarantine}".items '
                "ORDER BY 1, 2"
            ),
            "ledger": rows(
                f"SELECT source_file, rows_in, rows_loaded, rows_quarantined, rows_duplicate "
                f"FROM \"{pg.ledger}\".loads WHERE object = 'items' ORDER BY source_file"
            ),
        }


@pytest.mark.services
def test_release_with_a_correction_on_postgres(
    tmp_path: Path, cli: Cli, pg_warehouse: PgWarehouse
) -> None:
    """On PostgreSQL: a correction (--set) releases a row the contract alone would not; the
    rebuild, which reads the uncorrected stage, releases it again as recorded."""
    project = write_project(tmp_path, "name: x\n", FILES)
    configure(project, pg_warehouse.url, qty_min=0)
    assert cli("run", "-p", project)[0] == 0
    before = pg_contents(pg_warehouse)
    with psycopg.connect(pg_warehouse.conninfo) as conn:
        a, b = (
            r[0]
            for r in conn.execute(
                f'SELECT batch_id FROM "{pg_warehouse.ledger}".loads '
                "WHERE object = 'items' ORDER BY source_file"
            ).fetchall()
        )
    assert before["ledger"] == [
        ("landing/items/a.csv", 4, 1, 3, 0),
        ("landing/items/b.csv", 3, 1, 2, 0),
    ]
    code, out, err = cli(
        "quarantine", "release", "items", "-p", project,
        "--set", "country=upper(country)", "--where", "_reasons = ['pattern:country']",
    )  # fmt: skip
    assert code == 0, err
    assert "released 1 of 1 quarantined row(s) (1 loaded, 0 duplicate)" in out
    after = pg_contents(pg_warehouse)
    assert after["items"] == [(1, 1, 5, "DE", a), (3, 2, 7, "BE", b), (4, 1, 2, "UK", a)]
    assert after["quarantine"] == sorted(
        [(a, 2, ["min:qty"]), (a, 3, ["min:qty"]), (b, 2, ["min:qty"]), (b, 3, ["type:qty"])]
    )
    assert after["ledger"] == [
        ("landing/items/a.csv", 4, 2, 2, 0),
        ("landing/items/b.csv", 3, 1, 2, 0),
    ]
    record = json.loads((project / "lake/releases/items.json").read_text())
    assert [(r["set"], r["rows"]) for r in record] == [({"country": "upper(country)"}, {a: [4]})]
    assert cli("rebuild", "-p", project)[0] == 0
    assert pg_contents(pg_warehouse) == after


def test_release_refuses_what_it_cannot_do(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, "name: x\n", FILES)
    configure(project, "duckdb:///warehouse.duckdb", qty_min=0)
    assert cli("run", "-p", project)[0] == 0
    code, _, err = cli("quarantine", "release", "items", "-p", project, "--set", "nope=1")
    assert code == 2 and "'nope' is not a column of items" in err
    code, _, err = cli("quarantine", "release", "items", "-p", project, "--where", "no_such > 1")
    assert code == 2 and "--where 'no_such > 1': unknown column 'no_such'" in err
    drop = "true; DROP TABLE items"
    code, _, err = cli("quarantine", "release", "items", "-p", project, "--where", drop)
    assert code == 2 and "must be a single expression (no ;)" in err
    code, _, err = cli("quarantine", "release", "items", "-p", project, "--set", "qty=max(qty)")
    assert code == 2 and "not an aggregate" in err
    code, _, err = cli("quarantine", "release", "items", "-p", project, "--where", "qty > 'a")
    assert code == 2 and "--where" in err
    assert query(project, "SELECT count(*) FROM items") == [(2,)]
    code, _, err = cli("quarantine", "release", "items", "-p", project, "--before", "2026-01-01")
    assert code == 2 and "--before belongs to" in err
    code, _, err = cli("quarantine", "release", "items", "-p", project, "--reason", "type:")
    assert code == 2 and "picks rows with --where SQL" in err
    code, _, err = cli("quarantine", "items", "-p", project, "--where", "true")
    assert code == 2 and "--where and --set belong to" in err
    assert not (project / "lake/releases").exists()


@pytest.mark.chaos
def test_a_release_killed_in_its_transaction_loads_nothing_and_is_finished_later(
    tmp_path: Path, cli: Cli
) -> None:
    project = write_project(tmp_path, "name: x\n", FILES)
    configure(project, "duckdb:///warehouse.duckdb", qty_min=0)
    assert cli("run", "-p", project)[0] == 0
    configure(project, "duckdb:///warehouse.duckdb", qty_min=-2)
    before = contents(project)
    command = ["quarantine", "release", "events", "-p", str(project)]
    done = subprocess.run(
        [sys.executable, "-m", "penstock.cli.app", *command],
        env={**os.environ, "PENSTOCK_FAULT": "inside_release_transaction"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert contents(project) == before  # the transaction never committed
    assert (project / "lake/releases/events.json").is_file()  # the record was written first
    # the next release finishes the recorded one first (then finds nothing more)
    code, out, _ = cli("quarantine", "release", "events", "-p", project, "--json")
    assert code == 0
    assert (json.loads(out)["replayed"], json.loads(out)["examined"]) == (2, 0)
    e = batch(project, "events/a.csv")
    assert query(project, "SELECT id, qty FROM events ORDER BY id") == [(1, 1), (2, -1), (3, -1)]
    assert ledger(project)[0] == ("events", "landing/events/a.csv", 3, 3, 0, 0)
    assert query(project, "SELECT count(*) FROM quarantine.events") == [(0,)]
    record = json.loads((project / "lake/releases/events.json").read_text())
    assert [r["rows"] for r in record] == [{e: [2, 3]}]


MODES = """
name: modes
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  cust:
    source: landing
    files: "c/*.csv"
    key: [id]
    order_by: ts
    load: scd2
    columns:
      id: {type: bigint, required: true}
      ts: {type: timestamp, required: true}
      tier: {type: text, in: [gold, silver]}
  snap:
    source: landing
    files: "r/*.csv"
    load: replace
    columns:
      id: {type: bigint, required: true}
      qty: {type: integer, min: 0}
"""


def test_release_into_scd2_history_and_a_replaced_snapshot(tmp_path: Path, cli: Cli) -> None:
    """SCD2: a released row of an earlier batch is placed in the key's history, not made
    current; replace: a released row of a snapshot the table no longer holds stays out."""
    project = write_project(
        tmp_path,
        MODES,
        {
            "landing/c/a.csv": "id,ts,tier\n1,2024-01-01,gold\n2,2024-01-01,bronze\n",
            "landing/r/a.csv": "id,qty\n1,1\n2,-1\n",
        },
    )
    assert cli("run", "-p", project)[0] == 0
    (project / "landing/c/b.csv").write_text(
        "id,ts,tier\n1,2024-02-01,silver\n2,2024-02-01,silver\n"
    )
    (project / "landing/r/b.csv").write_text("id,qty\n3,1\n4,-2\n")
    assert cli("run", "-p", project)[0] == 0
    yml = project / "penstock.yml"
    yml.write_text(
        yml.read_text().replace("silver]", "silver, bronze]").replace("min: 0", "min: -5")
    )
    assert cli("quarantine", "release", "cust", "-p", project)[0] == 0
    code, out, _ = cli("quarantine", "release", "snap", "-p", project, "--json")
    assert code == 0
    released = {b["stale"]: (b["loaded"], b["duplicate"]) for b in json.loads(out)["batches"]}
    assert released == {0: (1, 0), 1: (1, 0)}  # b's row joins its snapshot, a's is stale

    def state() -> dict[str, list[tuple[Any, ...]]]:
        return {
            "cust": query(
                project,
                "SELECT id, tier, _valid_from::DATE::VARCHAR, _valid_to::DATE::VARCHAR, "
                "_is_current FROM cust ORDER BY id, _valid_from",
            ),
            "snap": query(project, "SELECT id, qty FROM snap ORDER BY id"),
            "held": query(project, "SELECT count(*) FROM quarantine.cust, quarantine.snap"),
            "ledger": ledger(project),
        }

    after = state()
    assert after["cust"] == [
        (1, "gold", "2024-01-01", "2024-02-01", False),
        (1, "silver", "2024-02-01", None, True),
        (2, "bronze", "2024-01-01", "2024-02-01", False),
        (2, "silver", "2024-02-01", None, True),
    ]
    assert after["snap"] == [(3, 1), (4, -2)]
    assert after["held"] == [(0,)]
    assert cli("rebuild", "-p", project)[0] == 0
    assert state() == after


def test_a_missing_column_holds_its_rows_while_the_policy_quarantines(
    tmp_path: Path, cli: Cli
) -> None:
    strict = (
        "name: mc\nsources:\n  landing: {kind: files, path: ./landing, settle: 0s}\n"
        "objects:\n  items:\n    source: landing\n    files: 'i/*.csv'\n"
        "    schema_drift: {missing_columns: quarantine}\n"
        "    columns:\n      id: {type: bigint, required: true}\n      country: {type: text}\n"
    )
    project = write_project(tmp_path, strict, {"landing/i/a.csv": "id\n1\n2\n"})
    assert cli("run", "-p", project)[0] == 0
    code, out, _ = cli("quarantine", "release", "items", "-p", project, "--json")
    assert code == 0 and json.loads(out)["reasons"] == {"schema:missing:country": 2}
    assert query(project, "SELECT count(*) FROM items") == [(0,)]
    # the policy back to its default (a missing column reads as NULL): they load
    (project / "penstock.yml").write_text(
        strict.replace("    schema_drift: {missing_columns: quarantine}\n", "")
    )
    code, out, _ = cli("quarantine", "release", "items", "-p", project, "--json")
    assert code == 0 and json.loads(out)["released"] == 2
    assert query(project, "SELECT id, country FROM items ORDER BY id") == [(1, None), (2, None)]
