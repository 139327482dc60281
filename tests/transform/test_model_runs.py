"""Consume models in runs: table, view and incremental materialisations with exact contents,
an incremental model reading only new batches (a second run with a new file adds exactly its
rows), checks that warn or fail a model, SQL errors naming the model file and line, models held
back when an input failed, their step rows and OpenLineage events (validated against the spec),
and `penstock lineage MODEL.COLUMN`. One project per module, run twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import penstock
from observe.openlineage_schema import validate_event
from penstock.catalog import load_project
from penstock.engine import RunResult
from penstock.observe import MetadataStore
from penstock.transform.materialize import error_line

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: shop
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  customers:
    source: landing
    files: "customers/*.csv"
    key: [id]
    load: merge
    columns:
      id: {type: bigint, required: true}
      name: {type: text}
      country: {type: text}
  orders:
    source: landing
    files: "orders/*.csv"
    columns:
      order_id: {type: bigint, required: true}
      customer_id: {type: bigint}
      amount: {type: "decimal(12,2)"}
      status: {type: text}
"""

MODELS = {
    # a table, with a check that warns
    "revenue": """\
-- materialized: table
-- checks:
--   - {name: big_enough, expression: "revenue >= 15", severity: warn}
--   - {row_count: {min: 1}}
WITH shipped AS (
  SELECT customer_id, amount FROM orders WHERE status = 'shipped'
)
SELECT c.country,
       sum(s.amount) AS revenue,
       CASE WHEN count(*) > 1 THEN 'many' ELSE 'one' END AS size
FROM shipped s JOIN customers c ON c.id = s.customer_id
GROUP BY c.country
""",
    # a view of a model
    "top_country": """\
/* materialized: view */
SELECT country, revenue FROM revenue ORDER BY revenue DESC LIMIT 1
""",
    # incremental: appends the rows of new batches of orders
    "order_log": """\
-- materialized: incremental
SELECT o.order_id, o.amount * 2 AS doubled, c.name AS customer, o._batch_id
FROM orders o LEFT JOIN customers c ON c.id = o.customer_id
""",
    # incremental with a key: the rows of a key are replaced
    "status_per_customer": """\
-- materialized: incremental
-- key: [customer_id]
SELECT customer_id, max(status) AS last_status, count(*) AS orders_in_batch
FROM orders GROUP BY customer_id
""",
}

CUSTOMERS = "id,name,country\n1,Ann,FR\n2,Bob,DE\n3,Cid,FR\n"
ORDERS_1 = (
    "order_id,customer_id,amount,status\n1,1,10.50,shipped\n2,1,5.00,placed\n3,2,20.00,shipped\n"
)
ORDERS_2 = "order_id,customer_id,amount,status\n4,3,7.00,shipped\n5,1,6.00,shipped\n"


@dataclass
class Runs:
    root: Path
    first: RunResult
    second: RunResult
    after_first: dict[str, list[tuple[Any, ...]]]
    after_second: dict[str, list[tuple[Any, ...]]]
    batches: list[str]  # orders' batch ids, first file first


TABLES = {
    "revenue": "SELECT country, revenue::VARCHAR, size FROM revenue ORDER BY 1",
    "top_country": "SELECT country, revenue::VARCHAR FROM top_country",
    "order_log": "SELECT order_id, doubled::VARCHAR, customer, _batch_id FROM order_log ORDER BY 1",
    "status_per_customer": "SELECT * FROM status_per_customer ORDER BY 1",
    "progress": "SELECT model, object, batch_id FROM penstock.model_batches ORDER BY 3",
    "kinds": "SELECT table_name, table_type FROM information_schema.tables "
    "WHERE table_schema = 'main' ORDER BY 1",
}


def contents(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    return {name: query(root, sql) for name, sql in TABLES.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = Path(tmp_path_factory.mktemp("models"))
    files = {f"models/{n}.sql": sql for n, sql in MODELS.items()}
    files |= {"landing/customers/c1.csv": CUSTOMERS, "landing/orders/o1.csv": ORDERS_1}
    write_project(root, PROJECT, files)
    first = penstock.run(root)
    after_first = contents(root)
    (root / "landing/orders/o2.csv").write_text(ORDERS_2)
    second = penstock.run(root)
    batches = [
        r[0]
        for r in query(
            root, "SELECT batch_id FROM penstock.loads WHERE object = 'orders' ORDER BY loaded_at"
        )
    ]
    return Runs(root, first, second, after_first, contents(root), batches)


def test_table_view_and_incremental_contents(runs: Runs) -> None:
    first, b1 = runs.after_first, runs.batches[0]
    assert first["revenue"] == [("DE", "20.00", "one"), ("FR", "10.50", "one")]
    assert first["top_country"] == [("DE", "20.00")]
    assert first["order_log"] == [
        (1, "21.00", "Ann", b1),
        (2, "10.00", "Ann", b1),
        (3, "40.00", "Bob", b1),
    ]
    assert first["status_per_customer"] == [(1, "shipped", 2), (2, "shipped", 1)]
    assert first["kinds"] == [
        ("customers", "BASE TABLE"),
        ("order_log", "BASE TABLE"),
        ("orders", "BASE TABLE"),
        ("revenue", "BASE TABLE"),
        ("status_per_customer", "BASE TABLE"),
        ("top_country", "VIEW"),
    ]
    second, b2 = runs.after_second, runs.batches[1]
    # the table is built again from everything; the view follows it
    assert second["revenue"] == [("DE", "20.00", "one"), ("FR", "23.50", "many")]
    assert second["top_country"] == [("FR", "23.50")]
    # incremental: exactly the second file's rows were added, the first ones left alone
    assert second["order_log"] == first["order_log"] + [
        (4, "14.00", "Cid", b2),
        (5, "12.00", "Ann", b2),
    ]
    # with a key: customer 1's row replaced by the new batch's, customer 3 added, 2 kept
    assert second["status_per_customer"] == [
        (1, "shipped", 1),
        (2, "shipped", 1),
        (3, "shipped", 1),
    ]
    assert second["progress"] == sorted(
        [(m, "orders", b) for m in ("order_log", "status_per_customer") for b in (b1, b2)],
        key=lambda r: r[2],
    )


def test_outcomes_checks_and_steps(runs: Runs) -> None:
    def outcomes(result: RunResult) -> dict[str, tuple[str, int, dict[str, int]]]:
        return {
            o.object: (o.status, o.rows_loaded, o.reason_counts)
            for o in result.outcomes
            if o.step == "build"
        }

    assert runs.first.selected == [
        "customers",
        "orders",
        "order_log",
        "revenue",
        "status_per_customer",
        "top_country",
    ]
    # FR's 10.50 is under 15: the warning check counts it, the model is written anyway
    assert outcomes(runs.first) == {
        "order_log": ("success", 3, {}),
        "revenue": ("warning", 2, {"check:big_enough": 1}),
        "status_per_customer": ("success", 2, {}),
        "top_country": ("success", 1, {}),
    }
    assert outcomes(runs.second)["order_log"] == ("success", 2, {})
    assert outcomes(runs.second)["revenue"] == ("success", 2, {})
    assert runs.second.status == "success"
    with MetadataStore(load_project(runs.root).metadata_url) as store:
        steps = [s for s in store.steps(runs.first.run_id) if s.step == "build"]
    # a model's rows are not a batch's: a run's row totals stay its batches'
    assert sorted((s.object, s.status, s.rows_in, s.rows_loaded) for s in steps) == [
        ("order_log", "success", 0, 0),
        ("revenue", "warning", 0, 0),
        ("status_per_customer", "success", 0, 0),
        ("top_country", "success", 0, 0),
    ]


def test_a_run_with_nothing_new_skips_incremental_models(runs: Runs) -> None:
    result = penstock.run(runs.root)
    statuses = {o.object: o.status for o in result.outcomes if o.step == "build"}
    assert statuses["order_log"] == "skipped" and statuses["status_per_customer"] == "skipped"
    assert contents(runs.root) == runs.after_second


def test_openlineage_events_of_model_steps_validate_and_carry_column_lineage(runs: Runs) -> None:
    events = [
        json.loads(line)
        for line in (runs.root / ".penstock/openlineage.jsonl").read_text().splitlines()
    ]
    builds = [e for e in events if e["job"]["name"].endswith(".build")]
    assert {e["job"]["name"] for e in builds} == {
        "revenue.build",
        "top_country.build",
        "order_log.build",
        "status_per_customer.build",
    }
    for event in builds:
        validate_event(event)
    done = next(
        e for e in builds if e["job"]["name"] == "revenue.build" and e["eventType"] == "COMPLETE"
    )
    assert [i["name"] for i in done["inputs"]] == ["main.orders", "main.customers"]
    assert done["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 2
    facet = done["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert {
        column: [
            (f["name"], f["field"], f["transformations"][0]["subtype"]) for f in v["inputFields"]
        ]
        for column, v in facet.items()
    } == {
        "country": [("main.customers", "country", "IDENTITY")],
        "revenue": [("main.orders", "amount", "AGGREGATION")],
    }


def test_lineage_of_a_model_column_goes_down_to_the_landing_files(runs: Runs, cli: Cli) -> None:
    code, out, _ = cli("lineage", "top_country.revenue", "-p", runs.root, "--json")
    assert code == 0
    tree = json.loads(out)
    landing = runs.root / "landing/orders"
    assert tree == {
        "unit": "top_country",
        "kind": "model",
        "column": "revenue",
        "dataset": "main.top_country",
        "how": None,
        "sources": [
            {
                "unit": "revenue",
                "kind": "model",
                "column": "revenue",
                "dataset": "main.revenue",
                "how": "IDENTITY",
                "sources": [
                    {
                        "unit": "orders",
                        "kind": "object",
                        "column": "amount",
                        "dataset": "main.orders",
                        "how": "AGGREGATION",
                        "stage_column": "amount",
                        "origins": [str(landing / "o2.csv"), str(landing / "o1.csv")],
                        "origins_total": 2,
                        "sources": [],
                    }
                ],
            }
        ],
    }
    code, out, _ = cli("lineage", "top_country.revenue", "-p", runs.root)
    assert code == 0
    assert "└ aggregated from orders.amount (object, main.orders)" in out
    assert "read from: landing/orders/o2.csv, landing/orders/o1.csv" in out
    # an object's column: typed from its staged batches, read from its landing files
    code, out, _ = cli("lineage", "customers.country", "-p", runs.root, "--json")
    assert code == 0
    assert json.loads(out) == {
        "unit": "customers",
        "kind": "object",
        "column": "country",
        "dataset": "main.customers",
        "how": None,
        "stage_column": "country",
        "origins": [str(runs.root / "landing/customers/c1.csv")],
        "origins_total": 1,
        "sources": [],
    }
    code, _, err = cli("lineage", "revenue.nope", "-p", runs.root)
    assert code == 2
    assert "'revenue' has no column 'nope'" in err


FAILING = {
    # line 3 names a column orders does not have
    "bad_sql": "-- materialized: table\nSELECT order_id,\n       amout AS amount\nFROM orders\n",
    "reads_bad": "SELECT * FROM bad_sql\n",
    # a check of severity error: nothing is written
    "strict": (
        '-- checks:\n--   - {name: positive, expression: "amount > 10"}\nSELECT * FROM orders\n'
    ),
    "fine": "SELECT count(*) AS n FROM orders\n",
    "from_broken": "SELECT * FROM broken\n",
}


def test_failures_name_the_file_and_line_and_hold_back_downstream(tmp_path: Path, cli: Cli) -> None:
    yml = (
        PROJECT
        + """
  broken:
    source: landing
    files: "broken/*.csv"
    on_invalid: fail
    columns:
      id: {type: bigint, required: true}
"""
    )
    files = {f"models/{n}.sql": sql for n, sql in FAILING.items()}
    files |= {
        "landing/customers/c1.csv": CUSTOMERS,
        "landing/orders/o1.csv": ORDERS_1,
        "landing/broken/b.csv": "id\nx\n",
    }
    root = write_project(tmp_path, yml, files)
    code, out, _ = cli("run", "-p", root, "--json")
    assert code == 1
    summary = {o["object"]: (o["status"], o["error"]) for o in json.loads(out)["objects"]}
    status, message = summary["bad_sql"]
    assert status == "failed"
    assert message.startswith(
        "models/bad_sql.sql:3: model 'bad_sql': Binder Error: Referenced column \"amout\""
    )
    assert summary["reads_bad"] == (
        "upstream_failed",
        "not run: upstream bad_sql failed in this run "
        "(`penstock plan --select +reads_bad` shows its upstream)",
    )
    assert summary["from_broken"][0] == "upstream_failed"
    assert summary["strict"] == (
        "failed",
        "models/strict.sql:2: model 'strict': check positive failed on 1 of 3 row(s) "
        "(amount > 10); nothing was written",
    )
    assert summary["fine"] == ("success", None)
    tables = {r[0] for r in query(root, "SELECT table_name FROM information_schema.tables")}
    assert "fine" in tables
    assert not tables & {"bad_sql", "reads_bad", "strict", "from_broken", "strict__penstock_new"}
    assert query(root, "SELECT n FROM fine") == [(3,)]


def test_error_line_finds_the_word_the_engine_quotes() -> None:
    sql = "-- key: [amount]\nSELECT a,\n  b\nFROM t -- amount here is a comment\nWHERE amount > 1\n"
    assert error_line(sql, 'column "amount" does not exist', 2) == 5
    assert error_line(sql, 'Referenced column "t.b" not found', 2) == 3
    assert error_line(sql, "syntax error at end of input", 2) == 2


def test_rebuild_of_an_object_rebuilds_it_and_its_models(runs: Runs, cli: Cli) -> None:
    code, out, _ = cli("rebuild", "orders", "-p", runs.root, "--json")
    assert code == 0
    done = json.loads(out)
    assert [o["object"] for o in done["objects"]] == [
        "orders",
        "order_log",
        "revenue",
        "status_per_customer",
        "top_country",
    ]
    after = contents(runs.root)
    assert {k: v for k, v in after.items() if k != "status_per_customer"} == {
        k: v for k, v in runs.after_second.items() if k != "status_per_customer"
    }
    # the keyed incremental model read both batches at once: one row per customer over both
    assert after["status_per_customer"] == [(1, "shipped", 3), (2, "shipped", 1), (3, "shipped", 1)]
    code, _, err = cli("rebuild", "orders", "--select", "customers", "-p", runs.root)
    assert code == 2 and "give OBJECT or --select, not both" in err


@pytest.mark.chaos
def test_a_run_killed_inside_an_incremental_build_neither_doubles_nor_skips(
    tmp_path: Path,
) -> None:
    """SIGKILL after the model's rows are written, before its progress is: the next run
    adds that batch's rows exactly once."""
    files = {
        "models/order_log.sql": MODELS["order_log"],
        "landing/customers/c1.csv": CUSTOMERS,
        "landing/orders/o1.csv": ORDERS_1,
    }
    root = write_project(tmp_path, PROJECT, files)
    assert penstock.run(root).status == "success"
    (root / "landing/orders/o2.csv").write_text(ORDERS_2)
    killed = subprocess.run(
        [sys.executable, "-m", "penstock.cli.app", "run", "-p", str(root)],
        env={**os.environ, "PENSTOCK_FAULT": "inside_model_transaction"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # the orders loaded; the model's write died with its transaction
    assert query(root, "SELECT count(*) FROM orders") == [(5,)]
    assert query(root, "SELECT count(*) FROM order_log") == [(3,)]
    assert penstock.run(root).status == "success"
    assert query(root, "SELECT order_id FROM order_log ORDER BY 1") == [(i,) for i in range(1, 6)]
    assert query(root, "SELECT count(*) FROM penstock.model_batches") == [(2,)]
