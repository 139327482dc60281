"""`penstock check` and `penstock run` on the command line: a glob that matches nothing is a
warning in both, `check --json` gives the data findings as structures, and `check` writes
nothing to the project's lake, warehouse or metadata store."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from helpers import log_messages, write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: shop
sources: {landing: {kind: files, path: ./landing, settle: 0s}}
objects:
  orders:
    source: landing
    files: "orders/*.cvs"
    format: csv
    columns:
      order_id: {type: integer, required: true}
      amount: {type: "decimal(10,2)", min: 0}
  customers:
    source: landing
    files: "customers/*.csv"
    columns:
      customer_id: {type: integer, required: true}
      name: {type: text}
"""
ORDERS = "order_id,amount\n1,5\n2,-1\n3,x\n4,7\n"
CUSTOMERS = "customer_id;name\n1;Ann\n2;Bob\n"


def test_a_glob_matching_nothing_is_a_warning_in_check_with_the_near_miss(
    tmp_path: Path, cli: Cli
) -> None:
    project = write_project(
        tmp_path,
        PROJECT,
        {"landing/orders/a.csv": ORDERS, "landing/orders/b.csv": ORDERS},
    )
    (project / "landing" / "customers").mkdir()
    code, out, _ = cli("check", "-p", project)
    assert code == 0, out
    assert (
        'warning  object orders: 0 files matched "landing/orders/*.cvs"; '
        'did you mean "landing/orders/*.csv" (2 files)?'
    ) in out
    assert 'warning  object customers: 0 files matched "landing/customers/*.csv"' in out


def test_run_says_which_globs_matched_nothing(tmp_path: Path, cli: Cli) -> None:
    project = write_project(
        tmp_path,
        PROJECT.replace("customers/*.csv", "customers/*.CSV"),
        {"landing/orders/a.csv": ORDERS, "landing/customers/c.csv": CUSTOMERS},
    )
    code, out, _ = cli("run", "-p", project)
    assert code == 0
    assert out.index("Run summary") < out.index(
        'warning orders: 0 files matched "landing/orders/*.cvs"; '
        'did you mean "landing/orders/*.csv" (1 file)?'
    )
    assert (
        'warning customers: 0 files matched "landing/customers/*.CSV"; did you mean '
        '"landing/customers/*.csv" (1 file)?'
    ) in out
    assert "Nothing was staged: no file matched the glob of any selected object." in out

    code, out, _ = cli("run", "-p", project, "--json")
    run = json.loads(out)
    assert run["nothing_matched"] is True
    assert [(m["object"], m["pattern"], m["suggestions"]) for m in run["no_match"]] == [
        ("orders", "landing/orders/*.cvs", [{"pattern": "landing/orders/*.csv", "files": 1}]),
        (
            "customers",
            "landing/customers/*.CSV",
            [{"pattern": "landing/customers/*.csv", "files": 1}],
        ),
    ]
    assert (
        'orders: 0 files matched "landing/orders/*.cvs"; did you mean "landing/orders/*.csv" '
        "(1 file)?"
    ) in log_messages(project, run["run_id"])


def test_a_run_where_some_glob_matched_does_not_say_nothing_was_staged(
    tmp_path: Path, cli: Cli
) -> None:
    project = write_project(
        tmp_path,
        PROJECT.replace(";", ","),
        {"landing/customers/c.csv": CUSTOMERS.replace(";", ",")},
    )
    code, out, _ = cli("run", "-p", project, "--json")
    run = json.loads(out)
    assert code == 0 and run["nothing_matched"] is False
    assert [m["object"] for m in run["no_match"]] == ["orders"]
    assert [m["note"] for m in run["no_match"]] == [
        'the source holds 1 other file(s), e.g. "landing/customers/c.csv"'
    ]
    code, out, _ = cli("run", "-p", project)
    assert "Nothing was staged" not in out
    assert 'warning orders: 0 files matched "landing/orders/*.cvs"' in out


def test_check_json_gives_each_object_s_findings(tmp_path: Path, cli: Cli) -> None:
    project = write_project(
        tmp_path,
        PROJECT.replace("*.cvs", "*.csv").replace("name: {type: text}", "nme: {type: text}"),
        {"landing/orders/a.csv": ORDERS, "landing/customers/c.csv": CUSTOMERS},
    )
    code, out, _ = cli("check", "-p", project, "--json")
    report = json.loads(out)
    assert code == 2 and report["ok"] is False
    orders, customers = report["objects"]
    assert orders == {
        "object": "orders",
        "pattern": "landing/orders/*.csv",
        "files_matched": 1,
        "file": "landing/orders/a.csv",
        "sample_rows": 4,
        "sample_complete": True,
        "header": ["order_id", "amount"],
        "missing_columns": [],
        "extra_columns": [],
        "suggested_settings": [],
        "rule_failures": [
            {"reason": "min:amount", "rows": 1, "share": 0.25, "example": "-1"},
            {"reason": "type:amount", "rows": 1, "share": 0.25, "example": "x"},
        ],
        "malformed": 0,
        "no_match": None,
        "findings": orders["findings"],
    }
    assert [f["level"] for f in orders["findings"]] == ["ok", "warning"]
    assert customers["header"] == ["customer_id;name"]
    assert customers["missing_columns"] == [
        {
            "column": "customer_id",
            "required": True,
            "closest": ["customer_id;name"],
            "source_name": "customer_id",
        },
        {"column": "nme", "required": False, "closest": [], "source_name": "nme"},
    ]
    assert customers["suggested_settings"] == [
        {
            "setting": "csv.delimiter",
            "value": ";",
            "yaml": 'csv: {delimiter: ";"}',
            "reason": "with it 1 of 2 contract column(s) are in the header",
        }
    ]
    errors = [c for c in report["checks"] if c["level"] == "error"]
    assert [(c["what"], c["ok"]) for c in errors] == [("object customers", False)]


def _files(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under `root`: size, mtime and content hash."""
    return {
        str(p.relative_to(root)): (
            p.stat().st_size,
            p.stat().st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_check_writes_nothing_to_the_project(tmp_path: Path, cli: Cli) -> None:
    project = write_project(
        tmp_path,
        PROJECT.replace("*.cvs", "*.csv"),
        {"landing/orders/a.csv": ORDERS, "landing/customers/c.csv": CUSTOMERS.replace(";", ",")},
    )
    # a new project: check creates no lake, warehouse or metadata store
    before = _files(project)
    code, out, _ = cli("check", "-p", project)
    assert code == 0, out
    assert "(not created yet: the first run creates it)" in out
    assert _files(project) == before
    assert sorted(p.name for p in project.iterdir()) == ["landing", "penstock.yml"]

    # after a run: the lake, warehouse and store stay byte for byte and mtime for mtime
    assert cli("run", "-p", project)[0] == 0
    (project / "landing" / "orders" / "b.csv").write_text(ORDERS.replace("1,5", "9,9"))
    before = _files(project)
    assert any(name.startswith("lake/stage/orders/") for name in before)
    code, out, _ = cli("check", "-p", project)
    assert code == 0, out
    assert "ok       warehouse: duckdb:///warehouse.duckdb\n" in out
    assert "ok       metadata store: sqlite:///.penstock/metadata.db\n" in out
    assert _files(project) == before


def test_check_warns_while_a_run_holds_the_warehouse(tmp_path: Path, cli: Cli) -> None:
    project = write_project(
        tmp_path, PROJECT.replace("*.cvs", "*.csv"), {"landing/orders/a.csv": ORDERS}
    )
    assert cli("run", "-p", project, "-s", "orders")[0] == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', "
            "flush=True); time.sleep(60)",
            str(project / "warehouse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        code, out, _ = cli("check", "-p", project, "--json")
    finally:
        holder.kill()
        holder.communicate()
    assert code == 0, out
    (warehouse,) = [c for c in json.loads(out)["checks"] if c["what"] == "warehouse"]
    assert warehouse["level"] == "warning" and warehouse["ok"] is True
    assert "in use by another process (a run?)" in warehouse["detail"]
    assert f"(PID {holder.pid})" in warehouse["detail"]


@pytest.mark.services
def test_check_reaches_a_postgres_store_without_creating_its_tables(
    tmp_path: Path, cli: Cli, pg_url: str
) -> None:
    yml = PROJECT.replace("*.cvs", "*.csv").replace(
        "name: shop\n", f"name: shop\nmetadata: {pg_url}\n"
    )
    project = write_project(tmp_path, yml, {"landing/orders/a.csv": ORDERS})
    code, out, _ = cli("check", "-p", project, "--json")
    assert code == 0, out
    (store,) = [c for c in json.loads(out)["checks"] if c["what"] == "metadata store"]
    assert store["level"] == "ok"
    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)


def test_check_reports_a_postgres_store_it_cannot_reach(tmp_path: Path, cli: Cli) -> None:
    yml = PROJECT.replace("*.cvs", "*.csv").replace(
        "name: shop\n", "name: shop\nmetadata: postgresql://nobody@127.0.0.1:1/none\n"
    )
    project = write_project(tmp_path, yml, {"landing/orders/a.csv": ORDERS})
    code, out, _ = cli("check", "-p", project, "--json")
    assert code == 2
    (store,) = [c for c in json.loads(out)["checks"] if c["what"] == "metadata store"]
    assert store["level"] == "error"
    assert store["detail"].startswith("postgresql://nobody@127.0.0.1:1/none: cannot connect: ")
