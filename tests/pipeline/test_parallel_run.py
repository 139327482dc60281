"""Objects of a run on several workers (issue 8, part 2; engine/parallel.py).

Measured from step_runs, not from sleeps: independent objects overlap; an object starts after
its upstream ended; a source's max_connections is never exceeded; loads never overlap (a
counter at the load's fault points). The warehouse equals a run on one worker; a failed
object holds back its downstream and nothing else."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import penstock
from penstock.faults import fault_action

from helpers import query, write_project

YML = """
name: shop
sources:
  landing: {{kind: files, path: ./landing, settle: 0s, max_connections: 2}}
  other: {{kind: files, path: ./other, settle: 0s}}
objects:
{objects}
"""
OBJECT = """  {name}:
    source: {source}
    files: "{name}/*.csv"
    key: [id]
    load: merge
    columns:
      id: {{type: bigint, required: true}}
      qty: {{type: integer, min: 0}}
"""
NAMES = {"a": "landing", "b": "landing", "c": "landing", "d": "other", "e": "other"}


def project(root: Path, *, broken: str | None = None) -> Path:
    objects = "".join(OBJECT.format(name=n, source=s) for n, s in NAMES.items())
    objects += "    depends_on: [a]\n"  # e waits for a
    files: dict[str, str | bytes] = {}
    for i, (name, source) in enumerate(NAMES.items()):
        for f in range(2):
            rows = "".join(f"{i * 100 + f * 10 + r},{r - 1}\n" for r in range(3))
            files[f"{source}/{name}/{f}.csv"] = "id,qty\n" + rows
    if broken is not None:
        files[f"{NAMES[broken]}/{broken}/0.csv"] = "id,qty\nnot-a-number,1\n"
    yml = YML.format(objects=objects)
    if broken is not None:
        yml = yml.replace(f"  {broken}:\n", f"  {broken}:\n    on_invalid: fail\n")
    return write_project(root, yml, files)


def object_spans(root: Path, run_id: str) -> dict[str, tuple[datetime, datetime, str]]:
    with sqlite3.connect(root / ".penstock" / "metadata.db") as conn:
        rows = conn.execute(
            "SELECT object, started_at, ended_at, status FROM step_runs "
            "WHERE run_id = ? AND step = 'object'",
            [run_id],
        ).fetchall()
    return {o: (datetime.fromisoformat(a), datetime.fromisoformat(b), s) for o, a, b, s in rows}


def most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def warehouse(root: Path) -> dict[str, Any]:
    return {
        **{n: query(root, f"SELECT id, qty, _batch_id FROM {n} ORDER BY id") for n in NAMES},
        "loads": query(
            root,
            "SELECT batch_id, object, rows_in, rows_loaded, rows_quarantined "
            "FROM penstock.loads ORDER BY batch_id",
        ),
        "quarantine": {
            n: query(root, f"SELECT id, _reasons, _batch_id FROM quarantine.{n} ORDER BY 1")
            for n in NAMES
        },
    }


def test_independent_objects_overlap_within_their_sources_cap(tmp_path: Path) -> None:
    root = project(tmp_path)
    loading = {"now": 0, "most": 0}
    lock = threading.Lock()

    def copy_slowly() -> None:  # each object's staging takes a while: others can meet it
        time.sleep(0.02)

    def load_begins() -> None:
        with lock:
            loading["now"] += 1
            loading["most"] = max(loading["most"], loading["now"])
        time.sleep(0.005)

    def load_ends() -> None:
        with lock:
            loading["now"] -= 1

    with (
        fault_action("after_copy", copy_slowly),
        fault_action("before_load_commit", load_begins),
        fault_action("inside_load_transaction", load_ends),
    ):
        result = penstock.run(root, workers=4)
    assert result.status == "success", [f.error for f in result.failures]
    spans = object_spans(root, result.run_id)
    assert sorted(spans) == sorted(NAMES)
    assert most_at_once([(a, b) for a, b, _ in spans.values()]) >= 2  # they overlapped
    landing = [(a, b) for n, (a, b, _) in spans.items() if NAMES[n] == "landing"]
    assert most_at_once(landing) <= 2  # max_connections: 2
    assert spans["e"][0] >= spans["a"][1]  # e depends on a: it started after a ended
    assert loading["most"] == 1  # loads took turns

    # the same project on one worker: the same warehouse, one object at a time
    single = project(tmp_path / "single")
    one = penstock.run(single, workers=1)
    assert warehouse(single) == warehouse(root)
    spans = object_spans(single, one.run_id)
    assert most_at_once([(a, b) for a, b, _ in spans.values()]) == 1
    assert {s.object: s.rows_loaded for s in one.summary(list(NAMES))} == {
        s.object: s.rows_loaded for s in result.summary(list(NAMES))
    }
    # a rebuild on workers gives the same warehouse again
    assert penstock.rebuild(root, workers=3).status == "success"
    assert warehouse(root) == warehouse(single)


def test_a_failed_object_holds_back_its_downstream_only(tmp_path: Path) -> None:
    root = project(tmp_path, broken="a")
    result = penstock.run(root, workers=3)
    assert result.status == "failed"
    statuses = {s.object: s.status for s in result.summary(list(NAMES))}
    assert statuses == {
        "a": "failed",
        "b": "warning",
        "c": "warning",
        "d": "warning",
        "e": "upstream_failed",
    }
    spans = object_spans(root, result.run_id)
    assert spans["e"][2] == "upstream_failed"
    assert query(root, "SELECT count(*) FROM d")[0][0] == 4  # 2 of 6 rows break qty >= 0
