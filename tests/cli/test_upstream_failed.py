"""A run takes objects in the plan's order; an object that fails holds back the objects
downstream of it in that run (`upstream_failed`), not the others, and the next run after the
fix loads everything exactly once."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from penstock.catalog import load_project
from penstock.observe import MetadataStore

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

# declared downstream first: the plan runs customers, orders, items, then events
PROJECT = """
name: chain
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.csv"
    depends_on: orders
    columns:
      id: {type: bigint, required: true}
  orders:
    source: landing
    files: "orders/*.csv"
    depends_on: [customers]
    columns:
      id: {type: bigint, required: true}
  customers:
    source: landing
    files: "customers/*.csv"
    on_invalid: fail
    columns:
      id: {type: bigint, required: true}
  events:
    source: landing
    files: "events/*.csv"
    columns:
      id: {type: bigint, required: true}
"""
ORDER = ["customers", "orders", "items", "events"]


def run_json(cli: Cli, project: Path, *args: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = cli("run", "-p", project, "--json", *args)
    return code, json.loads(out)


def object_steps(project: Path, run_id: str) -> list[tuple[str, str, str | None]]:
    with MetadataStore(load_project(project).metadata_url) as store:
        return [(s.object, s.status, s.error) for s in store.steps(run_id) if s.step == "object"]


def loads(project: Path) -> dict[str, int]:
    rows = query(project, "SELECT object, count(*) FROM penstock.loads GROUP BY object")
    return dict(rows)


def test_a_failed_upstream_holds_back_its_downstream_only(tmp_path: Path, cli: Cli) -> None:
    project = write_project(
        tmp_path,
        PROJECT,
        {
            "landing/customers/1.csv": "id\n1\nnot-a-number\n",  # on_invalid fail: fails
            "landing/orders/1.csv": "id\n10\n11\n",
            "landing/items/1.csv": "id\n20\n",
            "landing/events/1.csv": "id\n30\n31\n32\n",
        },
    )
    code, run = run_json(cli, project)
    assert code == 1
    assert run["status"] == "failed"
    assert [(o["object"], o["status"]) for o in run["objects"]] == [
        ("customers", "failed"),
        ("orders", "upstream_failed"),
        ("items", "upstream_failed"),
        ("events", "success"),
    ]
    errors = {o["object"]: o["error"] for o in run["objects"]}
    assert errors["orders"].startswith("not run: upstream customers failed in this run")
    assert errors["items"].startswith("not run: upstream customers failed in this run")
    assert [f["object"] for f in run["failures"]] == ["customers"]  # held back is not failed

    # the store: object steps in the plan's order, the held-back ones with their reason
    steps = object_steps(project, run["run_id"])
    assert [(o, s) for o, s, _ in steps] == [
        ("customers", "failed"),
        ("orders", "upstream_failed"),
        ("items", "upstream_failed"),
        ("events", "success"),
    ]
    assert steps[1][2] == errors["orders"]
    # nothing of orders or items was read or staged; events loaded
    assert not (project / "lake/stage/orders").exists()
    assert not (project / "lake/stage/items").exists()
    assert loads(project) == {"events": 1}
    assert query(project, "SELECT sum(id) FROM events") == [(93,)]

    # OpenLineage: a held-back object's job was aborted, not failed nor completed
    text = (project / ".penstock/openlineage.jsonl").read_text()
    lineage = [json.loads(line) for line in text.splitlines()]
    ends = {e["job"]["name"]: e["eventType"] for e in lineage if e["eventType"] != "START"}
    assert [ends[n] for n in ("customers", "orders", "items", "events")] == [
        "FAIL",
        "ABORT",
        "ABORT",
        "COMPLETE",
    ]

    code, out, _ = cli("status", "-p", project, "--json")
    status = {o["object"]: o["last_status"] for o in json.loads(out)["objects"]}
    assert status == {
        "items": "upstream_failed",
        "orders": "upstream_failed",
        "customers": "failed",
        "events": "success",
    }
    code, out, _ = cli("runs", "-p", project, "--json", "--limit", "1")
    (latest,) = json.loads(out)
    # stage and load of customers (the load failed) and of events: held back is no step
    assert (latest["status"], latest["steps"], latest["failed_steps"]) == ("failed", 4, 1)
    code, out, _ = cli("status", "-p", project)
    assert "upstream_failed" in out

    # the fix: skip the bad batch, deliver the corrected file; everything loads, once
    code, out, _ = cli("batches", "-p", project, "customers", "--json")
    (failed,) = [b for b in json.loads(out)["batches"] if b["status"] == "failed"]
    code, _, _ = cli(
        "batches", "-p", project, "skip", "customers", failed["batch_id"], "--reason", "bad id"
    )
    assert code == 0
    (project / "landing/customers/1.csv").write_text("id\n1\n2\n")
    code, run = run_json(cli, project)
    assert code == 0, run
    assert [(o["object"], o["status"]) for o in run["objects"]] == [
        (name, "success") for name in ORDER
    ]
    assert loads(project) == {"customers": 1, "orders": 1, "items": 1, "events": 1}
    assert query(project, "SELECT sum(id) FROM customers") == [(3,)]
    assert query(project, "SELECT sum(id) FROM orders") == [(21,)]
    assert query(project, "SELECT sum(id) FROM items") == [(20,)]
    assert query(project, "SELECT count(*) FROM events") == [(3,)]

    code, run = run_json(cli, project)  # and again: nothing new, nothing loaded twice
    assert code == 0
    assert loads(project) == {"customers": 1, "orders": 1, "items": 1, "events": 1}
    assert query(project, "SELECT count(*) FROM orders") == [(2,)]


def test_not_selected_upstream_does_not_hold_back(tmp_path: Path, cli: Cli) -> None:
    """Only failures in the same run hold objects back: an upstream that failed in an
    earlier run, and is not selected now, does not."""
    project = write_project(
        tmp_path,
        PROJECT,
        {
            "landing/customers/1.csv": "id\nnot-a-number\n",
            "landing/orders/1.csv": "id\n10\n",
        },
    )
    code, run = run_json(cli, project, "-s", "+orders")
    assert code == 1
    assert [(o["object"], o["status"]) for o in run["objects"]] == [
        ("customers", "failed"),
        ("orders", "upstream_failed"),
    ]
    code, run = run_json(cli, project, "-s", "orders+")
    assert code == 0
    assert [(o["object"], o["status"]) for o in run["objects"]] == [
        ("orders", "success"),
        ("items", "success"),
    ]
    assert loads(project) == {"orders": 1}


def test_rebuild_runs_in_plan_order(tmp_path: Path, cli: Cli) -> None:
    project = write_project(
        tmp_path,
        PROJECT,
        {f"landing/{name}/1.csv": "id\n1\n" for name in ORDER},
    )
    code, _, _ = cli("run", "-p", project)
    assert code == 0
    code, out, _ = cli("rebuild", "-p", project, "--json")
    assert code == 0
    rebuild = json.loads(out)
    assert [o["object"] for o in rebuild["objects"]] == ORDER
    assert [o for o, _, _ in object_steps(project, rebuild["run_id"])] == ORDER
    assert loads(project) == dict.fromkeys(ORDER, 1)
