"""A `rebuild --restage` killed (SIGKILL) while it replaces a batch's parse leaves that batch
with its old parse or its new one, never neither: the next command finishes the swap, and
running `rebuild --restage` again gives the tables of one that was never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import penstock
from penstock.lake import Lake, StagedBatch

from helpers import query, write_project

pytestmark = pytest.mark.chaos

YML = """
name: restage_crash
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    load: merge
    CSV
    columns:
      id:     {type: integer, required: true}
      name:   {type: text}
"""

FILES: dict[str, str | bytes] = {
    "landing/orders/a.csv": "id;name\n1;ann\n2;bob\n",
    "landing/orders/b.csv": "id;name\n3;cy\n",
}
FIXED = [(1, "ann"), (2, "bob"), (3, "cy")]


def batches(project: Path) -> dict[str, StagedBatch]:
    return {b.manifest.source_file: b for b in Lake(project / "lake").batches("orders")}


def rebuild_killed_at(project: Path, point: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "penstock.cli.app", "rebuild", "--restage", "-p", str(project)],
        env={**os.environ, "PENSTOCK_FAULT": point},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def staged_wrong(tmp_path: Path) -> Path:
    """Both files staged with ',' (one column each, every row quarantined), then `;` set."""
    project = write_project(tmp_path, YML.replace("CSV", ""), FILES)
    assert penstock.run(project).status == "success"
    assert query(project, "SELECT count(*) FROM orders") == [(0,)]
    yml = (project / "penstock.yml").read_text()
    (project / "penstock.yml").write_text(
        yml.replace("    load: merge\n", '    load: merge\n    csv: {delimiter: ";"}\n')
    )
    return project


def test_killed_between_the_renames_the_old_parse_comes_back(staged_wrong: Path) -> None:
    project = staged_wrong
    old = batches(project)
    first = min(old.values(), key=lambda b: b.manifest.extracted_at)
    killed = rebuild_killed_at(project, "inside_restage_swap")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    stage = project / "lake" / "stage" / "orders"
    # the first batch's old parse is aside, its new one not yet in place
    assert not first.directory.exists()
    assert (stage / f".replaced-{first.batch_id}" / "manifest.json").is_file()
    # a reader without the lock still sees every batch, with its old parse
    assert {n: b.manifest for n, b in batches(project).items()} == {
        n: b.manifest for n, b in old.items()
    }
    # the next command holding the lock puts the old parse back; the table was never reset
    assert penstock.rebuild(project).status == "success"
    assert {n: b.manifest for n, b in batches(project).items()} == {
        n: b.manifest for n, b in old.items()
    }
    assert list(stage.glob(".replaced-*")) == [] and list(stage.glob(".tmp-*")) == []
    assert query(project, "SELECT count(*) FROM orders") == [(0,)]
    # and restaging again completes the job
    again = penstock.rebuild(project, restage=True)
    assert again.status == "success", [f.error for f in again.failures]
    assert query(project, "SELECT id, name FROM orders ORDER BY id") == FIXED


def test_killed_after_the_swap_the_new_parse_stays(staged_wrong: Path) -> None:
    project = staged_wrong
    old = batches(project)
    first = min(old.values(), key=lambda b: b.manifest.extracted_at)
    # written when the old parse was loaded (the two batches loaded together: one file)
    (stale,) = (project / "lake" / "quarantine" / "orders").glob("chunk-*.parquet")
    killed = rebuild_killed_at(project, "after_restage_swap")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    now = batches(project)
    # the first batch has its new parse (same id, extraction time), the second its old one
    name = first.manifest.source_file
    assert now[name].manifest.columns == ("id", "name")
    assert now[name].batch_id == first.batch_id
    assert now[name].manifest.extracted_at == first.manifest.extracted_at
    (other,) = [n for n in old if n != name]
    assert now[other].manifest == old[other].manifest
    # the next command (a run) drops the old parse; no half-state
    assert penstock.run(project).loads() == []
    stage = project / "lake" / "stage" / "orders"
    assert list(stage.glob(".replaced-*")) == [] and list(stage.glob(".tmp-*")) == []
    assert batches(project)[name].manifest == now[name].manifest
    # the chunk's quarantine file holds other batches too: the replay of the rebuild that
    # finishes the restage writes the lake's quarantine files anew, and this one goes
    assert stale.exists()
    again = penstock.rebuild(project, restage=True)
    assert again.status == "success", [f.error for f in again.failures]
    assert query(project, "SELECT id, name FROM orders ORDER BY id") == FIXED
    assert not stale.exists()
