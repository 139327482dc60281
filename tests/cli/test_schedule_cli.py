"""`penstock schedule` as real processes: two schedulers on one project (one runs the work, the
other stands by and takes over when the first is killed), SIGTERM lets the run in progress
finish and exits 0 with the lease released, a second signal interrupts that run (recorded as
failed); and `--once` in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from penstock.catalog import load_project
from penstock.observe import MetadataStore
from penstock.observe.leases import LeaseStore

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

# a yearly schedule: on first sight its latest tick (1 January) runs once (catchup latest),
# and no other tick comes during a test
PROJECT = """
name: daemon
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.csv"
    schedule: "0 0 1 1 *"
    columns:
      id: {type: bigint, required: true}
"""
FILES = {"landing/items/a.csv": "id\n1\n2\n3\n"}


class Daemon:
    """A `penstock schedule` subprocess whose output lines are collected as they come."""

    def __init__(self, project: Path, *args: str, pause: Path | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PENSTOCK_FAULT")}
        if pause is not None:
            pause.mkdir(exist_ok=True)
            env |= {"PENSTOCK_FAULT": "after_stage@1:pause", "PENSTOCK_FAULT_DIR": str(pause)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "penstock.cli.app", "schedule", "-p", str(project), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self.saw(text):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                time.sleep(0.2)  # the last lines
                raise AssertionError(f"never said {text!r}:\n" + "\n".join(self.lines))
            time.sleep(0.05)

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        self.reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()


def leases(project: Path) -> list[str]:
    with MetadataStore(load_project(project).metadata_url) as store:
        return [row.name for row in LeaseStore(store.engine, "daemon").all()]


def run_statuses(project: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "penstock.cli.app", "runs", "--json", "-p", str(project)],
        capture_output=True,
        text=True,
        check=True,
    )
    return [r["status"] for r in json.loads(done.stdout)]


@pytest.mark.chaos
def test_two_schedulers_one_runs_the_other_takes_over_when_it_dies(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", PROJECT, FILES)
    both = [Daemon(project, "--poll", "200ms"), Daemon(project, "--poll", "200ms")]
    try:
        deadline = time.monotonic() + 60
        while not (
            any(d.saw("ended: success") for d in both) and any(d.saw("standing by") for d in both)
        ):
            assert time.monotonic() < deadline, [d.lines for d in both]
            time.sleep(0.05)
        active = next(d for d in both if d.saw("ended: success"))
        standby = next(d for d in both if d is not active)
        line = next(x for x in standby.lines if "standing by" in x)
        assert f"standing by: penstock schedule (PID {active.proc.pid} on " in line
        active.proc.kill()  # SIGKILL: no release; its pid is gone on this host
        assert active.finish() == -signal.SIGKILL
        standby.wait_for("schedule: active:")
        time.sleep(1.0)  # a few passes: the tick the first ran is not run again
        standby.proc.send_signal(signal.SIGTERM)
        assert standby.finish() == 0, "\n".join(standby.lines)
    finally:
        for daemon in both:
            daemon.kill()
    assert standby.saw("SIGTERM: stopping after the run in progress")
    assert standby.saw("stopped: the scheduler lease is released")
    assert not standby.saw("starting a run")
    assert run_statuses(project) == ["success"]  # the work ran once
    assert query(project, "SELECT count(*) FROM items") == [(3,)]
    assert leases(project) == []


@pytest.mark.chaos
def test_sigterm_lets_the_run_in_progress_finish_then_exits_0(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", PROJECT, FILES)
    pause = tmp_path / "fault"
    daemon = Daemon(project, "--poll", "200ms", pause=pause)
    try:
        daemon.wait_for("starting a run of items")
        while not (pause / "paused").exists():
            time.sleep(0.05)
        assert sorted(leases(project)) == ["project", "scheduler"]
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.wait_for("SIGTERM: stopping after the run in progress")
        assert daemon.proc.poll() is None  # the run goes on
        (pause / "resume").touch()
        assert daemon.finish() == 0, "\n".join(daemon.lines)
    finally:
        (pause / "resume").touch()
        daemon.kill()
    assert daemon.saw("ended: success")
    assert run_statuses(project) == ["success"]
    assert query(project, "SELECT count(*) FROM items") == [(3,)]
    assert leases(project) == []


@pytest.mark.chaos
def test_a_second_signal_interrupts_the_run_recorded_as_failed(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", PROJECT, FILES)
    pause = tmp_path / "fault"
    daemon = Daemon(project, "--poll", "200ms", pause=pause)
    try:
        daemon.wait_for("starting a run of items")
        while not (pause / "paused").exists():
            time.sleep(0.05)
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.wait_for("SIGTERM: stopping")
        daemon.proc.send_signal(signal.SIGINT)
        assert daemon.finish() == 0, "\n".join(daemon.lines)
    finally:
        daemon.kill()
    assert daemon.saw("SIGINT again: interrupting the run in progress")
    assert run_statuses(project) == ["failed"]
    assert leases(project) == []
    # nothing half-done: the next pass runs the tick again and loads each row once
    again = subprocess.run(
        [sys.executable, "-m", "penstock.cli.app", "schedule", "--once", "-p", str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert query(project, "SELECT count(*) FROM items") == [(3,)]


def test_once_runs_what_is_due_and_says_so(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path / "p", PROJECT, FILES)
    code, out, err = cli("schedule", "--once", "-p", project)
    assert code == 0, err
    assert "times in UTC" in out and "starting a run of items" in out
    assert "ended: success" in out
    code, out, _ = cli("schedule", "--once", "-p", project)
    assert code == 0 and "starting a run" not in out  # the tick is done
    assert query(project, "SELECT count(*) FROM items") == [(3,)]


def test_bad_options_and_nothing_to_schedule_are_usage_errors(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path / "p", PROJECT, FILES)
    code, _, err = cli("schedule", "--once", "--poll", "soon", "-p", project)
    assert code == 2 and "--poll" in err
    plain = write_project(tmp_path / "q", PROJECT.replace('schedule: "0 0 1 1 *"', ""), FILES)
    code, _, err = cli("schedule", "--once", "-p", plain)
    assert code == 2 and "nothing to schedule" in err
