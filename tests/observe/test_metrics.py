"""Prometheus metrics of real runs: `penstock serve` (a second process, reading the store),
`penstock run --pushgateway` against a Pushgateway API on loopback, what retention prunes, and
a metrics sink that fails without failing a load. Expositions are parsed with
prometheus_client's own parser and their counts compared with the runs' own summaries."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from prometheus_client.parser import text_string_to_metric_families

from helpers import query, write_project
from pushgateway import pushgateway

CLI = Callable[..., tuple[int, str, str]]

PROJECT = """
name: shop
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    load: merge
    columns:
      id:  {type: bigint, required: true}
      qty: {type: integer, min: 0}
"""
FILES = {
    "landing/orders/a.csv": "id,qty\n1,1\n2,-2\n3,3\n3,4\n",  # 1 quarantined, 1 duplicate
    "landing/orders/b.csv": "id,qty\n4,4\n5,5\nx,6\n",  # 1 quarantined (type:id)
}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def run_json(cli: CLI, project: Path, *args: str) -> dict[str, Any]:
    code, out, err = cli("run", "-p", project, "--json", *args)
    assert code == 0, err
    (orders,) = json.loads(out)["objects"]
    return dict(orders)


def scrape(url: str) -> dict[Any, float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return samples(response.read().decode())


def test_serve_shows_what_the_store_holds_including_runs_of_other_processes(
    tmp_path: Path, cli: CLI
) -> None:
    project = write_project(tmp_path / "p", PROJECT, FILES)
    first = run_json(cli, project)
    assert (first["rows_loaded"], first["rows_quarantined"], first["rows_duplicate"]) == (4, 2, 1)
    with subprocess.Popen(
        [sys.executable, "-m", "penstock.cli.app", "serve", "-p", str(project), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as serve:
        try:
            _scrape_while_another_process_runs(serve, project, first)
        finally:
            serve.send_signal(signal.SIGTERM)
            code = serve.wait(timeout=20)
    assert code == 0


def _scrape_while_another_process_runs(
    serve: subprocess.Popen[str], project: Path, first: dict[str, Any]
) -> None:
    if True:
        assert serve.stdout is not None
        line = serve.stdout.readline()
        assert "/metrics" in line, line + (serve.stderr.read() if serve.stderr else "")
        url = line.split(" at ", 1)[1].split()[0]
        found = scrape(url)
        now = time.time()
        assert value(found, "penstock_metadata_store_up") == 1
        for outcome, rows in (("loaded", 4), ("quarantined", 2), ("duplicate", 1)):
            assert (
                value(found, "penstock_rows_processed_total", object="orders", outcome=outcome)
                == rows
            )
        assert (
            value(found, "penstock_steps_total", object="orders", step="load", status="warning")
            == 2
        )
        assert (
            value(found, "penstock_steps_total", object="orders", step="stage", status="success")
            == 2
        )
        assert value(found, "penstock_runs_total", command="run", outcome="warning") == 1
        # the histogram: cumulative buckets ending in +Inf = count, in base units
        count = value(found, "penstock_step_duration_seconds_count", object="orders", step="load")
        assert count == 2
        buckets = sorted(
            (float(dict(labels)["le"]), v)
            for (name, labels), v in found.items()
            if name == "penstock_step_duration_seconds_bucket"
            and dict(labels).get("step") == "load"
        )
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)
        assert buckets[-1] == (float("inf"), 2) and len(buckets) == 16
        assert (
            0
            < value(found, "penstock_step_duration_seconds_sum", object="orders", step="load")
            < 60
        )
        # ratios of the last run, as the run summary computed them
        assert value(found, "penstock_dq_pass_ratio", object="orders") == first["dq_pass_rate"]
        assert value(found, "penstock_quarantine_ratio", object="orders") == 2 / 7
        assert value(found, "penstock_source_up", source="landing") == 1
        last_load = value(found, "penstock_last_load_timestamp_seconds", object="orders")
        assert now - 60 < last_load <= now
        assert 0 <= value(found, "penstock_freshness_lag_seconds", object="orders") < 60
        assert (
            now - 60
            < value(found, "penstock_last_success_timestamp_seconds", object="orders")
            <= now
        )
        # low cardinality: no batch id or file name in any label
        labels = {k for (_, ls) in found for k, _ in ls}
        assert labels <= {"object", "outcome", "step", "status", "command", "source", "le"}

        # another process runs: the serving process shows it at the next scrape
        (project / "landing/orders/c.csv").write_text("id,qty\n6,6\n7,7\n")
        done = subprocess.run(
            [sys.executable, "-m", "penstock.cli.app", "run", "-p", str(project)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        found = scrape(url)
        assert value(found, "penstock_rows_processed_total", object="orders", outcome="loaded") == 6
        assert value(found, "penstock_runs_total", command="run", outcome="success") == 1
        assert value(found, "penstock_dq_pass_ratio", object="orders") == 1.0
        assert (
            value(found, "penstock_step_duration_seconds_count", object="orders", step="load") == 3
        )
        with urllib.request.urlopen(url.removesuffix("metrics"), timeout=10) as response:
            assert b"/metrics" in response.read()


def test_serve_on_a_busy_port_fails_with_one_line(tmp_path: Path, cli: CLI) -> None:
    import socket

    project = write_project(tmp_path / "p", PROJECT, FILES)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = cli("serve", "-p", project, "--port", str(port))
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err


def test_run_pushgateway_pushes_with_push_add_semantics(tmp_path: Path, cli: CLI) -> None:
    project = write_project(tmp_path / "p", PROJECT, FILES)
    with pushgateway() as (url, gateway):
        # someone else's metric in the same group: push-add must keep it
        other = CollectorRegistry()
        Gauge("other_team_metric", "Not penstock's.", registry=other).set(7)
        push_to_gateway(url, job="penstock", registry=other, grouping_key={"project": "shop"})

        first = run_json(cli, project, "--pushgateway", url)
        group = {"job": "penstock", "project": "shop"}
        assert gateway.requests[-1] == ("POST", "/metrics/job/penstock/project/shop")
        assert gateway.value("other_team_metric", **group) == 7
        assert (
            gateway.value(
                "penstock_rows_processed_total", object="orders", outcome="loaded", **group
            )
            == first["rows_loaded"]
            == 4
        )
        assert gateway.value("penstock_runs_total", command="run", outcome="warning") == 1
        # a time-dependent gauge would go stale in a gateway: the timestamp is pushed instead
        names = {s.name for s in gateway.samples()}
        assert "penstock_freshness_lag_seconds" not in names
        assert "penstock_last_load_timestamp_seconds" in names

        (project / "landing/orders/c.csv").write_text("id,qty\n6,6\n")
        run_json(cli, project, "--pushgateway", url)
        assert (
            gateway.value(
                "penstock_rows_processed_total", object="orders", outcome="loaded", **group
            )
            == 5
        )  # counters add up across runs
        assert gateway.value("penstock_runs_total", command="run", outcome="success") == 1
        assert gateway.value("other_team_metric", **group) == 7


def test_a_pushgateway_that_is_down_never_fails_the_run(tmp_path: Path, cli: CLI) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    project = write_project(tmp_path / "p", PROJECT, FILES)
    code, _, err = cli("run", "-p", project, "--pushgateway", f"http://127.0.0.1:{port}")
    assert code == 0
    assert f"warning: cannot push metrics to the Pushgateway at http://127.0.0.1:{port}" in err
    assert query(project, "SELECT count(*) FROM orders") == [(4,)]


def test_retention_deletes_old_measures_and_gone_objects_series_only(
    tmp_path: Path, cli: CLI
) -> None:
    project = write_project(tmp_path / "p", PROJECT + "retention: {metrics: 10d}\n", FILES)
    assert cli("run", "-p", project)[0] == 0
    db = project / ".penstock" / "metadata.db"
    old = (datetime.now(UTC) - timedelta(days=11)).strftime("%Y-%m-%d %H:%M:%S.%f")
    recent = (datetime.now(UTC) - timedelta(days=9)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(db) as conn:
        fresh = conn.execute("SELECT count(*) FROM metrics").fetchone()[0]
        assert fresh > 0
        for at, obj in ((old, "orders"), (recent, "orders"), (old, None)):
            conn.execute(
                "INSERT INTO metrics (project, run_id, object, name, labels, value, at) "
                "VALUES ('shop', 'r', ?, 'rows_in', '{}', 1, ?)",
                (obj, at),
            )
        conn.execute(
            "INSERT INTO metrics (project, run_id, object, name, labels, value, at) "
            "VALUES ('other', 'r', 'orders', 'rows_in', '{}', 1, ?)",
            (old,),
        )
        for obj, at in (("gone", old), ("gone_recently", recent), ("orders", old)):
            conn.execute(
                "INSERT INTO metric_totals VALUES ('shop', 'steps_total', ?, '', 1, ?)", (obj, at)
            )
    code, out, _ = cli("gc", "-p", project, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["rows"]["metrics"] == 2 and report["rows"]["metric_totals"] == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM metrics").fetchone()[0] == fresh + 2
        left = {r[0] for r in conn.execute("SELECT DISTINCT object FROM metric_totals")}
    assert left == {"", "orders", "gone_recently"}  # "": run-level and source series


def test_a_failing_metrics_sink_never_fails_a_load(tmp_path: Path, capsys: Any) -> None:
    from penstock import load_project
    from penstock.engine import Session
    from penstock.observe import Event, StepStarted

    project = write_project(tmp_path / "p", PROJECT, FILES)
    db = project / ".penstock" / "metadata.db"
    with Session(load_project(project)) as session:
        broken = False

        def breaker(event: Event) -> None:
            nonlocal broken
            if isinstance(event, StepStarted) and not broken:
                broken = True
                with sqlite3.connect(db) as conn:  # from outside, as a failing disk would
                    conn.execute("ALTER TABLE metric_totals RENAME TO metric_totals_away")

        session.bus.subscribe(breaker)
        result = session.runner.run()
    assert broken and result.status == "success"
    assert query(project, "SELECT count(*) FROM orders") == [(4,)]
    err = capsys.readouterr().err
    assert "metrics could not" in err
    with sqlite3.connect(db) as conn:  # the store's own records are whole
        (status,) = conn.execute("SELECT status FROM job_runs").fetchone()
    assert status == "success"


def test_histogram_series_built_once_per_label_set_are_those_each_observation_builds(
    tmp_path: Path,
) -> None:
    """The sink's cached histogram keys and label JSON: the series and values an observation
    adds, for several label sets met again and again, are what building them afresh gives."""
    from penstock.observe.metrics import METRICS, MetricsSink, labels_key, le_text
    from penstock.observe.store import MetadataStore

    store = MetadataStore(f"sqlite:///{tmp_path / 'metrics.db'}")
    sink = MetricsSink(store, "shop")
    expected: dict[tuple[str, str, str], float] = {}

    def add(name: str, obj: str, labels: dict[str, str], value: float) -> None:
        key = (name, obj, json.dumps(dict(sorted(labels.items())), separators=(",", ":")))
        expected[key] = expected.get(key, 0.0) + value

    observations = [
        ("step_duration_seconds", "orders", {"step": "stage"}, 0.004),
        ("step_duration_seconds", "orders", {"step": "load"}, 0.05),
        ("step_duration_seconds", "customers", {"step": "load"}, 7200.0),
        ("step_duration_seconds", "orders", {"step": "stage"}, 0.3),
        ("run_duration_seconds", "", {"command": "run"}, 1.5),
        ("run_duration_seconds", "", {"command": "rebuild"}, 1e9),
    ]
    for name, obj, labels, value in observations:
        sink.observe(name, value, object=obj, **labels)
        for bound in METRICS[name].buckets:
            if value <= bound:
                add(f"{name}_bucket", obj, {**labels, "le": le_text(bound)}, 1)
        add(f"{name}_bucket", obj, {**labels, "le": "+Inf"}, 1)
        add(f"{name}_sum", obj, labels, value)
        add(f"{name}_count", obj, labels, 1)
    assert list(sink.pending.adds.items()) == list(expected.items())
    assert labels_key({"step": "load", "le": "0.5"}) == '{"le":"0.5","step":"load"}'
    assert labels_key({}) == ""
    store.close()
