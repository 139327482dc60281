"""Alerts from real runs reach a real webhook and a real SMTP server on loopback, with the
context to act on: what failed against what was expected, a masked sample of the failing rows,
the commands to investigate. They are throttled per key, and a recovery follows."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from alert_receivers import Mailbox, Webhook, free_port
from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

PII = "ann.jones_at_example.org"  # breaks the email pattern: its row is quarantined

HEADER = "order_id,email,amount\n"
DAY1 = HEADER + f"1,bo@example.org,10.00\n2,{PII},-3.50\n3,cy@example.org,x7\n4,di@example.org,4\n"
DAY2 = HEADER + "5,ed@example.org,-1\n6,fay@example.org,6\n"
DAY3 = HEADER + "7,gus@example.org,-2\n"
CLEAN = HEADER + "8,hal@example.org,8\n9,ida@example.org,9\n"


def project(
    root: Path,
    to: list[str],
    *,
    on: str = "[run_failed, check_failed]",
    throttle: str = "1h",
    on_invalid: str = "quarantine",
    files: dict[str, str] | None = None,
) -> Path:
    destinations = ", ".join(json.dumps(url) for url in to)
    yml = f"""
        name: shop
        sources:
          landing: {{kind: files, path: ./landing, settle: 0s}}
        objects:
          orders:
            source: landing
            files: "orders/*.csv"
            key: [order_id]
            on_invalid: {on_invalid}
            columns:
              order_id: {{type: bigint, required: true}}
              email:    {{type: text, pattern: "^[^@ ]+@[^@ ]+$"}}
              amount:   {{type: "decimal(12,2)", min: 0, show_in_alerts: true}}
        alerts:
          - name: ops
            on: {on}
            objects: [orders]
            to: [{destinations}]
            throttle: {throttle}
        """
    return write_project(root, yml, files if files is not None else {"landing/orders/a.csv": DAY1})


def last_run(cli: Cli, root: Path) -> str:
    code, out, _ = cli("runs", "-p", root, "--json")
    assert code == 0
    run_id: str = json.loads(out)[0]["run_id"]
    return run_id


def store_rows(root: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(root / ".penstock" / "metadata.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_a_failing_check_reaches_the_webhook_and_the_mailbox_with_its_context(
    tmp_path: Path, cli: Cli, webhook: Webhook, mailbox: Mailbox
) -> None:
    root = project(tmp_path / "p", [webhook.url, mailbox.url])
    code, _, err = cli("run", "-p", root)
    assert code == 0, err
    run_id = last_run(cli, root)
    (post,) = webhook.wait_for(1)
    (mail,) = mailbox.wait_for(1)

    # the webhook: apprise's JSON, a failure, title and body
    assert post.path == "/hook"
    assert post.body["type"] == "failure"
    title, body = post.body["title"], post.body["message"]
    assert title == (
        "[penstock] ERROR shop/orders: 2 of 4 rows broke pattern:email and 2 more rule(s)"
    )
    assert f"run {run_id}" in body
    assert "check_failed · severity error · project shop · object orders · rule ops" in body
    assert "1 batch of 1 broke the contract: 2 of 4 rows broke a rule (DQ pass rate 50%)" in body
    # measured against expected, per rule
    assert re.search(r"min:amount\s+1 row\s+expected >= 0", body), body
    assert re.search(r"type:amount\s+1 row\s+expected decimal\(12,2\)", body), body
    assert re.search(r"pattern:email\s+1 row\s+expected \^\[\^@ \]\+@\[\^@ \]\+\$", body), body
    # the sample: email masked, amount shown (show_in_alerts), record numbers and reasons
    assert "record 2 [pattern:email, min:amount] order_id=*** email=*** amount='-3.50'" in body
    assert "record 3 [type:amount] order_id=*** email=*** amount='x7'" in body
    assert PII not in body and "cy@example.org" not in body
    # the next action: commands that work
    batch = re.search(r"penstock quarantine orders --batch (orders-\w+)", body)
    assert batch is not None, body
    assert f"penstock logs --run {run_id[:12]} --object orders --level warning" in body
    code, out, _ = cli("quarantine", "orders", "--batch", batch[1], "-p", root, "--json")
    assert code == 0 and json.loads(out)["total"] == 2
    code, out, _ = cli("logs", "--run", run_id[:12], "--object", "orders", "-p", root, "--json")
    assert code == 0 and run_id in out

    # the e-mail: the same title and text, through a real SMTP conversation
    assert mail["Subject"] == title
    assert mail["From"] == "penstock@example.com"
    assert mailbox.envelopes == [("penstock@example.com", ["oncall@example.com"])]
    text = mail.get_content()
    assert "record 2 [pattern:email, min:amount] order_id=*** email=*** amount='-3.50'" in text
    assert f"run {run_id}" in text and PII not in text

    # the store's history says so
    rows = store_rows(root, "SELECT rule, key, action, delivered, failed, run_id FROM alert_log")
    assert rows == [("ops", "check_failed:orders", "alert", 2, 0, run_id)]


def test_alerts_are_throttled_per_key_then_remind_and_recover(
    tmp_path: Path, cli: Cli, webhook: Webhook
) -> None:
    root = project(tmp_path / "p", [webhook.url])
    landing = root / "landing" / "orders"
    assert cli("run", "-p", root)[0] == 0
    assert len(webhook.wait_for(1)) == 1

    # the same condition within the hour: held back, counted
    (landing / "b.csv").write_text(DAY2)
    assert cli("run", "-p", root)[0] == 0
    time.sleep(0.3)
    assert len(webhook.received()) == 1
    code, out, _ = cli("alerts", "-p", root, "--json")
    assert code == 0
    (state,) = json.loads(out)["state"]
    assert (state["key"], state["firing"], state["held_back"]) == ("check_failed:orders", True, 1)
    assert [h["action"] for h in json.loads(out)["history"]] == ["throttled", "alert"]

    # a run with nothing new changes nothing
    assert cli("run", "-p", root)[0] == 0
    time.sleep(0.3)
    assert len(webhook.received()) == 1

    # an hour later (the state moved back in time): the next occurrence is a reminder that
    # says what was held back
    db = sqlite3.connect(root / ".penstock" / "metadata.db")
    with db:
        db.execute(
            "UPDATE alert_state SET last_alert_at = datetime(last_alert_at, '-61 minutes'), "
            "since = datetime(since, '-61 minutes')"
        )
    db.close()
    (landing / "c.csv").write_text(DAY3)
    assert cli("run", "-p", root)[0] == 0
    posts = webhook.wait_for(2)
    assert len(posts) == 2
    reminder = posts[1]
    assert reminder.body["title"].startswith("[penstock] ERROR (still) shop/orders: 1 of 1 row")
    assert "1 more occurrence held back since the last alert (throttle 1h)" in reminder.text
    assert "failing since" in reminder.text

    # clean data: one recovery notice, then quiet
    (landing / "d.csv").write_text(CLEAN)
    assert cli("run", "-p", root)[0] == 0
    posts = webhook.wait_for(3)
    assert len(posts) == 3
    recovery = posts[2]
    assert recovery.body["type"] == "success"
    assert recovery.body["title"] == (
        "[penstock] RESOLVED shop/orders: checks pass again: 1 batch, 2 rows, none broke a rule"
    )
    (landing / "e.csv").write_text(HEADER + "10,jo@example.org,1\n")
    assert cli("run", "-p", root)[0] == 0
    time.sleep(0.3)
    assert len(webhook.received()) == 3
    actions = store_rows(root, "SELECT action FROM alert_log ORDER BY id")
    assert [a for (a,) in actions] == ["alert", "throttled", "reminder", "recovery"]


def test_a_failed_run_alerts_with_its_error_and_recovers(
    tmp_path: Path, cli: Cli, webhook: Webhook
) -> None:
    root = project(tmp_path / "p", [webhook.url], on="[run_failed]", on_invalid="fail")
    code, _, _ = cli("run", "-p", root)
    assert code == 1
    run_id = last_run(cli, root)
    (post,) = webhook.wait_for(1)
    assert post.body["title"] == f"[penstock] ERROR shop/orders: orders failed in run {run_id[:12]}"
    text = post.text
    assert re.search(
        r"load of batch (orders-\w+) \(landing/orders/a\.csv\) failed \[ContractViolation\]: ", text
    ), text
    assert "measured: 1 failed step; expected: none" in text
    assert f"penstock logs --run {run_id[:12]} --object orders --level warning" in text
    assert "penstock batches orders" in text
    assert PII not in text

    # skip the batch, deliver a good file: the next run recovers
    batch = re.search(r"load of batch (orders-\w+)", text)
    assert batch is not None
    assert cli("batches", "skip", "orders", batch[1], "--reason", "resent", "-p", root)[0] == 0
    (root / "landing" / "orders" / "b.csv").write_text(CLEAN)
    assert cli("run", "-p", root)[0] == 0
    posts = webhook.wait_for(2)
    assert [p.body["type"] for p in posts] == ["failure", "success"]
    assert posts[1].body["title"].startswith("[penstock] RESOLVED shop/orders: orders ran without")


def test_failing_destinations_never_fail_a_load(
    tmp_path: Path, cli: Cli, webhook: Webhook, silent_port: int
) -> None:
    refused = f"json://127.0.0.1:{free_port()}/down"
    hung = f"json://127.0.0.1:{silent_port}/hung?cto=1&rto=1"
    root = project(tmp_path / "p", [refused, hung, webhook.url])
    started = time.monotonic()
    code, _, err = cli("run", "-p", root)
    took = time.monotonic() - started
    assert code == 0, err
    assert query(root, "SELECT count(*) FROM orders") == [(2,)]  # the valid rows loaded
    assert took < 20
    (post,) = webhook.wait_for(1)  # the destination that works got it
    assert "2 of 4 rows broke" in post.body["title"]
    # each failure said once on stderr, by label, never by URL
    assert "penstock: alert to ops[0] (json) not delivered" in err
    assert "penstock: alert to ops[1] (json) not delivered" in err
    assert "/down" not in err and "/hung" not in err
    ((delivered, failed, error),) = store_rows(
        root, "SELECT delivered, failed, error FROM alert_log"
    )
    assert (delivered, failed) == (1, 2)
    assert isinstance(error, str) and error.startswith("ops[0] (json): ")
    assert "ops[1] (json): " in error and "/down" not in error and "/hung" not in error


def test_an_alert_no_destination_took_is_tried_again(tmp_path: Path, cli: Cli) -> None:
    """Nobody got it: it does not count against the throttle, so the next occurrence is
    sent (an alert, not a reminder of a message nobody received)."""
    root = project(tmp_path / "p", [f"json://127.0.0.1:{free_port()}/down"])
    assert cli("run", "-p", root)[0] == 0
    (root / "landing" / "orders" / "b.csv").write_text(DAY2)
    assert cli("run", "-p", root)[0] == 0
    rows = store_rows(root, "SELECT action, delivered, failed FROM alert_log ORDER BY id")
    assert rows == [("alert", 0, 1), ("alert", 0, 1)]
    ((last_alert, firing),) = store_rows(root, "SELECT last_alert_at, firing FROM alert_state")
    assert (last_alert, firing) == (None, 1)


def test_schema_drift_and_a_source_down_alert_and_the_source_recovers(
    tmp_path: Path, cli: Cli, webhook: Webhook
) -> None:
    root = project(tmp_path / "p", [webhook.url], on="[schema_drift, source_down]")
    assert cli("run", "-p", root)[0] == 0
    time.sleep(0.2)
    assert webhook.received() == []  # the first batch has nothing to drift from
    landing = root / "landing"
    (landing / "orders" / "b.csv").write_text("order_id,amount,coupon\n11,1.00,X\n")
    assert cli("run", "-p", root)[0] == 0
    (drift,) = webhook.wait_for(1)
    assert drift.body["title"] == (
        "[penstock] ERROR shop/orders: the columns of landing/orders/b.csv changed "
        "(added coupon; removed email)"
    )
    assert "contract columns missing (read as empty): email" in drift.text
    assert "penstock batches orders" in drift.text

    landing.rename(root / "landing.away")
    assert cli("run", "-p", root)[0] == 1
    posts = webhook.wait_for(2)
    assert len(posts) == 2
    assert posts[1].body["title"] == (
        "[penstock] ERROR shop/orders: source landing (files) cannot be reached"
    )
    assert "measured: unavailable; expected: reachable" in posts[1].text
    (root / "landing.away").rename(landing)
    assert cli("run", "-p", root)[0] == 0
    posts = webhook.wait_for(3)
    assert len(posts) == 3
    assert posts[2].body["title"] == (
        "[penstock] RESOLVED shop/orders: source landing (files) is reachable again"
    )
