"""Two runs on one project at once (two terminals, cron over a manual run): the second waits
for the first's project lease up to --wait, then defers (exit 0, one line naming the first
run) or, if the first ends in time, runs and finds nothing new. Real processes; the first is
held mid-run at a fault point. Either way the warehouse equals a single run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from helpers import query, write_project

PROJECT = """
name: twice
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.csv"
    load: merge
    key: [id]
    columns:
      id: {type: bigint, required: true}
      name: {type: text}
"""
FILES = {
    "landing/items/a.csv": "id,name\n1,a\n2,b\n",
    "landing/items/b.csv": "id,name\n3,c\n2,B\n",
}


def penstock(project: Path, *args: str, pause: Path | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PENSTOCK_FAULT")}
    if pause is not None:
        pause.mkdir(exist_ok=True)
        env |= {"PENSTOCK_FAULT": "after_stage@1:pause", "PENSTOCK_FAULT_DIR": str(pause)}
    return subprocess.Popen(
        [sys.executable, "-m", "penstock.cli.app", *args, "-p", str(project)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def paused(pause: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (pause / "paused").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first run never reached its pause"
        time.sleep(0.05)


def single_run_state(project: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    rows = query(project, "SELECT id, name FROM items ORDER BY id")
    ledger = query(
        project, "SELECT source_file, count(*) FROM penstock.loads GROUP BY ALL ORDER BY 1"
    )
    return rows, ledger


EXPECTED = (
    [(1, "a"), (2, "B"), (3, "c")],
    [("landing/items/a.csv", 1), ("landing/items/b.csv", 1)],
)


def runs(project: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "penstock.cli.app", "runs", "--json", "-p", str(project)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [r["status"] for r in json.loads(done.stdout)]


def test_the_second_run_defers_naming_the_first(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", PROJECT, FILES)
    pause = tmp_path / "fault"
    first = penstock(project, "run", pause=pause)
    try:
        paused(pause, first)
        second = penstock(project, "run", "--wait", "0.5")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        (line,) = out.strip().splitlines()
        assert line.startswith("deferred: run ") and f"PID {first.pid}" in line
        assert "holds project 'twice'" in line and "since " in line and "UTC" in line
        assert "nothing was done" in line
        rebuild = penstock(project, "rebuild", "--wait", "0", "--json")
        out, err = rebuild.communicate(timeout=60)
        assert rebuild.returncode == 0, err
        deferred = json.loads(out)
        assert deferred["status"] == "deferred" and deferred["holder_pid"] == first.pid
    finally:
        (pause / "resume").touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert single_run_state(project) == EXPECTED
    assert runs(project) == ["success"]  # the deferred run and rebuild recorded nothing


def test_the_second_run_waits_for_the_first_then_finds_nothing_new(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", PROJECT, FILES)
    pause = tmp_path / "fault"
    first = penstock(project, "run", pause=pause)
    try:
        paused(pause, first)
        second = penstock(project, "run", "--wait", "60", "--json")
        assert second.stderr is not None
        waiting = second.stderr.readline()  # it says whom it waits for, then waits
        assert "waiting:" in waiting and f"PID {first.pid}" in waiting
        assert second.poll() is None
    finally:
        (pause / "resume").touch()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    result = json.loads(out)
    assert result["status"] == "success"
    assert [o["rows_loaded"] for o in result["objects"]] == [0]  # nothing new
    assert single_run_state(project) == EXPECTED
    assert runs(project) == ["success", "success"]
