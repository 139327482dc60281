"""`penstock query "SELECT …"` reads the warehouse over a read-only connection: a table cut
to the width or JSON, a statement that writes refused before it runs, DuckDB's error on one
line, and a real concurrent writer (a live `penstock run`) waited for, never written past."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: querying
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.csv"
    key: [id]
    columns:
      id:     {type: bigint, required: true}
      name:   {type: text}
      price:  {type: "decimal(8,2)", min: 0}
"""
BODY = "id,name,price\n1,apple,1.50\n2,pear,-2.00\n3,plum,0.25\n"


@pytest.fixture
def project(tmp_path: Path, cli: Cli) -> Path:
    root = write_project(tmp_path, PROJECT, {"landing/items/a.csv": BODY})
    assert cli("run", "-p", root)[0] == 0
    return root


def cells(out: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("│").split("│")]
        for line in out.splitlines()
        if line.startswith("│")
    ]


def test_a_table_of_the_rows(project: Path, cli: Cli) -> None:
    code, out, err = cli("query", "SELECT id, name, price FROM items ORDER BY id", "-p", project)
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    assert [c.strip() for c in header.strip("┃").split("┃")] == ["id", "name", "price"]
    assert cells(out) == [["1", "apple", "1.50"], ["3", "plum", "0.25"]]
    assert "2 rows" in out
    # the quarantine and the ledger are tables too; NULL shows as NULL
    code, out, _ = cli(
        "query",
        "SELECT id, price, _reasons, NULL AS nothing FROM quarantine.items",
        "-p",
        project,
    )
    assert code == 0
    assert cells(out) == [["2", "-2.00", '["min:price"]', "NULL"]]


def test_json_shape_and_limit(project: Path, cli: Cli) -> None:
    code, out, _ = cli("query", "FROM items ORDER BY id", "-p", project, "--json", "--limit", "1")
    assert code == 0
    payload = json.loads(out)
    assert list(payload) == ["columns", "rows", "row_count", "truncated"]
    assert payload["columns"][:3] == [
        {"name": "id", "type": "BIGINT"},
        {"name": "name", "type": "VARCHAR"},
        {"name": "price", "type": "DECIMAL(8,2)"},
    ]
    assert [c["name"] for c in payload["columns"][3:]] == ["_batch_id", "_loaded_at"]
    (row,) = payload["rows"]
    assert (row["id"], row["name"], row["price"]) == (1, "apple", 1.5)
    assert row["_batch_id"].startswith("items-")
    assert (payload["row_count"], payload["truncated"]) == (1, True)
    code, out, _ = cli("query", "SELECT 1 AS a, 2 AS a", "-p", project, "--json")
    assert json.loads(out)["rows"] == [{"a": 1, "a_2": 2}]
    code, out, _ = cli("query", "FROM items", "-p", project, "--json", "--limit", "0")
    assert (json.loads(out)["row_count"], json.loads(out)["truncated"]) == (2, False)
    # the table says when rows were left out
    code, out, _ = cli("query", "FROM range(5)", "-p", project, "--limit", "3")
    assert len(cells(out)) == 3
    assert "3 rows shown, the query returns more" in out and "0 for all" in out


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("INSERT INTO items (id) VALUES (9)", "INSERT"),
        ("DELETE FROM items", "DELETE"),
        ("UPDATE items SET name = 'x'", "UPDATE"),
        ("DROP TABLE items", "DROP"),
        ("CREATE TABLE t AS SELECT 1", "CREATE"),
        ("COPY items TO 'out.csv'", "COPY"),
        ("ATTACH 'other.duckdb' AS other", "ATTACH"),
        ("INSTALL httpfs", "LOAD"),
        ("SET threads = 1", "SET"),
    ],
)
def test_a_statement_that_writes_is_refused(
    project: Path, cli: Cli, statement: str, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project)
    code, out, err = cli("query", statement, "-p", project)
    assert code == 2 and out == ""
    assert f"refused: {kind} is not a read-only statement" in err
    assert len(err.strip().splitlines()) <= 2  # one message (rich may wrap it)
    assert query(project, "SELECT id, name FROM items ORDER BY id") == [(1, "apple"), (3, "plum")]
    assert not (project / "out.csv").exists() and not (project / "other.duckdb").exists()


def test_one_statement_at_a_time(project: Path, cli: Cli) -> None:
    code, _, err = cli("query", "SELECT 1; DELETE FROM items", "-p", project)
    assert code == 2 and "give one statement at a time (2 given)" in err
    assert query(project, "SELECT count(*) FROM items") == [(2,)]


def test_errors_show_duckdbs_message_on_one_line(project: Path, cli: Cli) -> None:
    code, out, err = cli("query", "SELECT * FROM itemz", "-p", project)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("error: Catalog Error: Table with name itemz does not exist!")
    assert 'Did you mean "items"' in line
    code, _, err = cli("query", "SELEC 1", "-p", project)
    assert code == 2 and err.strip() == 'error: Parser Error: syntax error at or near "SELEC"'


def test_no_warehouse_yet(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT)
    code, _, err = cli("query", "SELECT 1", "-p", project)
    assert code == 1
    assert "the warehouse warehouse.duckdb does not exist yet: `penstock run` creates it" in err


def test_help_has_an_example(cli: Cli) -> None:
    code, out, _ = cli("query", "--help")
    assert code == 0
    assert 'penstock query "FROM orders LIMIT 5"' in out
    code, out, _ = cli("--help")
    assert "query" in {line.split()[1] for line in out.splitlines() if line.startswith("│ ")}


# -- a concurrent writer -------------------------------------------------------------------


@pytest.fixture
def live_run(project: Path) -> Iterator[subprocess.Popen[str]]:
    """A real `penstock run` holding the warehouse for writing (stuck after staging a file)."""
    (project / "landing/items/b.csv").write_text("id,name,price\n4,fig,3.00\n")
    env = {**os.environ, "PENSTOCK_FAULT": "after_stage:hang"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    run = subprocess.Popen(
        [sys.executable, "-m", "penstock.cli.app", "run", "-p", str(project)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while (
            not (project / "lake/stage/items").exists()
            or len(list((project / "lake/stage/items").glob("*/manifest.json"))) < 2
        ):
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "the run never staged b.csv"
            time.sleep(0.1)
        yield run
    finally:
        run.kill()
        run.communicate()


@pytest.mark.chaos
def test_a_query_waits_for_a_live_run_then_names_it(
    project: Path, live_run: subprocess.Popen[str], cli: Cli
) -> None:
    started = time.monotonic()
    code, out, err = cli("query", "SELECT count(*) FROM items", "-p", project, "--wait", "0.5")
    waited = time.monotonic() - started
    assert code == 1 and out == ""
    assert 0.5 <= waited < 10
    assert f"PID {live_run.pid}" in err
    assert "gave up after waiting 0.5s" in err and "--wait SECONDS" in err


def hold(database: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process writing the warehouse for `seconds`, then letting go."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            "c = duckdb.connect(sys.argv[1])\n"
            "c.execute(\"INSERT INTO items (id, name, price) VALUES (7, 'kiwi', 7.00)\")\n"
            "print('locked', flush=True)\n"
            "time.sleep(float(sys.argv[2]))\n"
            "c.close()\n"
            "print('released', flush=True)\n"
            "time.sleep(60)",
            str(database),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_query_reads_once_the_writer_lets_go_and_then_lets_go_itself(
    project: Path, cli: Cli
) -> None:
    holder = hold(project / "warehouse.duckdb", 1.5)
    try:
        started = time.monotonic()
        code, out, err = cli(
            "query", "SELECT id FROM items ORDER BY id", "-p", project, "--json", "--wait", "30"
        )
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.communicate()
    assert code == 0, err
    assert waited >= 1.0
    assert f"PID {holder.pid}" in err and "waiting up to 30s" in err
    # it sees what the writer committed
    assert [r["id"] for r in json.loads(out)["rows"]] == [1, 3, 7]
    # and holds nothing afterwards: a run opens the warehouse without waiting
    (project / "landing/items/c.csv").write_text("id,name,price\n8,lime,8.00\n")
    code, _, err = cli("run", "-p", project, "--wait", "0")
    assert code == 0, err
    assert query(project, "SELECT max(id) FROM items") == [(8,)]
