"""A process killed (SIGKILL) at any step leaves nothing the next run does not repair.

Each test kills a real `penstock run` at a named fault point, runs again, and compares the
warehouse with a run that was never interrupted: every batch loaded exactly once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import penstock
from penstock.demo.expectations import DemoExpectations

from helpers import query

pytestmark = pytest.mark.chaos

CONTENT = {
    "orders": "SELECT * EXCLUDE (_loaded_at) FROM orders",
    "customers": "SELECT * EXCLUDE (_loaded_at) FROM customers",
    "quarantine.orders": "SELECT * FROM quarantine.orders",
    "quarantine.customers": "SELECT * FROM quarantine.customers",
    "ledger": "SELECT batch_id, rows_in, rows_loaded, rows_quarantined, rows_duplicate "
    "FROM penstock.loads",
}


def contents(project: Path) -> dict[str, list[tuple[object, ...]]]:
    return {name: sorted(query(project, sql), key=repr) for name, sql in CONTENT.items()}


def run_killed_at(
    project: Path, point: str, command: str = "run"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PENSTOCK_FAULT": point}
    return subprocess.run(
        [sys.executable, "-m", "penstock.cli.app", command, "-p", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def reference(
    demo_template: tuple[Path, DemoExpectations], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[tuple[object, ...]]]:
    project = tmp_path_factory.mktemp("reference") / "demo"
    shutil.copytree(demo_template[0], project)
    assert penstock.run(project).status == "success"
    return contents(project)


@pytest.mark.parametrize(
    "point",
    [
        "before_manifest",
        "after_stage",
        "before_load_commit",
        "inside_load_transaction",
        "after_load",
    ],
)
def test_killed_run_is_repaired_by_the_next_run(
    point: str,
    demo: tuple[Path, DemoExpectations],
    reference: dict[str, list[tuple[object, ...]]],
) -> None:
    project, expected = demo
    killed = run_killed_at(project, point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    result = penstock.run(project)
    assert result.status == "success", [f.error for f in result.failures]
    ledger = query(project, "SELECT batch_id, count(*) FROM penstock.loads GROUP BY batch_id")
    assert len(ledger) == len(expected.files) and all(n == 1 for _, n in ledger)
    assert contents(project) == reference
    # a third run finds nothing to do
    assert penstock.run(project).loads() == []
    assert list((project / "lake").rglob(".tmp-*")) == []


def test_temp_files_of_a_killed_writer_are_swept(demo: tuple[Path, DemoExpectations]) -> None:
    project, _ = demo
    stray = project / "lake" / "quarantine" / "orders" / ".tmp-99999-x.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"half a parquet file")
    assert penstock.run(project).status == "success"
    assert not stray.exists()


LOAD_TIMES = {
    "orders": "SELECT _batch_id, min(_loaded_at), max(_loaded_at) FROM orders GROUP BY ALL",
    "ledger": "SELECT batch_id, loaded_at FROM penstock.loads",
}


def load_times(project: Path) -> dict[str, list[tuple[object, ...]]]:
    return {name: sorted(query(project, sql), key=repr) for name, sql in LOAD_TIMES.items()}


REBUILD_POINTS = [
    "inside_reset",
    "after_reset",
    "before_load_commit",
    "inside_load_transaction",
    "after_load",
]


@pytest.mark.parametrize("point", REBUILD_POINTS)
def test_killed_rebuild_is_repaired_by_the_next_rebuild(
    point: str,
    demo: tuple[Path, DemoExpectations],
    reference: dict[str, list[tuple[object, ...]]],
) -> None:
    project, _ = demo
    assert penstock.run(project).status == "success"
    times = load_times(project)
    killed = run_killed_at(project, point, "rebuild")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    result = penstock.rebuild(project)
    assert result.status == "success", [f.error for f in result.failures]
    assert contents(project) == reference
    # the original load times survive a rebuild that died halfway
    assert load_times(project) == times
    assert list((project / "lake").rglob(".tmp-*")) == []


@pytest.mark.parametrize("point", ["after_reset", "inside_load_transaction"])
def test_killed_rebuild_is_repaired_by_the_next_run(
    point: str,
    demo: tuple[Path, DemoExpectations],
    reference: dict[str, list[tuple[object, ...]]],
) -> None:
    project, expected = demo
    assert penstock.run(project).status == "success"
    times = load_times(project)
    killed = run_killed_at(project, point, "rebuild")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert penstock.run(project).status == "success"
    ledger = query(project, "SELECT batch_id, count(*) FROM penstock.loads GROUP BY batch_id")
    assert len(ledger) == len(expected.files) and all(n == 1 for _, n in ledger)
    assert contents(project) == reference
    assert load_times(project) == times
