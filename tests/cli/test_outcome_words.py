"""`run`'s summary, `status` and `runs` say the same outcome words, in tables and in --json:
success, warning, failed (and running, abandoned: tests/cli/test_status_outcomes.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from penstock.outcomes import OUTCOMES, as_outcome, run_outcome, worst

from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: words
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    on_invalid: fail
    columns:
      id:  {type: bigint, required: true}
      qty: {type: integer, min: 0}
  items:
    source: landing
    files: "items/*.csv"
    columns:
      id:  {type: bigint, required: true}
      qty: {type: integer, min: 0}
  events:
    source: landing
    files: "events/*.csv"
    columns:
      id: {type: bigint, required: true}
"""


def run_json(cli: Cli, project: Path, *args: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = cli("run", "-p", project, "--json", *args)
    return code, json.loads(out)


def status_words(cli: Cli, project: Path) -> dict[str, str]:
    code, out, _ = cli("status", "-p", project, "--json")
    assert code == 0
    return {o["object"]: o["last_status"] for o in json.loads(out)["objects"]}


def latest_run(cli: Cli, project: Path) -> dict[str, Any]:
    code, out, _ = cli("runs", "-p", project, "--json", "--limit", "1")
    assert code == 0
    (run,) = json.loads(out)
    return dict(run)


def table_cell(out: str, first: str, column: str) -> str:
    head = next(line for line in out.splitlines() if line.startswith("┃"))
    names = [c.strip() for c in head.strip("┃").split("┃")]
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│").split("│")]
        if line.startswith("│") and cells[0].startswith(first):
            return cells[names.index(column)]
    raise AssertionError(f"no row {first!r} in\n{out}")


def test_summary_status_and_runs_agree_run_after_run(tmp_path: Path, cli: Cli) -> None:
    files = {
        "landing/orders/a.csv": "id,qty\n1,-1\n",  # on_invalid fail: the object fails
        "landing/items/a.csv": "id,qty\n1,1\n2,-5\n",  # a row quarantined: warning
        "landing/events/a.csv": "id\n1\n",
    }
    project = write_project(tmp_path, PROJECT, files)
    seen: set[str] = set()

    code, run = run_json(cli, project)
    assert code == 1
    summary = {o["object"]: o["status"] for o in run["objects"]}
    assert summary == {"orders": "failed", "items": "warning", "events": "success"}
    assert status_words(cli, project) == summary
    assert (run["status"], latest_run(cli, project)["status"]) == ("failed", "failed")
    seen |= {run["status"], *summary.values()}

    # rows broke a contract, nothing failed: warning everywhere
    (project / "landing/items/b.csv").write_text("id,qty\n3,-1\n")
    code, run = run_json(cli, project, "-s", "items,events")
    assert code == 0
    summary = {o["object"]: o["status"] for o in run["objects"]}
    assert summary == {"items": "warning", "events": "success"}
    assert status_words(cli, project) == {"orders": "failed", **summary}
    assert (run["status"], latest_run(cli, project)["status"]) == ("warning", "warning")
    code, out, _ = cli("runs", "-p", project, "--limit", "1")
    assert table_cell(out, run["run_id"][:12], "status") == "warning"
    code, out, _ = cli("status", "-p", project)
    assert table_cell(out, "items", "last status") == "warning"
    code, out, _ = cli("run", "-p", project, "-s", "events")
    assert table_cell(out, "events", "status") == "success"

    # clean: success everywhere
    (project / "landing/items/c.csv").write_text("id,qty\n4,4\n")
    code, run = run_json(cli, project, "-s", "items")
    assert code == 0
    assert [o["status"] for o in run["objects"]] == ["success"]
    assert status_words(cli, project)["items"] == "success"
    assert (run["status"], latest_run(cli, project)["status"]) == ("success", "success")
    seen |= {run["status"]}

    assert seen == {"success", "warning", "failed"} and seen <= set(OUTCOMES)


def test_the_outcome_rules() -> None:
    assert OUTCOMES == ("success", "warning", "running", "upstream_failed", "failed", "abandoned")
    assert as_outcome("skipped") == "success"  # a step that had nothing to do did its job
    assert as_outcome("reconciled") == "success"  # a run recorded from the ledger
    assert worst([]) == "success"
    assert worst(["success", "skipped", "warning"]) == "warning"
    assert worst(["warning", "running"]) == "running"
    assert worst(["running", "upstream_failed"]) == "upstream_failed"
    assert worst(["upstream_failed", "failed"]) == "failed"
    assert worst(["running", "failed"]) == "failed"
    assert worst(["failed", "abandoned"]) == "abandoned"
    assert run_outcome("success", warned=True) == "warning"
    assert run_outcome("reconciled", warned=False) == "success"
    assert run_outcome("failed", warned=True) == "failed"
    assert run_outcome("abandoned", warned=True) == "abandoned"
