"""`penstock status` shows the counts the runner recorded as each object's work ended: they are
the warehouse's own, run after run; without them (a store from before they were recorded) it
counts in the warehouse; a SQLite store read through sqlite3 says what SQLAlchemy says."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from penstock.catalog import load_project
from penstock.observe import MetadataStore, status_reads

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: counts
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    order_by: v
    load: merge
    columns:
      id: {type: bigint, required: true}
      v:  {type: integer}
      qty: {type: integer, min: 0}
  readings:
    source: landing
    files: "readings/*.csv"
    on_invalid: warn
    columns:
      id:  {type: bigint, required: true}
      qty: {type: integer, min: 0}
"""


def status(cli: Cli, project: Path) -> dict[str, Any]:
    code, out, _ = cli("status", "-p", project, "--json")
    assert code == 0, out
    return dict(json.loads(out))


def by_object(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["object"]: o for o in report["objects"]}


def warehouse_counts(
    project: Path, names: tuple[str, ...] = ("orders", "readings")
) -> dict[str, tuple[int, int, int, int]]:
    """(rows, batches in the ledger, quarantine held back, loaded anyway), counted in SQL."""
    out = {}
    for name in names:
        ((rows,),) = query(project, f"SELECT count(*) FROM {name}")
        ((batches,),) = query(
            project, f"SELECT count(*) FROM penstock.loads WHERE object = '{name}'"
        )
        ((held, warned),) = query(
            project,
            f"SELECT count(*) FILTER (NOT _loaded), count(*) FILTER (_loaded) "
            f"FROM quarantine.{name}",
        )
        out[name] = (int(rows), int(batches), int(held), int(warned))
    return out


def shown(report: dict[str, Any]) -> dict[str, tuple[int, int, int, int]]:
    return {
        name: (o["rows"], o["batches_loaded"], o["rows_quarantined"], o["rows_warned"])
        for name, o in by_object(report).items()
    }


def test_status_counts_are_the_warehouses_run_after_run(tmp_path: Path, cli: Cli) -> None:
    files = {
        "landing/orders/a.csv": "id,v,qty\n1,1,1\n2,1,-1\n3,1,3\n",
        "landing/readings/a.csv": "id,qty\n1,1\n2,-1\n,4\n",
    }
    project = write_project(tmp_path, PROJECT, files)
    assert cli("run", "-p", project)[0] == 0
    report = status(cli, project)
    assert (
        shown(report)
        == warehouse_counts(project)
        == {
            "orders": (2, 1, 1, 0),
            "readings": (3, 1, 0, 2),  # on_invalid warn: all loaded, the two bad ones recorded
        }
    )
    assert report["notes"] == []
    assert all(o["counted_at"] >= o["last_run_at"] for o in report["objects"])

    # a merge that updates: rows stay, batches grow
    (project / "landing/orders/b.csv").write_text("id,v,qty\n1,2,10\n3,2,30\n4,1,4\n")
    assert cli("run", "-p", project, "-s", "orders")[0] == 0
    assert shown(status(cli, project)) == warehouse_counts(project)
    assert shown(status(cli, project))["orders"] == (3, 2, 1, 0)

    # a rebuild replays into emptied tables: the same counts, recorded again
    assert cli("rebuild", "-p", project)[0] == 0
    assert shown(status(cli, project)) == warehouse_counts(project)


def test_a_store_without_counts_is_counted_in_the_warehouse(tmp_path: Path, cli: Cli) -> None:
    """A store written before counts were recorded (no table, or no row for an object): status
    counts in the warehouse itself, read-only; the next run records the counts."""
    files = {"landing/orders/a.csv": "id,v,qty\n1,1,1\n2,1,-1\n"}
    project = write_project(tmp_path, PROJECT, files)
    assert cli("run", "-p", project)[0] == 0
    expected = shown(status(cli, project))
    store = project / ".penstock" / "metadata.db"
    with sqlite3.connect(store) as conn:
        conn.execute("DROP TABLE object_counts")
    report = status(cli, project)
    assert (
        shown(report)["orders"]
        == expected["orders"]
        == warehouse_counts(project, ("orders",))["orders"]
    )
    assert shown(report)["readings"] == expected["readings"] == (None, 0, 0, 0)  # no table yet
    assert report["notes"] == []

    assert cli("run", "-p", project)[0] == 0  # recreates the table, records the counts
    with sqlite3.connect(store) as conn:
        recorded = conn.execute("SELECT object, table_rows FROM object_counts").fetchall()
    assert sorted(recorded) == [("orders", 1), ("readings", None)]


def test_counts_of_another_table_or_a_missing_warehouse_are_not_shown(
    tmp_path: Path, cli: Cli
) -> None:
    files = {"landing/orders/a.csv": "id,v,qty\n1,1,1\n"}
    project = write_project(tmp_path, PROJECT, files)
    assert cli("run", "-p", project)[0] == 0
    assert by_object(status(cli, project))["orders"]["rows"] == 1
    # `target:` changed since: the recorded counts were of orders, not of orders_v2
    (project / "penstock.yml").write_text(
        (project / "penstock.yml").read_text().replace("load: merge", "load: merge\n    target: v2")
    )
    orders = by_object(status(cli, project))["orders"]
    assert (orders["table"], orders["rows"], orders["batches_loaded"]) == ("v2", None, 1)
    # the warehouse is gone: no figures, and the note says why
    (project / "warehouse.duckdb").unlink()
    report = status(cli, project)
    assert {o["rows"] for o in report["objects"]} == {None}
    assert report["notes"] == ["the warehouse does not exist yet: `penstock run` creates it"]


def test_status_of_a_project_never_run_creates_no_store(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT, {})
    report = status(cli, project)
    assert [o["last_status"] for o in report["objects"]] == [None, None]
    code, out, _ = cli("runs", "-p", project, "--json")
    assert (code, json.loads(out)) == (0, [])
    assert not (project / ".penstock").exists()


def test_sqlite3_reads_what_sqlalchemy_reads(tmp_path: Path, cli: Cli) -> None:
    files = {
        "landing/orders/a.csv": "id,v,qty\n1,1,1\n2,1,-1\n",
        "landing/readings/a.csv": "id,qty\n1,1\n",
    }
    project = write_project(tmp_path, PROJECT, files)
    for _ in range(2):
        assert cli("run", "-p", project)[0] == 0
    (project / "landing/readings/b.csv").write_text("id,qty\n2,-3\n")
    assert cli("run", "-p", project, "-s", "readings")[0] == 0
    url = load_project(project).metadata_url
    names = ["orders", "readings", "never"]
    assert status_reads.sqlite_file(url) is not None  # the sqlite3 path
    with status_reads.reading(url) as rows:
        fast = (
            status_reads.runs(rows, 10),
            status_reads.object_status(rows, names),
            status_reads.object_counts(rows, "counts", names),
        )
    with MetadataStore(url) as store:
        core = (store.runs(10), store.object_status(names), store.object_counts("counts", names))
    assert fast == core
    runs, states, counts = fast
    assert [r.status for r in runs] == ["warning", "success", "warning"]
    assert states["never"].last_status is None and "never" not in counts
    assert counts["readings"].rows == 2 and counts["readings"].rows_warned == 1
