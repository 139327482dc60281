"""Many small files load in micro-batches, and every file keeps its identity.

A landing zone of small files (per-minute drops) stages, validates and loads together: one
shared read, one validation pass and one transaction per chunk. Each file must still get its
own batch id, ledger row, row accounting and record numbers, and the results must equal
loading the files one at a time (`micro_batch: {files: 1}`): for every load mode, with keys
repeated across files, identical rows, late data, bad rows and malformed lines. Killing the
process in the middle of a chunk loads every file exactly once on the next run.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import penstock
from penstock.catalog import MicroBatch
from penstock.engine.loading import chunks
from penstock.lake import Lake

from helpers import query, write_project

PROJECT = """
name: drops
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  readings:
    source: landing
    files: "readings/*.csv"
    load: {load}
    {key}
    micro_batch: {micro_batch}
    columns:
      id:     {{type: bigint, required: true}}
      sensor: {{type: text, in: [a, b, c]}}
      value:  {{type: "decimal(8,2)", min: 0}}
      at:     {{type: timestamp, required: true}}
"""
KEYS = {
    "append": "",
    "replace": "",
    "merge": "key: [id]\n    order_by: at",
    "scd2": "key: [id]\n    order_by: at",
}
FILES = 60


def drops(seed: int = 7, files: int = FILES) -> dict[str, str]:
    """Small CSV drops: ids repeat within and across files, some rows repeat exactly, some
    arrive late (an older `at`), some break the contract, some lines are malformed."""
    rng = random.Random(seed)
    out = {}
    for f in range(files):
        lines = ["id,sensor,value,at"]
        for _ in range(rng.randint(0, 12)):
            kind = rng.random()
            ident = rng.randint(1, 40)
            sensor = rng.choice("abc")
            value = f"{rng.randint(0, 999)}.{rng.randint(0, 99):02d}"
            minute = f"{rng.randint(0, 59):02d}"
            at = f"2026-01-{1 + f // 10:02d} 10:{minute}:00"
            if kind < 0.06:
                value = "-1.00"  # min:value
            elif kind < 0.1:
                sensor = "z"  # in:sensor
            elif kind < 0.13:
                lines.append(f"{ident},{sensor}")  # malformed: too few fields
                continue
            elif kind < 0.16:
                at = "2025-12-31 23:59:00"  # late data
            lines.append(f"{ident},{sensor},{value},{at}")
            if rng.random() < 0.1:
                lines.append(lines[-1])  # the same row twice
        out[f"landing/readings/drop_{f:04d}.csv"] = "\n".join(lines) + "\n"
    return out


def project_for(root: Path, load: str, micro_batch: str, files: dict[str, str]) -> Path:
    yml = PROJECT.format(load=load, key=KEYS[load], micro_batch=micro_batch)
    return write_project(root, yml, files)


def state(project: Path, load: str) -> dict[str, list[tuple[object, ...]]]:
    """Everything a run leaves behind, with batches named by their file (a replace batch's
    id holds its file's mtime) and load times aside (they differ between runs)."""
    by_file = "(SELECT batch_id, source_file FROM penstock.loads)"
    return {
        "table": sorted(
            query(
                project,
                f"SELECT t.* EXCLUDE (_loaded_at, _batch_id), f.source_file FROM readings t "
                f"JOIN {by_file} f ON t._batch_id = f.batch_id",
            ),
            key=repr,
        ),
        "quarantine": sorted(
            query(
                project,
                f"SELECT q.* EXCLUDE (_batch_id), f.source_file FROM quarantine.readings q "
                f"JOIN {by_file} f ON q._batch_id = f.batch_id",
            ),
            key=repr,
        ),
        "ledger": sorted(
            query(
                project,
                "SELECT source_file, rows_in, rows_loaded, rows_quarantined, rows_duplicate, "
                "rows_inserted, rows_updated, rows_unchanged, rows_stale, rows_warned "
                "FROM penstock.loads",
            )
        ),
    }


@pytest.fixture(params=["append", "replace", "merge", "scd2"])
def load(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_chunk_gives_what_loading_each_file_alone_gives(tmp_path: Path, load: str) -> None:
    files = drops()
    alone = project_for(tmp_path / "alone", load, "{files: 1}", files)
    together = project_for(tmp_path / "together", load, "{files: 1000}", files)
    assert penstock.run(alone).status == "success"
    result = penstock.run(together)
    assert result.status == "success"
    assert state(together, load) == state(alone, load)
    # every file is its own batch (files with equal content are one), exact accounting
    loads = result.loads()
    distinct = len(files) if load == "replace" else len(set(files.values()))
    assert len(loads) == distinct
    for o in loads:
        assert o.rows_in == o.rows_loaded + o.rows_quarantined + o.rows_duplicate, o
    # one chunk: one transaction, one load time for every batch of it
    assert query(together, "SELECT count(DISTINCT loaded_at) FROM penstock.loads") == [(1,)]
    assert query(alone, "SELECT count(DISTINCT loaded_at) FROM penstock.loads") == [(len(loads),)]


def test_record_numbers_are_each_files_own(tmp_path: Path) -> None:
    files = drops(seed=3)
    project = project_for(tmp_path, "merge", "{files: 1000}", files)
    penstock.run(project)
    rows = query(
        project,
        "SELECT l.source_file, q._row_number, q._raw_line, q.id, q.sensor, q.value, q.at "
        "FROM quarantine.readings q JOIN penstock.loads l ON q._batch_id = l.batch_id",
    )
    assert rows
    for source_file, number, raw, *values in rows:
        record = files[source_file].splitlines()[number]  # line 0 is the header
        if raw is not None:  # malformed: the raw line is that record
            assert raw == record
        else:
            assert ",".join("" if v is None else str(v) for v in values) == record


def test_a_second_run_loads_nothing_and_rebuild_gives_the_same(tmp_path: Path, load: str) -> None:
    project = project_for(tmp_path, load, "{files: 25}", drops(seed=11))
    assert penstock.run(project).status == "success"
    first = state(project, load)
    again = penstock.run(project)
    assert again.loads() == []
    assert state(project, load) == first
    rebuilt = penstock.rebuild(project)
    assert rebuilt.status == "success"
    assert state(project, load) == first


def test_targets_cut_chunks_by_files_rows_and_bytes(tmp_path: Path) -> None:
    project = project_for(tmp_path, "append", "{files: 1000}", drops(seed=5, files=30))
    penstock.run(project)
    batches = Lake(project / "lake").batches("readings")
    sizes = [len(c) for c in chunks(batches, MicroBatch(files=7))]
    assert sizes == [7] * (len(batches) // 7) + ([len(batches) % 7] if len(batches) % 7 else [])
    rows = [sum(b.manifest.rows_in for b in c) for c in chunks(batches, MicroBatch(rows=20))]
    by_rows = list(chunks(batches, MicroBatch(rows=20)))
    assert all(r <= 20 for r, c in zip(rows, by_rows, strict=True) if len(c) > 1)
    assert sum(len(c) for c in chunks(batches, MicroBatch(rows=20))) == len(batches)
    one_each = list(chunks(batches, MicroBatch(bytes=1)))
    assert [len(c) for c in one_each] == [1] * len(batches)


def test_a_failing_batch_loads_those_before_it_and_holds_back_those_after(
    tmp_path: Path,
) -> None:
    files = drops(seed=13, files=12)
    yml = PROJECT.format(load="merge", key=KEYS["merge"], micro_batch="{files: 1000}")
    yml = yml.replace("micro_batch:", "on_invalid: fail\n    micro_batch:")
    clean = {
        name: "\n".join(
            line
            for line in body.splitlines()
            if line.count(",") == 3 and "-1.00" not in line and ",z," not in line
        )
        + "\n"
        for name, body in files.items()
    }
    names = sorted(clean)
    clean[names[5]] += "99,a,-5.00,2026-01-01 10:00:00\n"  # breaks min:value
    project = write_project(tmp_path, yml, clean)
    result = penstock.run(project)
    assert result.status == "failed"
    loaded = {o.source_file for o in result.loads() if o.status != "failed"}
    assert loaded == set(names[:5])
    (failure,) = result.failures
    assert failure.source_file == names[5] and "min:value" in (failure.error or "")
    assert query(project, "SELECT count(*) FROM penstock.loads") == [(5,)]


@pytest.mark.chaos
@pytest.mark.parametrize("point", ["after_copy@37", "after_stage@20", "inside_load_transaction"])
def test_a_kill_in_the_middle_of_a_chunk_loads_every_file_exactly_once(
    tmp_path: Path, point: str
) -> None:
    files = drops(seed=17)
    reference = project_for(tmp_path / "reference", "merge", "{files: 1000}", files)
    assert penstock.run(reference).status == "success"
    project = project_for(tmp_path / "killed", "merge", "{files: 1000}", files)
    killed = subprocess.run(
        [sys.executable, "-m", "penstock.cli.app", "run", "-p", str(project)],
        env={**os.environ, "PENSTOCK_FAULT": point},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert penstock.run(project).status == "success"
    assert state(project, "merge") == state(reference, "merge")
    ledger = query(project, "SELECT batch_id, count(*) FROM penstock.loads GROUP BY ALL")
    assert all(n == 1 for _, n in ledger) and len(ledger) == len(set(files.values()))
    shutil.rmtree(tmp_path / "reference")
