"""`penstock plan`: what a run would do and why, as a table, JSON, Mermaid and DOT; read-only."""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydot

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: shop
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
groups:
  staging: {after: [raw]}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    group: staging
    depends_on: customers
    on_invalid: fail
    columns:
      id: {type: bigint, required: true}
  customers:
    source: landing
    files: "customers/*.csv"
    group: staging
    columns:
      id: {type: bigint, required: true}
  events:
    source: landing
    files: "events/*.csv"
    group: raw
    columns:
      id: {type: bigint, required: true}
"""

ORDER = ["events", "customers", "orders"]
EDGES = {
    ("events.extract", "events.load"),
    ("customers.extract", "customers.load"),
    ("orders.extract", "orders.load"),
    ("events.load", "customers.extract"),
    ("events.load", "orders.extract"),
    ("customers.load", "orders.extract"),
}


def shop(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "shop",
        PROJECT,
        {
            "landing/orders/1.csv": "id\n1\n",
            "landing/customers/1.csv": "id\n10\n",
            "landing/events/1.csv": "id\n100\n",
        },
    )


def plan_json(cli: Cli, project: Path, *args: str) -> dict[str, Any]:
    code, out, err = cli("plan", "-p", project, "--json", *args)
    assert code == 0, err
    payload: dict[str, Any] = json.loads(out)
    return payload


def tree_state(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file under `root` (lake, warehouse, metadata, landing): size, mtime, hash."""
    return {
        str(p.relative_to(root)): (
            p.stat().st_size,
            p.stat().st_mtime_ns,
            hashlib.sha256(p.read_bytes()).hexdigest(),
        )
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_json_lists_nodes_with_depends_on_and_reason(tmp_path: Path, cli: Cli) -> None:
    project = shop(tmp_path)
    payload = plan_json(cli, project)
    nodes = payload["nodes"]
    assert [n["id"] for n in nodes] == [f"{o}.{s}" for o in ORDER for s in ("extract", "load")]
    by_id = {n["id"]: n for n in nodes}
    assert by_id["orders.extract"] | {"dependencies": None} == {
        "id": "orders.extract",
        "object": "orders",
        "kind": "object",
        "step": "extract",
        "group": "staging",
        "depends_on": ["customers.load", "events.load"],
        "reason": "orders depends_on customers; group staging runs after raw",
        "dependencies": None,
    }
    assert by_id["orders.load"]["depends_on"] == ["orders.extract"]
    assert by_id["events.extract"]["depends_on"] == []
    assert {(d, n["id"]) for n in nodes for d in n["depends_on"]} == EDGES
    objects = {o["object"]: o for o in payload["objects"]}
    assert [o["object"] for o in payload["objects"]] == ORDER
    assert objects["orders"]["work"]["files_new"] == 1
    assert objects["orders"]["state"] == "work"
    assert objects["orders"]["would"] == "stage 1 new or changed file(s)"
    assert objects["orders"]["upstream"] == [
        {
            "object": "customers",
            "why": "depends_on",
            "detail": "orders depends_on customers",
            "selected": True,
        },
        {
            "object": "events",
            "why": "group_after",
            "detail": "group staging runs after raw",
            "selected": True,
        },
    ]


def test_plan_follows_the_work_run_after_run(tmp_path: Path, cli: Cli) -> None:
    project = shop(tmp_path)
    code, _, _ = cli("run", "-p", project)
    assert code == 0
    objects = {o["object"]: o for o in plan_json(cli, project)["objects"]}
    assert {n: o["would"] for n, o in objects.items()} == dict.fromkeys(ORDER, "nothing new")
    assert {o["state"] for o in objects.values()} == {"nothing"}

    # a bad file (on_invalid: fail) and a good one after it: the good one waits behind it
    (project / "landing/orders/2.csv").write_text("id\nnot-a-number\n")
    (project / "landing/orders/3.csv").write_text("id\n3\n")
    (project / "landing/events/2.csv").write_text("id\n101\n")
    objects = {o["object"]: o for o in plan_json(cli, project)["objects"]}
    assert objects["orders"]["would"] == "stage 2 new or changed file(s)"
    assert objects["events"]["would"] == "stage 1 new or changed file(s)"
    code, _, _ = cli("run", "-p", project, "-s", "orders")
    assert code == 1

    objects = {o["object"]: o for o in plan_json(cli, project)["objects"]}
    orders = objects["orders"]
    assert orders["state"] == "blocked"
    blocked = orders["work"]["blocked_by"]
    assert blocked["source_file"] == "landing/orders/2.csv"
    assert "on_invalid is fail" in blocked["error"]
    assert orders["work"]["batches_pending"] == 2
    assert orders["would"] == (
        f"blocked by failed batch {blocked['batch_id']} (landing/orders/2.csv): tried again "
        "first; 1 later batch(es) wait behind it"
    )
    assert objects["events"]["would"] == "stage 1 new or changed file(s)"  # not run: still new

    code, out, _ = cli("plan", "-p", project)
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert [row.split("│")[2].strip() for row in rows if row.split("│")[1].strip()] == ORDER
    assert "blocked by failed batch" in out
    assert "customers (depends_on); events (group staging runs after raw)" in out
    assert "Nothing was changed" in out


def test_plan_changes_nothing(tmp_path: Path, cli: Cli) -> None:
    project = shop(tmp_path)
    for args in ((), ("--json",), ("-f", "mermaid"), ("-f", "dot")):
        code, _, _ = cli("plan", "-p", project, *args)
        assert code == 0
    # before any run: no lake, warehouse or metadata store appears
    assert sorted(p.name for p in project.iterdir()) == ["landing", "penstock.yml"]

    code, _, _ = cli("run", "-p", project, "-s", "events")
    assert code == 0
    (project / "landing/events/2.csv").write_text("id\n101\n")
    before = tree_state(project)
    rows_before = query(project, "SELECT count(*) FROM penstock.loads")
    for args in ((), ("--json",), ("-f", "mermaid"), ("-f", "dot"), ("-s", "+orders")):
        code, _, _ = cli("plan", "-p", project, *args)
        assert code == 0
    assert tree_state(project) == before
    assert query(project, "SELECT count(*) FROM penstock.loads") == rows_before == [(1,)]


def test_mermaid_has_every_node_and_edge(tmp_path: Path, cli: Cli) -> None:
    project = shop(tmp_path)
    code, out, _ = cli("plan", "-p", project, "--format", "mermaid")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "flowchart LR"
    labels = dict(re.findall(r'^\s+(n\d+)\["([^"]+)"\]$', out, re.M))
    assert sorted(labels.values()) == sorted(f"{o}.{s}" for o in ORDER for s in ("extract", "load"))
    edges = re.findall(r"^\s+(n\d+) -->(?:\|([a-z_, ]+)\|)? (n\d+)$", out, re.M)
    assert {(labels[a], labels[b]) for a, _, b in edges} == EDGES
    assert len(edges) == len(EDGES)
    why = {(labels[a], labels[b]): label for a, label, b in edges}
    assert why[("customers.load", "orders.extract")] == "depends_on"
    assert why[("events.load", "orders.extract")] == "group_after"
    assert why[("orders.extract", "orders.load")] == ""
    # subgraphs open and close in balance, one per group
    assert [line.strip().split("[")[0] for line in lines if "subgraph" in line] == [
        "subgraph g0",
        "subgraph g1",
    ]
    assert sum(line.strip() == "end" for line in lines) == 2


def test_dot_parses_as_a_digraph_of_the_plan(tmp_path: Path, cli: Cli) -> None:
    project = shop(tmp_path)
    code, out, _ = cli("plan", "-p", project, "-f", "dot")
    assert code == 0
    with warnings.catch_warnings():
        # pydot 4 calls pyparsing's camelCase names, which pyparsing 3.3 deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        (graph,) = pydot.graph_from_dot_data(out)
    assert graph.get_type() == "digraph"
    assert graph.get_name().strip('"') == "shop"
    clusters = {s.get_name().strip('"'): s for s in graph.get_subgraphs()}
    assert set(clusters) == {"cluster_raw", "cluster_staging"}
    members = {
        name: {n.get_name().strip('"') for n in sub.get_nodes()} for name, sub in clusters.items()
    }
    assert members == {
        "cluster_raw": {"events.extract", "events.load"},
        "cluster_staging": {
            f"{o}.{s}" for o in ("customers", "orders") for s in ("extract", "load")
        },
    }
    edges = {
        (e.get_source().strip('"'), e.get_destination().strip('"')): e.get_label()
        for e in graph.get_edges()
    }
    assert set(edges) == EDGES
    assert edges[("customers.load", "orders.extract")].strip('"') == "depends_on"
    assert edges[("events.extract", "events.load")] is None


def test_select_operators_through_the_cli(tmp_path: Path, cli: Cli) -> None:
    project = shop(tmp_path)
    assert [o["object"] for o in plan_json(cli, project, "-s", "+orders")["objects"]] == ORDER
    assert [o["object"] for o in plan_json(cli, project, "-s", "customers")["objects"]] == [
        "customers"
    ]
    payload = plan_json(cli, project, "-s", "customers+")
    assert [o["object"] for o in payload["objects"]] == ["customers", "orders"]
    upstream = {u["object"]: u["selected"] for u in payload["objects"][1]["upstream"]}
    assert upstream == {"customers": True, "events": False}
    code, out, _ = cli("plan", "-p", project, "-s", "customers+", "-f", "mermaid")
    assert "events" not in out  # a drawing of the selection only
    code, out, _ = cli("plan", "-p", project, "-s", "customers+")
    assert "events (not selected) (group staging runs after raw)" in out
    code, _, err = cli("plan", "-p", project, "-s", "+nope")
    assert code == 2
    assert "unknown object 'nope' (available objects: orders, customers, events" in err
    code, _, err = cli("plan", "-p", project, "-f", "png")
    assert (code, "unknown --format 'png'" in err) == (2, True)
    code, _, err = cli("plan", "-p", project, "-f", "dot", "--json")
    assert code == 2


def test_a_cycle_fails_plan_run_and_check_naming_it(tmp_path: Path, cli: Cli) -> None:
    project = write_project(
        tmp_path / "cycle",
        PROJECT.replace("group: raw", "group: raw\n    depends_on: orders"),
        {"landing/events/1.csv": "id\n1\n"},
    )
    cycle = (
        "dependency cycle: orders → events → orders "
        "(orders: group staging runs after raw; events depends_on orders)"
    )
    for command in ("plan", "run"):
        code, _, err = cli(command, "-p", project)
        assert code == 2
        assert cycle in " ".join(err.split())
    assert not (project / "warehouse.duckdb").exists()  # the run did not start
    code, out, _ = cli("check", "-p", project, "--json")
    assert code == 2
    problems = [c["detail"] for c in json.loads(out)["checks"] if c["level"] == "error"]
    assert any(cycle in p for p in problems)
