"""An object held back by its upstream's failure (`upstream_failed`) neither fails nor
recovers: its open failure alert stays open until it runs again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alert_receivers import Webhook
from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: shop
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    depends_on: customers
    on_invalid: fail
    columns:
      id: {{type: bigint, required: true}}
  customers:
    source: landing
    files: "customers/*.csv"
    on_invalid: fail
    columns:
      id: {{type: bigint, required: true}}
alerts:
  - name: ops
    on: [run_failed]
    objects: [orders, customers]
    to: ["{url}"]
"""


def test_held_back_is_not_recovered(tmp_path: Path, cli: Cli, webhook: Webhook) -> None:
    root = write_project(
        tmp_path,
        PROJECT.format(url=webhook.url),
        {"landing/customers/1.csv": "id\n1\n", "landing/orders/1.csv": "id\nbad\n"},
    )
    assert cli("run", "-p", root)[0] == 1  # orders fails on its own
    (first,) = webhook.wait_for(1)
    assert (first.body["type"], first.body["title"].split(":")[0]) == (
        "failure",
        "[penstock] ERROR shop/orders",
    )

    (root / "landing/customers/2.csv").write_text("id\nbad\n")
    code, out, _ = cli("run", "-p", root, "--json")
    assert code == 1
    assert '"upstream_failed"' in out
    posts = webhook.wait_for(2)
    assert posts[1].body["type"] == "failure"
    assert posts[1].body["title"].startswith("[penstock] ERROR shop/customers")
    # the run has ended and flushed its alerts: orders was not run, so nothing says it recovered
    assert len(webhook.received()) == 2
