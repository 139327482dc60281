"""A warehouse held by another process is a transient state: run and rebuild wait for it
(bounded by --wait), saying which process holds it, instead of failing at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: locks
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.csv"
    columns:
      id: {type: bigint, required: true}
"""


def hold(database: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the DuckDB file for `seconds`, then releasing it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', "
            "flush=True); time.sleep(float(sys.argv[2])); c.close(); print('released', "
            "flush=True); time.sleep(60)",
            str(database),
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_run_waits_for_a_holder_that_lets_go(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/items/a.csv": "id\n1\n2\n"})
    holder = hold(project / "warehouse.duckdb", 1.5)
    try:
        started = time.monotonic()
        code, out, err = cli("run", "-p", project, "--wait", "30", "--json")
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.communicate()
    assert code == 0, err
    assert json.loads(out)["status"] == "success"
    assert waited >= 1.0
    assert f"PID {holder.pid}" in err and "waiting up to 30s" in err
    assert query(project, "SELECT id FROM items ORDER BY id") == [(1,), (2,)]


def test_run_and_rebuild_give_up_naming_the_holder_and_the_wait_option(
    tmp_path: Path, cli: Cli
) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/items/a.csv": "id\n1\n"})
    holder = hold(project / "warehouse.duckdb", 60)
    try:
        started = time.monotonic()
        code, _, err = cli("run", "-p", project, "--wait", "0.5")
        waited = time.monotonic() - started
        rebuild_code, _, rebuild_err = cli("rebuild", "-p", project, "--wait", "0")
    finally:
        holder.kill()
        holder.communicate()
    assert code == 1
    assert 0.5 <= waited < 10
    assert f"PID {holder.pid}" in err and "--wait SECONDS" in err
    assert "gave up after waiting 0.5s" in err
    assert rebuild_code == 1 and f"PID {holder.pid}" in rebuild_err
    # nothing was recorded as a run: it never started
    code, out, _ = cli("runs", "-p", project, "--json")
    assert code == 0 and json.loads(out) == []
