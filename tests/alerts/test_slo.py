"""SLOs: measured from the metadata store, and a miss alerts even when no run happens
(`penstock slo --check`, and `check_slos`, the function the scheduler will call)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from penstock.catalog import load_project
from penstock.observe.slo import check_slos, evaluate_slos
from penstock.observe.store import MetadataStore

from alert_receivers import Webhook
from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]

GOOD = "id,qty\n1,1\n2,2\n"
BAD = "id,qty\n3,-1\n"


def project(root: Path, hook: Webhook, *, on_invalid: str = "quarantine") -> Path:
    return write_project(
        root,
        f"""
        name: shop
        sources:
          landing: {{kind: files, path: ./landing, settle: 0s}}
        objects:
          orders:
            source: landing
            files: "orders/*.csv"
            on_invalid: {on_invalid}
            columns:
              id:  {{type: bigint, required: true}}
              qty: {{type: integer, min: 0}}
            sla: {{freshness: 2h, success_rate: 75%, window: 1d}}
          returns:
            source: landing
            files: "returns/*.csv"
            columns:
              id: {{type: bigint}}
        alerts:
          - {{name: oncall, on: [sla_missed], to: ["{hook.url}"], throttle: 1h}}
        """,
    )


def test_a_freshness_miss_alerts_without_any_run_then_recovers(
    tmp_path: Path, cli: Cli, webhook: Webhook
) -> None:
    root = project(tmp_path / "p", webhook)
    # nothing ever ran: the object never loaded a batch
    code, out, _ = cli("slo", "--check", "-p", root, "--json")
    assert code == 1
    report = json.loads(out)
    assert report["missed"] == 1
    fresh, rate = report["slos"]
    assert (fresh["object"], fresh["sla"], fresh["status"]) == ("orders", "freshness", "missed")
    assert (fresh["measured"], fresh["measured_value"]) == ("never loaded", None)
    assert (rate["sla"], rate["status"], rate["runs"]) == ("success_rate", "no data", 0)
    assert [(a["rule"], a["key"], a["action"]) for a in report["alerts"]] == [
        ("oncall", "sla_missed:orders:freshness", "alert")
    ]
    (post,) = webhook.wait_for(1)
    assert post.body["title"] == (
        "[penstock] ERROR shop/orders: freshness SLO missed: orders has never loaded a batch; "
        "expected one within 2h"
    )
    assert "measured: never loaded; expected: at most 2h 00m" in post.text
    assert "penstock slo" in post.text and "penstock status" in post.text

    # the same miss measured again: a duplicate, not sent again
    code, out, _ = cli("slo", "--check", "-p", root, "--json")
    assert code == 1 and json.loads(out)["alerts"] == []
    time.sleep(0.2)
    assert len(webhook.received()) == 1

    # a run loads data: when it ends, it evaluates its objects' SLOs and the miss recovers
    (root / "landing" / "orders").mkdir(parents=True)
    (root / "landing" / "orders" / "a.csv").write_text(GOOD)
    assert cli("run", "-p", root)[0] == 0
    posts = webhook.wait_for(2)
    assert len(posts) == 2
    assert posts[1].body["type"] == "success"
    assert (
        posts[1]
        .body["title"]
        .startswith(
            "[penstock] RESOLVED shop/orders: freshness SLO met again: orders last loaded a batch"
        )
    )
    code, out, _ = cli("slo", "-p", root, "--json")
    assert code == 0 and [s["status"] for s in json.loads(out)["slos"]] == ["met", "met"]

    # three hours without a run: the function the scheduler calls finds the miss and alerts
    project_ = load_project(root)
    with MetadataStore(project_.metadata_url) as store:
        last = evaluate_slos(project_, store)[0].last_batch_at
        assert last is not None
        report_ = check_slos(project_, store=store, now=last + timedelta(hours=3))
    assert report_.any_missed
    assert [(m.object, m.sla, m.expected, m.unit) for m in report_.missed] == [
        ("orders", "freshness", 7200.0, "seconds")
    ]
    assert report_.missed[0].measured == 10800.0
    assert [(n.key, n.action, n.delivered) for n in report_.notices] == [
        ("sla_missed:orders:freshness", "alert", ("oncall[0] (json)",))
    ]
    posts = webhook.wait_for(3)
    assert "orders last loaded a batch 3h 00m ago" in posts[2].body["title"]
    assert "measured: 3h 00m; expected: at most 2h 00m" in posts[2].text


def test_the_success_rate_counts_the_runs_in_the_window(
    tmp_path: Path, cli: Cli, webhook: Webhook
) -> None:
    root = project(tmp_path / "p", webhook, on_invalid="fail")
    landing = root / "landing" / "orders"
    landing.mkdir(parents=True)
    (landing / "a.csv").write_text(GOOD)
    assert cli("run", "-p", root)[0] == 0
    (landing / "b.csv").write_text(BAD)
    assert cli("run", "-p", root)[0] == 1  # fails: the batch breaks its contract
    assert cli("run", "-p", root)[0] == 1  # still held back
    code, out, _ = cli("slo", "-p", root, "--json")
    assert code == 0  # without --check: a read, exit 0
    rate = json.loads(out)["slos"][1]
    assert (rate["runs"], rate["failed_runs"], rate["measured"], rate["status"]) == (
        3,
        2,
        "33.33%",
        "missed",
    )
    assert rate["message"] == (
        "1 of 3 run(s) of orders in the last 1d did not fail (33.33%); expected at least 75%"
    )
    posts = webhook.wait_for(1)  # the failed run ended: its SLOs were evaluated and alerted
    assert len(posts) == 1
    assert posts[0].body["title"].startswith("[penstock] ERROR shop/orders: success_rate SLO")
    # the later evaluation of the same miss (the third run) was not a second message
    time.sleep(0.2)
    assert len(webhook.received()) == 1


def test_two_processes_checking_at_once_send_one_alert(tmp_path: Path, webhook: Webhook) -> None:
    root = project(tmp_path / "p", webhook)
    code = "import sys; from penstock.cli.app import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, "slo", "--check", "-p", str(root), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [1, 1, 1], outs
    actions = sorted(a["action"] for out, _ in outs for a in json.loads(out)["alerts"])
    assert actions == ["alert"]  # the others found it already firing (duplicates)
    time.sleep(0.3)
    assert len(webhook.received()) == 1


def test_check_slos_emits_misses_on_a_callers_bus(tmp_path: Path, webhook: Webhook) -> None:
    """The scheduler's way: misses travel as `sla_missed` events on its session's bus, where
    any sink sees them and the session's alert sink alerts them."""
    from penstock.engine import Session
    from penstock.observe import Event, SlaMissed

    root = project(tmp_path / "p", webhook)
    seen: list[Event] = []
    with Session(load_project(root)) as session:
        session.bus.subscribe(seen.append, events=[SlaMissed])
        report = check_slos(session.project, store=session.store, bus=session.bus)
        session.bus.flush()
        assert report.notices == []  # not sent directly: the bus's alert sink did it
    (event,) = seen
    assert isinstance(event, SlaMissed)
    assert (event.object, event.sla, event.unit, event.expected) == (
        "orders",
        "freshness",
        "seconds",
        7200.0,
    )
    assert event.measured == float("inf") and "never loaded" in event.message
    (post,) = webhook.wait_for(1)
    assert post.body["title"].startswith("[penstock] ERROR shop/orders: freshness SLO missed")
