"""`penstock logs --follow`: a live tail, from another process, of a run in progress in a
third. The run is really running (its process alive, stopped at a fault point after staging)
while its lines reach the tail; the tail ends when the run ends, or when its process dies."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen
from typing import IO

import pytest

from helpers import write_project

ENTRY = "import sys; from penstock.cli.app import main; sys.exit(main())"
PROJECT = """
name: tail
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.csv"
    key: [id]
    load: merge
    columns:
      id:  {type: bigint, required: true}
      qty: {type: integer, min: 0}
"""
FILES = {"landing/items/a.csv": "id,qty\n1,1\n2,-2\n", "landing/items/b.csv": "id,qty\n3,3\n"}


@contextmanager
def penstock(*args: str | Path, env: dict[str, str] | None = None) -> Iterator[Popen[str]]:
    """`penstock ARGS` in a process of its own; killed (if still alive) and reaped after."""
    with subprocess.Popen(
        [sys.executable, "-c", ENTRY, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    ) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(10)


def lines_of(stream: IO[str]) -> queue.Queue[tuple[float, str | None]]:
    """Each line of `stream` as it arrives, with when it arrived (None at the end)."""
    found: queue.Queue[tuple[float, str | None]] = queue.Queue()

    def pump() -> None:
        for line in stream:
            found.put((time.monotonic(), line.rstrip("\n")))
        found.put((time.monotonic(), None))

    threading.Thread(target=pump, daemon=True).start()
    return found


def wait_for_run(project: Path, cli: Callable[..., tuple[int, str, str]]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        code, out, _ = cli("runs", "-p", project, "--json")
        if code == 0 and json.loads(out):
            return str(json.loads(out)[0]["run_id"])
        time.sleep(0.05)
    raise AssertionError("the run never appeared in the store")


@pytest.mark.slow
@pytest.mark.chaos
def test_follow_shows_a_running_runs_lines_and_ends_when_its_process_dies(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    project = write_project(tmp_path, PROJECT, FILES)
    with penstock("run", "-p", project, env={"PENSTOCK_FAULT": "after_stage:hang"}) as run:
        run_id = wait_for_run(project, cli)
        with penstock("logs", "-p", project, "--follow", "--json") as tail:
            follow_until_killed(run, tail, run_id)


def follow_until_killed(run: Popen[str], tail: Popen[str], run_id: str) -> None:
    """Read the tail's lines until the staging line, with the run alive; kill the run;
    the tail ends naming it abandoned."""
    assert tail.stdout is not None
    arriving = lines_of(tail.stdout)
    seen: list[dict[str, object]] = []
    deadline = time.monotonic() + 30
    while not any("staged landing/items/a.csv" in str(r.get("message")) for r in seen):
        _, line = arriving.get(timeout=max(0.1, deadline - time.monotonic()))
        assert line is not None, "the tail ended before the run's staging line"
        seen.append(json.loads(line))
    # the run is still running (hung after staging a.csv): the line came live
    assert run.poll() is None
    assert {r["kind"] for r in seen} == {"log"} and {r["run_id"] for r in seen} == {run_id}
    staged = seen[-1]
    assert (staged["object"], staged["level"]) == ("items", "info")
    assert staged["step_id"] and staged["batch_id"]
    assert tail.poll() is None  # and the tail waits for more
    run.send_signal(signal.SIGKILL)
    run.wait(10)
    rest: list[dict[str, object]] = []
    while True:
        _, line = arriving.get(timeout=15)
        if line is None:
            break
        rest.append(json.loads(line))
    assert rest[-1] == {
        "kind": "run_ended",
        "run_id": run_id,
        "status": "abandoned",
        "ended_at": None,
    }
    assert tail.wait(10) == 1


@pytest.mark.slow
def test_follow_prints_until_the_run_ends(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    project = write_project(tmp_path, PROJECT, FILES)
    with penstock("run", "-p", project) as run:
        run_id = wait_for_run(project, cli)
        with penstock("logs", run_id[:8], "-p", project, "--follow", "--level", "warning") as tail:
            out, err = tail.communicate(timeout=60)
        assert tail.returncode == 0, err
        assert run.wait(30) == 0
    assert f"following run {run_id[:12]}" in err
    assert f"run {run_id[:12]} ended: success" in err
    lines = out.splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and "items" in lines[0]
    assert "landing/items/a.csv: 1 row(s) broke the contract (quarantined)" in lines[0]


def test_logs_filter_by_object_and_level(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    project = write_project(tmp_path, PROJECT, FILES)
    assert cli("run", "-p", project)[0] == 0
    code, out, _ = cli("logs", "-p", project, "--object", "items", "--json")
    assert code == 0
    records = json.loads(out)["logs"]
    assert records and {r["object"] for r in records} == {"items"}
    assert all(r["step_id"] for r in records)
    code, out, _ = cli("logs", "-p", project, "--object", "nothing", "--json")
    assert json.loads(out)["logs"] == []
    run_id = json.loads(cli("runs", "-p", project, "--json")[1])[0]["run_id"]
    code, out, _ = cli("logs", "--run", run_id[:6], "-p", project, "--level", "warning", "--json")
    assert [r["level"] for r in json.loads(out)["logs"]] == ["warning"]
    code, _, err = cli("logs", "-p", project, "--level", "loud")
    assert code == 2 and "unknown log level 'loud'" in err
