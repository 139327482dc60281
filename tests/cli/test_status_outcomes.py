"""`penstock status` shows, per object, the outcome of the latest run that selected it.

The rule: an object's status is the outcome of its most recent run that selected it —
`failed` if a step of the object failed in that run, `warning` if rows broke its contract,
`success` otherwise, also when that run had nothing new to do for it (its last loaded batch
still shows as `last batch`). While that run is still going it reads `running`; if its process
was killed before the object's work ended, `abandoned` (as `penstock runs` says of the run).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from penstock.catalog import load_project
from penstock.cli.progress import ProgressSink
from penstock.engine import Session

from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: outcomes
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    load: merge
    on_invalid: fail
    columns:
      id:  {type: bigint, required: true}
      qty: {type: integer, min: 0}
  items:
    source: landing
    files: "items/*.csv"
    on_invalid: quarantine
    columns:
      id:  {type: bigint, required: true}
      qty: {type: integer, min: 0}
"""


def status_json(cli: Cli, project: Path) -> dict[str, dict[str, Any]]:
    code, out, _ = cli("status", "-p", project, "--json")
    assert code == 0, out
    return {row["object"]: row for row in json.loads(out)["objects"]}


def status_table(cli: Cli, project: Path) -> dict[str, list[str]]:
    """The `penstock status` table as {object: [cells...]} (cells as printed)."""
    code, out, _ = cli("status", "-p", project)
    assert code == 0, out
    rows: dict[str, list[str]] = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃").split("│")]
        if len(cells) == 8 and cells[0] not in ("object", ""):
            rows[cells[0]] = cells
    return rows


def runs_json(cli: Cli, project: Path) -> list[dict[str, Any]]:
    code, out, _ = cli("runs", "-p", project, "--json")
    assert code == 0, out
    return list(json.loads(out))


def batch_id_of(cli: Cli, project: Path, object_name: str, status: str) -> str:
    code, out, _ = cli("batches", object_name, "-p", project, "--json")
    assert code == 0, out
    (batch,) = [b for b in json.loads(out)["batches"] if b["status"] == status]
    return str(batch["batch_id"])


def test_status_reads_success_once_the_failed_batch_is_skipped(tmp_path: Path, cli: Cli) -> None:
    """The user trial: skipping the failed batch and running again ends the failure, even when
    that run has nothing to load (the corrected file has not arrived yet)."""
    project = write_project(tmp_path, PROJECT, {"landing/orders/a.csv": "id,qty\n1,1\n"})
    assert cli("run", "-p", project, "-s", "orders")[0] == 0
    first = status_json(cli, project)["orders"]
    assert first["last_status"] == "success"

    (project / "landing/orders/b.csv").write_text("id,qty\n2,-1\n")
    assert cli("run", "-p", project, "-s", "orders")[0] == 1
    failed = status_json(cli, project)["orders"]
    assert failed["last_status"] == "failed"
    assert status_table(cli, project)["orders"][2] == "failed"
    assert failed["last_batch_at"] == first["last_batch_at"]  # nothing loaded since

    # running again without a decision retries the batch: still failed
    assert cli("run", "-p", project, "-s", "orders")[0] == 1
    assert status_json(cli, project)["orders"]["last_status"] == "failed"

    bad = batch_id_of(cli, project, "orders", "failed")
    code, _, _ = cli("batches", "skip", "orders", bad, "--reason", "resent later", "-p", project)
    assert code == 0
    # skipping alone runs nothing: the status still tells of the last run
    assert status_json(cli, project)["orders"]["last_status"] == "failed"

    assert cli("run", "-p", project, "-s", "orders")[0] == 0
    latest = runs_json(cli, project)[0]
    assert latest["status"] == "success"
    after = status_json(cli, project)["orders"]
    assert after["last_status"] == "success"
    assert after["last_run_id"] == latest["run_id"]
    assert after["last_run_at"] > failed["last_run_at"]
    assert after["last_batch_at"] == first["last_batch_at"]  # the skip run loaded nothing
    assert status_table(cli, project)["orders"][2] == "success"

    # the corrected file arrives: it loads, and the last batch moves on
    (project / "landing/orders/c.csv").write_text("id,qty\n2,2\n")
    assert cli("run", "-p", project, "-s", "orders")[0] == 0
    loaded = status_json(cli, project)["orders"]
    assert loaded["last_status"] == "success"
    assert loaded["last_batch_at"] > after["last_batch_at"]
    assert loaded["batches_loaded"] == 2


def test_a_run_with_nothing_new_shows_success_and_keeps_the_last_batch_time(
    tmp_path: Path, cli: Cli
) -> None:
    """Per the rule, a run that selected the object and had nothing new to do for it is its
    latest outcome: `success`, even after a run whose rows were quarantined (`warning`). When
    it last loaded a batch stays visible as `last_batch_at`."""
    project = write_project(tmp_path, PROJECT, {"landing/items/a.csv": "id,qty\n1,1\n2,-5\n"})
    assert cli("run", "-p", project)[0] == 0
    warned = status_json(cli, project)
    assert warned["items"]["last_status"] == "warning"
    # orders was selected and found no file: that run is its outcome, and it succeeded
    assert warned["orders"]["last_status"] == "success"
    assert warned["orders"]["last_batch_at"] is None

    assert cli("run", "-p", project)[0] == 0
    (latest, earlier) = runs_json(cli, project)[:2]
    again = status_json(cli, project)
    assert again["items"]["last_status"] == "success"
    assert again["items"]["last_run_id"] == latest["run_id"] != earlier["run_id"]
    assert again["items"]["last_batch_at"] == warned["items"]["last_batch_at"]
    assert again["items"]["rows_quarantined"] == 1
    # `runs` counts only real steps: the per-object record is no step of its own
    assert (latest["steps"], latest["failed_steps"]) == (0, 0)


def test_a_run_not_selecting_the_object_leaves_its_status(tmp_path: Path, cli: Cli) -> None:
    files = {"landing/orders/a.csv": "id,qty\n1,-1\n", "landing/items/a.csv": "id,qty\n1,1\n"}
    project = write_project(tmp_path, PROJECT, files)
    assert cli("run", "-p", project)[0] == 1
    assert cli("run", "-p", project, "-s", "items")[0] == 0
    got = status_json(cli, project)
    assert got["orders"]["last_status"] == "failed"  # items' run did not select orders
    assert got["items"]["last_status"] == "success"
    assert got["items"]["last_run_id"] != got["orders"]["last_run_id"]


def test_a_quarantined_row_shows_warning_in_status_and_in_runs(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/items/a.csv": "id,qty\n1,1\n2,-5\n"})
    assert cli("run", "-p", project, "-s", "items")[0] == 0
    (run,) = runs_json(cli, project)
    assert run["status"] == "warning" and run["rows_quarantined"] == 1
    items = status_json(cli, project)["items"]
    assert (items["last_status"], items["last_run_id"]) == ("warning", run["run_id"])
    assert status_table(cli, project)["items"][2] == "warning"


def test_status_json_matches_the_table(tmp_path: Path, cli: Cli) -> None:
    files = {"landing/orders/a.csv": "id,qty\n1,-1\n", "landing/items/a.csv": "id,qty\n1,-1\n"}
    project = write_project(tmp_path, PROJECT, files)
    assert cli("run", "-p", project)[0] == 1
    as_json = status_json(cli, project)
    as_table = status_table(cli, project)
    assert set(as_json) == set(as_table) == {"orders", "items"}
    assert (as_json["orders"]["last_status"], as_json["items"]["last_status"]) == (
        "failed",
        "warning",
    )
    for name, row in as_json.items():
        cells = as_table[name]
        assert cells[1] == row["load"]
        assert cells[2] == row["last_status"]
        assert cells[3] == row["last_run_at"][:19].replace("T", " ")
        last_batch = row["last_batch_at"]
        assert cells[4] == (last_batch[:19].replace("T", " ") if last_batch else "–")
        assert cells[5] == str(row["batches_loaded"])


def test_an_interrupted_run_shows_the_object_failed(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/items/a.csv": "id,qty\n1,1\n"})
    monkeypatch.setenv("PENSTOCK_FAULT", "after_stage:interrupt")
    code, _, _ = cli("run", "-p", project, "-s", "items")
    assert code == 130  # click turns the interrupt into exit 130
    (run,) = runs_json(cli, project)
    assert run["status"] == "failed"
    assert status_json(cli, project)["items"]["last_status"] == "failed"


@pytest.mark.chaos
def test_a_run_killed_mid_object_never_shows_the_object_as_success(
    tmp_path: Path, cli: Cli
) -> None:
    files = {"landing/items/a.csv": "id,qty\n1,1\n", "landing/orders/a.csv": "id,qty\n1,1\n"}
    project = write_project(tmp_path, PROJECT, files)
    # held after staging (not killed at once: the store's own thread may not have recorded the
    # object's start yet, which a kill would then lose; a busy machine showed it), then killed
    # once the store shows the object running
    faults = tmp_path / "faults"
    faults.mkdir()
    paused = subprocess.Popen(
        [sys.executable, "-m", "penstock.cli.app", "run", "-s", "items", "-p", str(project)],
        env={
            **os.environ,
            "PENSTOCK_FAULT": "after_stage:pause",
            "PENSTOCK_FAULT_DIR": str(faults),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (faults / "paused").exists():
            assert paused.poll() is None and time.monotonic() < deadline, "the run never paused"
            time.sleep(0.05)
        # its stage step succeeded, but the object's work never ended
        while status_json(cli, project).get("items", {}).get("last_status") != "running":
            assert time.monotonic() < deadline, status_json(cli, project)
            time.sleep(0.1)
    finally:
        paused.kill()
        assert paused.wait(60) == -signal.SIGKILL
    # the next run holding the lock marks the killed run abandoned; it does not select items
    assert cli("run", "-p", project, "-s", "orders")[0] == 0
    runs = runs_json(cli, project)
    assert [r["status"] for r in runs] == ["success", "abandoned"]
    items = status_json(cli, project)["items"]
    assert (items["last_status"], items["last_run_id"]) == ("abandoned", runs[1]["run_id"])
    # a run that selects it again repairs it
    assert cli("run", "-p", project, "-s", "items")[0] == 0
    assert status_json(cli, project)["items"]["last_status"] == "success"


def test_the_progress_bar_does_not_count_the_object_step(tmp_path: Path) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/items/a.csv": "id,qty\n1,1\n"})
    sink = ProgressSink(enabled=False)
    with Session(load_project(project)) as session:
        session.bus.subscribe(sink.handle)
        with sink:
            assert session.runner.run("items").status == "success"
    (task,) = sink.progress.tasks
    assert (task.description, task.total, task.completed) == ("items", 2, 2)  # stage + load
