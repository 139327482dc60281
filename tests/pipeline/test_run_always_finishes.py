"""Every run ends with a final status: an unexpected exception fails its step, not the run's
record; a run left `running` by a killed process is marked `abandoned` by the next run that
holds the warehouse lock, and never while its process is alive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import penstock
from penstock.observe import MetadataStore

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: finishes
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  events:
    source: landing
    files: "events/*.jsonl"
    format: jsonl
    columns:
      id: {type: bigint, required: true}
  items:
    source: landing
    files: "items/*.csv"
    columns:
      id: {type: bigint, required: true}
"""
FILES = {
    "landing/items/a.csv": "id\n1\n2\n",
    "landing/events/a.jsonl": '{"id": 1}\n',
}


def store(project: Path) -> MetadataStore:
    return MetadataStore(f"sqlite:///{project / '.penstock' / 'metadata.db'}")


def run_statuses(project: Path) -> list[str]:
    with store(project) as s:
        return [r.status for r in reversed(s.runs())]


def test_a_plain_exception_fails_its_step_and_the_run_ends_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    project = write_project(tmp_path, PROJECT, FILES)
    monkeypatch.setenv("PENSTOCK_FAULT", "before_load_commit:raise")
    code, _, err = cli("run", "-p", project)
    assert code == 1
    assert "Traceback" not in err
    assert "RuntimeError: fault injected at before_load_commit" in err
    with store(project) as s:
        (run,) = s.runs()
        assert run.status == "failed" and run.ended_at is not None
        steps = s.steps(run.run_id)
        loads = [st for st in steps if st.step == "load"]
        assert {st.object for st in loads} == {"events", "items"}
        assert {st.status for st in loads} == {"failed"}  # no step left running
        assert all(st.ended_at is not None for st in steps)
        errors = s.logs(run.run_id, "error")
        assert errors and all("fault injected" in e.message for e in errors)
        assert all("Traceback" in e.fields["traceback"] for e in errors)
    monkeypatch.delenv("PENSTOCK_FAULT")
    assert penstock.run(project).status == "success"
    assert query(project, "SELECT count(*) FROM items") == [(2,)]


def test_a_crash_in_discovery_fails_the_object_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {**FILES, "landing/events/a.jsonl": '{"id": 1, "": 2}\n'}
    project = write_project(tmp_path, PROJECT, files)
    monkeypatch.setenv("PENSTOCK_FAULT", "after_stage:raise")
    result = penstock.run(project)
    assert result.status == "failed"
    assert {f.object for f in result.failures} == {"events", "items"}
    assert run_statuses(project) == ["failed"]
    with store(project) as s:
        (run,) = s.runs()
        assert {st.status for st in s.steps(run.run_id)} <= {"success", "failed"}
    monkeypatch.delenv("PENSTOCK_FAULT")
    # whatever the JSONL reader makes of the key "", the run ends with a final status
    result = penstock.run(project)
    assert run_statuses(project)[-1] == result.status
    assert query(project, "SELECT count(*) FROM items") == [(2,)]


def test_an_interrupt_still_ends_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = write_project(tmp_path, PROJECT, FILES)
    monkeypatch.setenv("PENSTOCK_FAULT", "after_stage:interrupt")
    with pytest.raises(KeyboardInterrupt):
        penstock.run(project)
    with store(project) as s:
        (run,) = s.runs()
        assert run.status == "failed" and run.error is not None
        assert "interrupted" in run.error
        assert all(st.status != "running" for st in s.steps(run.run_id))


def _penstock(project: Path, *args: str, fault: str | None = None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "PENSTOCK_FAULT"}
    if fault:
        env["PENSTOCK_FAULT"] = fault
    return subprocess.Popen(
        [sys.executable, "-m", "penstock.cli.app", *args, "-p", str(project)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_running(project: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (project / ".penstock" / "metadata.db").exists() and "running" in run_statuses(project):
            return
        time.sleep(0.1)
    raise AssertionError("the run never started")


@pytest.mark.chaos
def test_a_killed_run_is_marked_abandoned_by_the_next_run(tmp_path: Path) -> None:
    project = write_project(tmp_path, PROJECT, FILES)
    killed = _penstock(project, "run", fault="after_stage")
    killed.communicate(timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert run_statuses(project) == ["running"]
    # reading commands do not hold the lock and do not touch it
    with store(project) as s:
        s.runs()
    assert run_statuses(project) == ["running"]
    assert penstock.run(project).status == "success"
    assert run_statuses(project) == ["abandoned", "success"]
    with store(project) as s:
        abandoned = s.runs()[1]
        assert abandoned.error is not None and "abandoned" in abandoned.error
        assert all(st.status != "running" for st in s.steps(abandoned.run_id))


@pytest.mark.chaos
def test_a_live_run_is_not_marked_abandoned(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT, FILES)
    live = _penstock(project, "run", fault="after_stage:hang")
    try:
        _wait_for_running(project)
        code, out, err = cli("run", "-p", project, "--wait", "1")
        assert code == 0  # it defers to the live run (the project's lease), naming it
        assert f"PID {live.pid}" in out and "deferred" in out and "nothing was done" in out
        assert f"PID {live.pid}" in err  # while it waited
        assert run_statuses(project) == ["running"]  # the live run is left alone
    finally:
        live.kill()
        live.communicate()
    assert penstock.run(project).status == "success"
    assert run_statuses(project) == ["abandoned", "success"]
