"""`penstock run --resume RUN` (issue 8, part 4): redo only what that run did not complete.

A run killed in the middle of a multi-object run leaves one object completed, one half done
and one never reached; resuming it redoes the last two only, and every batch ends loaded
exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from penstock.catalog import load_project
from penstock.observe import MetadataStore

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

# the plan runs customers, then orders (after customers), then events
PROJECT = """
name: resumable
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    depends_on: [customers]
    micro_batch: {files: 1}
    columns:
      id: {type: bigint, required: true}
  customers:
    source: landing
    files: "customers/*.csv"
    columns:
      id: {type: bigint, required: true}
  events:
    source: landing
    files: "events/*.csv"
    columns:
      id: {type: bigint, required: true}
"""
FILES = {
    "landing/customers/1.csv": "id\n1\n2\n",
    "landing/orders/1.csv": "id\n10\n11\n",
    "landing/orders/2.csv": "id\n12\n",
    "landing/events/1.csv": "id\n30\n31\n32\n",
}


def killed_run(project: Path, point: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "penstock.cli.app", "run", "-p", str(project)],
        env={**os.environ, "PENSTOCK_FAULT": point},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def object_steps(project: Path, run_id: str) -> list[tuple[str, str]]:
    with MetadataStore(load_project(project).metadata_url) as store:
        return [(s.object, s.status) for s in store.steps(run_id) if s.step == "object"]


def runs(cli: Cli, project: Path) -> list[dict[str, object]]:
    code, out, _ = cli("runs", "-p", project, "--json")
    assert code == 0
    return list(json.loads(out))


def test_resume_redoes_what_a_killed_run_left_and_loads_every_batch_once(
    tmp_path: Path, cli: Cli
) -> None:
    project = write_project(tmp_path, PROJECT, FILES)
    # loads pass `after_load` once per chunk: customers (1), orders' first file (2): killed
    # there, with customers complete, orders half done and events never reached
    killed = killed_run(project, "after_load@2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (first,) = runs(cli, project)
    run_id = str(first["run_id"])
    assert query(project, "SELECT object, count(*) FROM penstock.loads GROUP BY 1 ORDER BY 1") == [
        ("customers", 1),
        ("orders", 1),
    ]

    code, out, err = cli("run", "-p", project, "--resume", run_id[:8], "--json")
    assert code == 0, err
    resumed = json.loads(out)
    assert [(o["object"], o["status"]) for o in resumed["objects"]] == [
        ("orders", "success"),
        ("events", "success"),
    ]
    # customers was not touched again: the resumed run has no step of it
    assert object_steps(project, resumed["run_id"]) == [
        ("orders", "success"),
        ("events", "success"),
    ]
    latest = runs(cli, project)[0]
    assert (latest["run_id"], latest["command"], latest["selector"]) == (
        resumed["run_id"],
        "resume",
        "orders,events",
    )
    # every file loaded exactly once, and the tables hold every row once
    assert query(
        project, "SELECT source_file, count(*) FROM penstock.loads GROUP BY 1 ORDER BY 1"
    ) == [
        ("landing/customers/1.csv", 1),
        ("landing/events/1.csv", 1),
        ("landing/orders/1.csv", 1),
        ("landing/orders/2.csv", 1),
    ]
    assert query(project, "SELECT count(*), count(DISTINCT id) FROM orders") == [(3, 3)]
    assert query(project, "SELECT count(*) FROM events") == [(3,)]

    # resuming it again, or the resumed run, finds nothing left
    code, out, _ = cli("run", "-p", project, "--resume", resumed["run_id"])
    assert code == 0
    assert "nothing to resume" in out and "orders, events" in out
    assert runs(cli, project)[0]["run_id"] == resumed["run_id"]  # no new run was recorded


def test_resume_picks_up_objects_held_back_by_a_failed_upstream(tmp_path: Path, cli: Cli) -> None:
    files = {**FILES, "landing/customers/1.csv": "id\n1\nnot-a-number\n"}
    project = write_project(
        tmp_path,
        PROJECT.replace(
            '    files: "customers/*.csv"\n', '    files: "customers/*.csv"\n    on_invalid: fail\n'
        ),
        files,
    )
    code, out, _ = cli("run", "-p", project, "--json")
    failed = json.loads(out)
    assert code == 1
    # the fix: a corrected file replaces the bad one (the bad batch is skipped)
    code, out, _ = cli("batches", "-p", project, "customers", "--json")
    (bad,) = [b for b in json.loads(out)["batches"] if b["status"] == "failed"]
    assert (
        cli("batches", "-p", project, "skip", "customers", bad["batch_id"], "--reason", "x")[0] == 0
    )
    (project / "landing/customers/1.csv").write_text("id\n1\n2\n")
    code, out, err = cli("run", "-p", project, "--resume", failed["run_id"], "--json")
    assert code == 0, err
    assert [o["object"] for o in json.loads(out)["objects"]] == ["customers", "orders"]
    assert query(project, "SELECT count(*) FROM orders") == [(3,)]


def test_resume_refuses_what_it_cannot_do(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT, FILES)
    code, _, err = cli("run", "-p", project, "--resume", "nope")
    assert code != 0 and "no run has an id starting with 'nope'" in err
    assert cli("rebuild", "-p", project)[0] == 0
    (rebuild,) = runs(cli, project)
    code, _, err = cli("run", "-p", project, "--resume", str(rebuild["run_id"]))
    assert code != 0 and "only a `run` can be resumed" in err
    code, _, err = cli("run", "-p", project, "--resume", "x", "--select", "orders")
    assert code != 0 and "do not give --select too" in err
