"""`penstock alerts` and `penstock slo` as commands: usage mistakes are one line and exit 2;
without apprise, the line to install it; nothing configured, they say so."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: shop
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    columns:
      id: {type: bigint}
"""


def test_usage_mistakes_are_one_line(tmp_path: Path, cli: Cli) -> None:
    root = write_project(
        tmp_path / "p",
        PROJECT + 'alerts:\n  - {name: ops, on: [run_failed], to: ["json://127.0.0.1:9/x"]}\n',
    )
    code, _, err = cli("alerts", "test", "nope", "-p", root)
    assert (code, err.strip()) == (2, "error: no alert rule named 'nope' (rules: ops)")
    code, _, err = cli("alerts", "send", "ops", "-p", root)
    assert (code, err.strip()) == (2, "error: usage: penstock alerts | penstock alerts test NAME")
    # a destination that refuses: the test says so and exits 1, naming it by label
    code, out, err = cli("alerts", "test", "ops", "-p", root, "--json")
    assert code == 1
    report = json.loads(out)
    assert report["delivered"] == []
    assert [f["destination"] for f in report["failed"]] == ["ops[0] (json)"]


def test_without_rules_or_slos_they_say_so(tmp_path: Path, cli: Cli) -> None:
    root = write_project(tmp_path / "p", PROJECT, {"landing/orders/a.csv": "id\n1\n"})
    code, out, _ = cli("alerts", "-p", root)
    assert code == 0 and "no alert rules" in out
    code, out, _ = cli("alerts", "-p", root, "--json")
    assert (code, json.loads(out)) == (
        0,
        {"project": "shop", "rules": [], "state": [], "history": []},
    )
    code, out, _ = cli("slo", "--check", "-p", root)
    assert code == 0 and "no object declares an `sla:`" in out
    code, out, _ = cli("slo", "-p", root, "--json")
    assert code == 0 and json.loads(out)["slos"] == []
    code, _, _ = cli("run", "-p", root)
    assert code == 0
    code, out, _ = cli("alerts", "-p", root, "--json")
    assert json.loads(out)["history"] == []  # nothing to alert on without rules


def test_without_apprise_a_run_with_alerts_names_the_extra(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project(
        tmp_path / "p",
        PROJECT + 'alerts:\n  - {name: ops, on: [run_failed], to: ["json://127.0.0.1:9/x"]}\n',
    )
    monkeypatch.setitem(sys.modules, "apprise", None)  # as if not installed: import fails
    code, _, err = cli("run", "-p", root)
    assert (code, err.strip()) == (
        2,
        "error: alerts need apprise, which is not installed: pip install 'penstock[alerts]'",
    )
