"""Landing files that change: rewrites that keep size and mtime, files still being written.

A file is copied once into the lake while its bytes are hashed, and the copy is parsed: the
batch holds exactly the bytes its id names. An unchanged file is recognised by (name, size,
mtime, ctime, inode): a rewrite can restore mtime, never ctime. Files modified within the
source's settle time wait; a file that changes while it is copied is left for the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import penstock
from penstock.errors import ProjectErrors
from penstock.faults import fault_action
from penstock.observe import MetadataStore

from helpers import log_messages, query, write_project

YML = """
name: changes
sources:
  landing: {{kind: files, path: ./landing{settle}}}
objects:
  items:
    source: landing
    files: "items/*.csv"
    load: append
    columns:
      id: {{type: bigint, required: true}}
"""
HOUR_AGO = time.time_ns() - 3600 * 10**9


def project_with(tmp_path: Path, settle: str | None = "0s") -> Path:
    extra = f", settle: {settle}" if settle is not None else ""
    return write_project(tmp_path, YML.format(settle=extra))


def land(project: Path, name: str, text: str, mtime_ns: int | None = HOUR_AGO) -> Path:
    path = project / "landing" / "items" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def ids(project: Path) -> list[int]:
    return [r[0] for r in query(project, "SELECT id FROM items ORDER BY id")]


def test_a_same_size_rewrite_with_its_mtime_restored_is_staged(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    path = land(project, "a.csv", "id\n1\n")
    assert penstock.run(project).status == "success"
    before = path.stat()
    time.sleep(0.01)  # ctime has nanosecond resolution here; make the rewrite's differ
    path.write_text("id\n2\n")  # same size, different content
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    result = penstock.run(project)
    assert result.status == "success"
    assert [o.source_file for o in result.loads()] == ["landing/items/a.csv"]
    assert ids(project) == [1, 2]


def test_the_staged_bytes_are_the_hashed_bytes(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    path = land(project, "a.csv", "id\n1\n2\n")
    assert penstock.run(project).status == "success"
    (manifest,) = (project / "lake" / "stage" / "items").glob("*/manifest.json")
    content = json.loads(manifest.read_text())
    assert content["content_hash"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert content["ctime_ns"] == path.stat().st_ctime_ns
    assert content["inode"] == path.stat().st_ino
    assert not list((project / "lake").rglob(".tmp-*"))  # no staging leftovers
    assert not list((project / "lake").rglob("landed*"))  # the private copy is gone


def test_a_file_younger_than_the_settle_time_waits(tmp_path: Path) -> None:
    project = project_with(tmp_path, settle="1h")
    land(project, "old.csv", "id\n1\n", mtime_ns=time.time_ns() - 2 * 3600 * 10**9)
    fresh = land(project, "fresh.csv", "id\n2\n", mtime_ns=None)
    result = penstock.run(project)
    assert result.status == "success"
    assert ids(project) == [1]
    messages = log_messages(project, result.run_id)
    assert "items: 2 file(s), 1 new or changed, 1 still settling" in messages
    assert (
        "items: 1 file(s) younger than settle time (1h), left for the next run: "
        "landing/items/fresh.csv"
    ) in messages
    # a warning, so `penstock logs --level warning` and the run's hint show it
    with MetadataStore(penstock.load_project(project).metadata_url) as store:
        warnings = [row.message for row in store.logs(result.run_id, "warning")]
    assert any("younger than settle time" in m for m in warnings)
    # and under the run's summary: a run that loaded nothing new says why
    assert result.notes == [
        "items: 1 file(s) written less than 1h ago wait for the next run (the source's "
        "settle: time; 0s suits writers that rename complete files into place)"
    ]
    settled = time.time_ns() - 2 * 3600 * 10**9
    os.utime(fresh, ns=(settled, settled))
    assert penstock.run(project).status == "success"
    assert ids(project) == [1, 2]


def test_the_default_settle_time_is_two_seconds(tmp_path: Path) -> None:
    project = project_with(tmp_path, settle=None)
    assert penstock.load_project(project).sources["landing"].settle == "2s"
    land(project, "a.csv", "id\n1\n", mtime_ns=None)
    first = penstock.run(project)
    assert first.status == "success" and first.loads() == []
    time.sleep(2.1)
    assert penstock.run(project).status == "success"
    assert ids(project) == [1]


@pytest.mark.parametrize("bad", ["soon", "5x", "-1s"])
def test_settle_must_be_a_duration(tmp_path: Path, bad: str) -> None:
    project = project_with(tmp_path, settle=bad)
    with pytest.raises(ProjectErrors, match=r"expected a duration such as 2s"):
        penstock.load_project(project)


@pytest.mark.parametrize("number", ["2", "1.5"])
def test_settle_as_a_bare_number_asks_for_a_unit(tmp_path: Path, number: str) -> None:
    project = project_with(tmp_path, settle=number)
    with pytest.raises(ProjectErrors, match=rf"give the unit: '{number}s', '{number}ms'"):
        penstock.load_project(project)


def test_a_file_growing_while_it_is_staged_is_left_for_the_next_run(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    path = land(project, "a.csv", "id\n1\n2\n")

    def writer_appends() -> None:
        with path.open("a") as handle:
            handle.write("3\n")

    with fault_action("after_copy", writer_appends):
        result = penstock.run(project)
    assert result.status == "success" and result.loads() == []
    assert (
        "landing/items/a.csv changed while it was being read (still being written?); "
        "nothing staged, left for the next run"
    ) in log_messages(project, result.run_id)
    assert not list((project / "lake" / "stage" / "items").glob("*/manifest.json"))
    assert not list((project / "lake").rglob(".tmp-*"))
    assert penstock.run(project).status == "success"
    assert ids(project) == [1, 2, 3]  # staged once, whole


def test_a_run_killed_after_the_copy_is_repaired(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    land(project, "a.csv", "id\n1\n2\n")
    killed = subprocess.run(
        [sys.executable, "-m", "penstock.cli.app", "run", "-p", str(project)],
        env={**os.environ, "PENSTOCK_FAULT": "after_copy"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert list((project / "lake").rglob(".tmp-*"))  # the private copy was left behind
    assert penstock.run(project).status == "success"
    assert ids(project) == [1, 2]
    assert not list((project / "lake").rglob(".tmp-*"))
    assert len(query(project, "SELECT * FROM penstock.loads")) == 1


def test_a_batch_staged_before_ctime_and_inode_were_recorded_still_counts(
    tmp_path: Path,
) -> None:
    project = project_with(tmp_path)
    land(project, "a.csv", "id\n1\n")
    assert penstock.run(project).status == "success"
    (manifest,) = (project / "lake" / "stage" / "items").glob("*/manifest.json")
    old = json.loads(manifest.read_text())
    for key in ("ctime_ns", "inode"):
        del old[key]
    old["version"] = 1
    manifest.write_text(json.dumps(old))
    (project / "lake" / "index" / "items.json").unlink()
    result = penstock.run(project)
    assert result.status == "success" and result.loads() == []
    assert "items: 1 file(s), 0 new or changed" in log_messages(project, result.run_id)
    assert ids(project) == [1]


def _index(project: Path) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = json.loads(
        (project / "lake" / "index" / "items.json").read_text()
    )
    return entries


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_ino


def test_staging_new_files_leaves_the_file_index_alone(tmp_path: Path) -> None:
    """The manifests record the states they were staged from: the index holds none of them,
    and a run that stages new files (a per-minute landing zone's every run) does not write it."""
    project = project_with(tmp_path)
    for n in range(3):
        land(project, f"{n}.csv", f"id\n{n}\n")
    assert penstock.run(project).status == "success"
    assert _index(project) == []
    index = project / "lake" / "index" / "items.json"
    before = _stamp(index)
    land(project, "3.csv", "id\n3\n")
    staged = penstock.run(project)
    assert staged.status == "success" and len(staged.loads()) == 1
    assert _stamp(index) == before
    quiet = penstock.run(project)
    assert quiet.status == "success" and quiet.loads() == []
    assert "items: 4 file(s), 0 new or changed" in log_messages(project, quiet.run_id)
    assert ids(project) == [0, 1, 2, 3]


def test_the_file_index_keeps_the_states_no_manifest_records(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    first = land(project, "a.csv", "id\n1\n")
    assert penstock.run(project).status == "success"
    (batch,) = [p.name for p in (project / "lake" / "stage" / "items").iterdir()]
    # a second file with the same bytes, and the first touched: both hashed once, both
    # found to hold the staged batch, both remembered
    land(project, "copy.csv", "id\n1\n")
    touched = HOUR_AGO + 10**9
    os.utime(first, ns=(touched, touched))
    again = penstock.run(project)
    assert again.status == "success" and again.loads() == []
    assert "items: 2 file(s), 2 new or changed" in log_messages(project, again.run_id)
    entries = _index(project)
    assert [(e["source_file"], e["mtime_ns"], e["batch_id"]) for e in entries] == [
        ("landing/items/a.csv", touched, batch),
        ("landing/items/copy.csv", HOUR_AGO, batch),
    ]
    quiet = penstock.run(project)
    assert "items: 2 file(s), 0 new or changed" in log_messages(project, quiet.run_id)
    assert _index(project) == entries
    assert ids(project) == [1]


def test_a_file_index_that_lists_every_state_is_read_then_trimmed(tmp_path: Path) -> None:
    """An index written by an earlier version, which listed the manifests' states too."""
    project = project_with(tmp_path)
    for n in range(2):
        land(project, f"{n}.csv", f"id\n{n}\n")
    assert penstock.run(project).status == "success"
    full = []
    for manifest in sorted((project / "lake" / "stage" / "items").glob("*/manifest.json")):
        m = json.loads(manifest.read_text())
        full.append(
            {k: m[k] for k in ("source_file", "size_bytes", "mtime_ns", "ctime_ns", "inode")}
            | {"content_hash": m["content_hash"], "batch_id": m["batch_id"]}
        )
    index = project / "lake" / "index" / "items.json"
    index.write_text(json.dumps(full))
    quiet = penstock.run(project)
    assert quiet.status == "success" and quiet.loads() == []
    assert "items: 2 file(s), 0 new or changed" in log_messages(project, quiet.run_id)
    assert _index(project) == []
    assert ids(project) == [0, 1]
