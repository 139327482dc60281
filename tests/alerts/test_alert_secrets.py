"""A destination holding a secret (`${env:…}`): the secret reaches the destination (as its
credentials) and nowhere else: not the output of any command, the logs, the metadata store's
files or the alert bodies. Destinations are named by label, never by URL."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from alert_receivers import Webhook, free_port
from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]
SECRET = "s3cr3t-Tok3n-5f1c9e"


@pytest.mark.usefixtures("no_secrets")
def test_a_destination_secret_never_leaves_the_destination(
    tmp_path: Path, cli: Cli, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_SECRET", SECRET)
    good = f"json://penstock:${{env:ALERT_SECRET}}@127.0.0.1:{webhook.port}/hook"
    down = f"json://penstock:${{env:ALERT_SECRET}}@127.0.0.1:{free_port()}/down"
    root = write_project(
        tmp_path / "p",
        f"""
        name: shop
        sources:
          landing: {{kind: files, path: ./landing, settle: 0s}}
        objects:
          orders:
            source: landing
            files: "orders/*.csv"
            on_invalid: fail
            columns:
              id:  {{type: bigint, required: true}}
              qty: {{type: integer, min: 0}}
            sla: {{freshness: 1h}}
        alerts:
          - name: ops
            on: [run_failed, check_failed, sla_missed]
            to: ["{good}", "{down}"]
        """,
        {"landing/orders/a.csv": "id,qty\n1,1\n2,-5\n"},
    )
    outputs: list[str] = []
    for args in (
        ("run",),
        ("run", "--json"),
        ("alerts",),
        ("alerts", "--json"),
        ("alerts", "test", "ops"),
        ("alerts", "test", "ops", "--json"),
        ("slo", "--check"),
        ("slo", "--check", "--json"),
        ("logs", "--json"),
        ("logs", "--level", "debug"),
        ("runs", "--json"),
        ("status", "--json"),
        ("sql", "SELECT * FROM alert_log", "--json"),
        ("sql", "SELECT * FROM alert_state", "--json"),
        ("sql", "SELECT * FROM logs", "--json"),
        ("check", "--json"),
    ):
        code, out, err = cli(*args, "-p", root)
        assert code in (0, 1), (args, code, err)
        outputs.append(out + err)
    text = "\n".join(outputs)
    assert SECRET not in text
    assert "/down" not in text and f":{webhook.port}/hook" not in text  # no URL at all
    assert "ops[1] (json)" in text  # the failing destination is named by its label

    # the store's files, whatever their layout (SQLite, its WAL)
    for path in (root / ".penstock").iterdir():
        assert SECRET.encode() not in path.read_bytes(), path

    # the destination got the secret as its credentials, never in a body
    posts = webhook.received()
    assert {p.body["title"].split(":")[0] for p in posts} >= {
        "[penstock] ERROR shop/orders",
        "[penstock] TEST shop/orders",
    }
    expected = "Basic " + base64.b64encode(f"penstock:{SECRET}".encode()).decode()
    for post in posts:
        assert post.headers["Authorization"] == expected
        assert SECRET not in json.dumps(post.body)


@pytest.mark.usefixtures("no_secrets")
def test_a_destination_apprise_does_not_know_stops_the_run_without_showing_it(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALERT_SECRET", SECRET)
    root = write_project(
        tmp_path / "p",
        """
        name: shop
        sources:
          landing: {kind: files, path: ./landing, settle: 0s}
        objects:
          orders:
            source: landing
            files: "orders/*.csv"
            columns:
              id: {type: bigint}
        alerts:
          - name: ops
            on: [run_failed]
            to:
              - "nosuchservice://hooks.internal.example/${env:ALERT_SECRET}"
        """,
        {"landing/orders/a.csv": "id\n1\n"},
    )
    code, out, err = cli("run", "-p", root)
    assert code == 2
    assert err.strip() == (
        "error: penstock.yml:15: alerts[0].to[0]: ops[0] (nosuchservice): not a destination "
        "apprise understands (see apprise's list of services)"
    )
    assert SECRET not in out + err and "hooks.internal.example" not in out + err
    code, out, _ = cli("runs", "-p", root, "--json")
    assert (code, json.loads(out)) == (0, [])  # stopped before the run started
