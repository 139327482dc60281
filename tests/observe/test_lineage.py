"""Lineage of real runs: OpenLineage events (file and HTTP transports) that validate against
the spec's schemas and pair START with COMPLETE/FAIL per step, and the lineage the store
records (`penstock lineage`)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpers import query, write_project
from openlineage_schema import validate_event

CLI = Callable[..., tuple[int, str, str]]

PROJECT = """
name: shop
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [order_id]
    load: merge
    columns:
      order_id: {type: bigint, required: true}
      order_ts: {type: timestamp, required: true, from: "Order Time"}
      amount:   {type: "decimal(12,2)", min: 0}
    checks:
      - {name: small, expression: "amount < 1000"}
"""
# two files: staged together and loaded in one micro-batch, each its own step
FILES = {
    "landing/orders/a.csv": "order_id,Order Time,amount\n1,2024-01-01 10:00,5.00\n"
    "2,2024-01-01 11:00,-1\n",
    "landing/orders/b.csv": "order_id,Order Time,amount\n3,2024-01-02 10:00,7.50\n",
}


def events_of(project: Path) -> list[dict[str, Any]]:
    path = project / ".penstock" / "openlineage.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_paired(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Every run id has one START first and one terminal event last; returns them by id."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_run.setdefault(e["run"]["runId"], []).append(e)
    for run_id, mine in by_run.items():
        kinds = [e["eventType"] for e in mine]
        assert kinds[0] == "START" and len(kinds) == 2, (run_id, kinds)
        assert kinds[1] in ("COMPLETE", "FAIL", "ABORT"), (run_id, kinds)
        assert mine[0]["job"] == mine[1]["job"] and mine[0]["eventTime"] <= mine[1]["eventTime"]
    return by_run


def test_a_run_emits_valid_paired_events_with_parents_quality_and_column_lineage(
    tmp_path: Path, cli: CLI
) -> None:
    project = write_project(tmp_path / "p", PROJECT, FILES)
    code, out, _ = cli("run", "-p", project, "--json")
    assert code == 0, out
    events = events_of(project)
    facets = Counter(key for e in events for key in validate_event(e))
    assert {
        "parent",
        "jobType",
        "schema",
        "columnLineage",
        "outputStatistics",
        "dataQualityMetrics",
        "dataQualityAssertions",
    } <= set(facets)
    by_run = assert_paired(events)
    jobs = Counter(pair[0]["job"]["name"] for pair in by_run.values())
    assert jobs == {"run": 1, "orders": 1, "orders.stage": 2, "orders.load": 2}
    assert {p[0]["job"]["namespace"] for p in by_run.values()} == {"shop"}

    # parents: run <- object step <- stage and load steps; root is always the run
    (run,) = [p for p in by_run.values() if p[0]["job"]["name"] == "run"]
    (obj,) = [p for p in by_run.values() if p[0]["job"]["name"] == "orders"]
    run_id, obj_id = run[0]["run"]["runId"], obj[0]["run"]["runId"]
    assert "parent" not in run[0]["run"]["facets"]
    assert obj[0]["run"]["facets"]["parent"]["run"]["runId"] == run_id
    loads = [p for p in by_run.values() if p[0]["job"]["name"] == "orders.load"]
    for pair in (*loads, *[p for p in by_run.values() if p[0]["job"]["name"] == "orders.stage"]):
        parent = pair[1]["run"]["facets"]["parent"]
        assert (parent["run"]["runId"], parent["job"]["name"]) == (obj_id, "orders")
        assert parent["root"]["run"]["runId"] == run_id
    # micro-batch: both loads were open at once, each paired by its own id
    starts = sorted(p[0]["eventTime"] for p in loads)
    ends = sorted(p[1]["eventTime"] for p in loads)
    assert starts[1] < ends[0]

    # the load of a.csv: its datasets, quality facets and column lineage
    (load_a,) = [p[1] for p in loads if any(i["name"].endswith("a.csv") for i in p[1]["inputs"])]
    assert load_a["eventType"] == "COMPLETE"
    warehouse = f"duckdb://{(project / 'warehouse.duckdb').resolve()}"
    outputs = {o["name"]: o for o in load_a["outputs"]}
    assert set(outputs) == {"main.orders", "quarantine.orders"}
    table = outputs["main.orders"]
    assert table["namespace"] == warehouse
    assert [(f["name"], f["type"]) for f in table["facets"]["schema"]["fields"]] == [
        ("order_id", "bigint"),
        ("order_ts", "timestamp"),
        ("amount", "decimal(12,2)"),
    ]
    assert table["outputFacets"]["outputStatistics"]["rowCount"] == 1
    assert outputs["quarantine.orders"]["outputFacets"]["outputStatistics"]["rowCount"] == 1
    (staged,) = [i for i in load_a["inputs"] if "/lake/stage/orders/" in i["name"]]
    lineage = table["facets"]["columnLineage"]["fields"]
    assert {c: [(f["name"], f["field"]) for f in v["inputFields"]] for c, v in lineage.items()} == {
        "order_id": [(staged["name"], "order_id")],
        "order_ts": [(staged["name"], "Order Time")],  # from: "Order Time"
        "amount": [(staged["name"], "amount")],
    }
    assert lineage["order_ts"]["inputFields"][0]["transformations"][0]["type"] == "DIRECT"
    metrics = staged["inputFacets"]["dataQualityMetrics"]
    assert (metrics["rowCount"], metrics["fileCount"]) == (2, 1)
    assert metrics["columnMetrics"]["order_id"]["nullCount"] == 0
    assertions = {
        a["name"]: a for a in staged["inputFacets"]["dataQualityAssertions"]["assertions"]
    }
    assert {k: v for k, v in assertions["min:amount"].items() if k != "params"} == {
        "assertion": "min",
        "success": False,
        "column": "amount",
        "severity": "warn",
        "name": "min:amount",
        "expected": ">= 0",
        "actual": "1 failing row(s)",
    }
    assert assertions["check:small"]["success"] is True
    assert assertions["check:small"]["expected"] == "amount < 1000"

    # the stage step copies each landing column as it is
    (stage_a,) = [
        p[1]
        for p in by_run.values()
        if p[0]["job"]["name"] == "orders.stage" and p[1]["inputs"][0]["name"].endswith("a.csv")
    ]
    assert stage_a["inputs"][0]["name"] == str((project / "landing/orders/a.csv").resolve())
    stage_lineage = stage_a["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert stage_lineage["Order Time"]["inputFields"][0]["field"] == "Order Time"


def test_a_failed_step_emits_fail_with_its_error_and_the_run_fails(
    tmp_path: Path, cli: CLI
) -> None:
    strict = PROJECT.replace("load: merge", "load: merge\n    on_invalid: fail")
    project = write_project(
        tmp_path / "p", strict, {"landing/orders/a.csv": FILES["landing/orders/a.csv"]}
    )
    code, _, _ = cli("run", "-p", project)
    assert code == 1
    events = events_of(project)
    for e in events:
        validate_event(e)
    by_run = assert_paired(events)
    (load,) = [p[1] for p in by_run.values() if p[0]["job"]["name"] == "orders.load"]
    assert load["eventType"] == "FAIL"
    error = load["run"]["facets"]["errorMessage"]
    assert error["programmingLanguage"] == "PYTHON" and "min:amount" in error["message"]
    (run,) = [p[1] for p in by_run.values() if p[0]["job"]["name"] == "run"]
    assert (
        run["eventType"] == "FAIL" and "orders" in run["run"]["facets"]["errorMessage"]["message"]
    )
    # the refused batch: its rules are still asserted (rows per rule exact)
    (staged,) = [i for i in load["inputs"] if "/lake/stage/" in i["name"]]
    assertions = staged["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {a["name"]: a["success"] for a in assertions}["min:amount"] is False


def test_penstock_lineage_walks_the_store_both_ways_in_every_format(
    tmp_path: Path, cli: CLI
) -> None:
    project = write_project(tmp_path / "p", PROJECT, FILES)
    assert cli("run", "-p", project)[0] == 0
    code, out, _ = cli("lineage", "orders", "-p", project, "--upstream", "--json")
    assert code == 0
    graph = json.loads(out)
    labels = {n["id"]: n["label"] for n in graph["nodes"]}
    edges = {(labels[e["from"]], e["job"], labels[e["to"]], e["steps"]) for e in graph["edges"]}
    assert edges == {
        ("landing/orders/ (2 files)", "orders.stage", "lake/stage/orders/ (2 batches)", 2),
        ("lake/stage/orders/ (2 batches)", "orders.load", "main.orders", 2),
        ("lake/stage/orders/ (2 batches)", "orders.load", "quarantine.orders", 1),
    }
    (landing,) = [n for n in graph["nodes"] if n["role"] == "landing"]
    assert landing["datasets"] == [
        str((project / f"landing/orders/{f}").resolve()) for f in ("a.csv", "b.csv")
    ]
    assert graph["columns"]["order_ts"][0]["field"] == "Order Time"

    code, out, _ = cli("lineage", "orders", "-p", project, "--downstream", "--json")
    assert code == 0 and json.loads(out)["edges"] == []  # nothing reads the table yet

    code, out, _ = cli("lineage", "orders", "-p", project, "--format", "mermaid")
    assert code == 0
    assert out.startswith("flowchart LR\n")
    assert '[("main.orders")]' in out and '-->|"orders.stage"|' in out
    code, out, _ = cli("lineage", "orders", "-p", project, "--format", "dot")
    assert code == 0
    assert out.startswith('digraph "lineage of orders" {') and out.count(" -> ") == 3
    code, out, _ = cli("lineage", "orders", "-p", project)
    assert code == 0 and "orders.load" in out and "Order Time" in out

    assert cli("lineage", "nope", "-p", project)[0] == 2
    assert cli("lineage", "orders", "-p", project, "--upstream", "--downstream")[0] == 2


class Receiver(BaseHTTPRequestHandler):
    """An OpenLineage backend on loopback: keeps what was POSTed and its headers."""

    received: list[tuple[str, dict[str, str], dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, dict[str, str], dict[str, Any]]]]]:
    received: list[tuple[str, dict[str, str], dict[str, Any]]] = []
    handler = type("Handler", (Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


SECRET = "ol-key-3f9a77c1d2"


def test_http_transport_posts_valid_events_with_the_key_as_bearer_and_nowhere_else(
    tmp_path: Path, cli: CLI, receiver: tuple[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = receiver
    monkeypatch.setenv("OL_KEY", SECRET)
    yml = PROJECT + (
        f"lineage: {{transport: http, url: '{url}', api_key: '${{env:OL_KEY}}', "
        "namespace: shop-prod}\n"
    )
    project = write_project(tmp_path / "p", yml, FILES)
    code, out, err = cli("run", "-p", project)
    assert code == 0, err
    assert not (project / ".penstock" / "openlineage.jsonl").exists()
    assert {path for path, _, _ in received} == {"/api/v1/lineage"}
    assert {h["Authorization"] for _, h, _ in received} == {f"Bearer {SECRET}"}
    events = [e for _, _, e in received]
    for e in events:
        validate_event(e)
    by_run = assert_paired(events)
    assert len(by_run) == 6 and {p[0]["job"]["namespace"] for p in by_run.values()} == {"shop-prod"}
    # the key is in the header only: not in an event, the store, the output
    assert SECRET not in json.dumps(events) + out + err
    assert SECRET.encode() not in (project / ".penstock" / "metadata.db").read_bytes()


def test_a_lineage_backend_that_is_down_never_fails_a_load(tmp_path: Path, cli: CLI) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yml = PROJECT + f"lineage: {{transport: http, url: 'http://127.0.0.1:{port}'}}\n"
    project = write_project(tmp_path / "p", yml, FILES)
    code, _, err = cli("run", "-p", project)
    assert code == 0
    assert "OpenLineage could not record" in err
    assert query(project, "SELECT order_id FROM orders ORDER BY 1") == [(1,), (3,)]
    # the store's lineage has its own sink: it recorded every step all the same
    assert cli("lineage", "orders", "-p", project, "--json")[0] == 0


def test_transport_none_sends_nothing_but_the_store_records(tmp_path: Path, cli: CLI) -> None:
    project = write_project(tmp_path / "p", PROJECT + "lineage: {transport: none}\n", FILES)
    assert cli("run", "-p", project)[0] == 0
    assert not (project / ".penstock" / "openlineage.jsonl").exists()
    code, out, _ = cli("lineage", "orders", "-p", project, "--json")
    assert code == 0 and len(json.loads(out)["edges"]) == 3


def test_bad_lineage_settings_name_the_file_and_key(tmp_path: Path, cli: CLI) -> None:
    project = write_project(tmp_path / "p", PROJECT + "lineage: {transport: http}\n", FILES)
    code, _, err = cli("run", "-p", project)
    assert code == 2
    assert "penstock.yml" in err and "lineage" in err and "url" in err


def test_the_recorders_fields_are_each_schemas_own() -> None:
    """`fields` built once per schema object serialise as a list built per row would: two
    schemas, one changed mid-run, and a schema equal to another but its own object."""
    from penstock.observe.events import SchemaField
    from penstock.observe.lineage import _fields_json

    a = (SchemaField(name="order_id", type="BIGINT"), SchemaField(name="amount", type="DOUBLE"))
    b = (SchemaField(name="order_id", type="VARCHAR"),)
    a_again = tuple(SchemaField(name=f.name, type=f.type) for f in a)
    for fields in (a, b, a, a_again, b):
        assert json.dumps(_fields_json(fields)) == json.dumps([[f.name, f.type] for f in fields])
    assert _fields_json(a) is _fields_json(a)
