"""Backfills (issue 8, part 5): each partition of an object replaced whole, in one warehouse
transaction with its ledger rows, on worker threads whose loads take turns.

Proven here on DuckDB: a backfill run twice leaves identical tables and ledgers (no duplicate,
no gap); a partition whose landing files changed is replaced exactly and the others are not
touched; a partition whose load fails (an injected fault) leaves the table as it was and is
retried alone; partitions overlap in time (step_runs), a source's max_connections is never
exceeded, loads never overlap; the result equals a run on one worker."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import penstock
from penstock.faults import fault_action
from penstock.lake import Lake

from helpers import query, write_project

YML = """
name: shop
sources:
  landing: {{kind: files, path: ./landing, settle: 0s{source}}}
objects:
  orders:
    source: landing
    key: [order_id]
    load: {load}
    partition_by: {{path: "orders/{{date:%Y-%m-%d}}/*.csv", column: order_date}}
    columns:
      order_id:   {{type: bigint, required: true}}
      order_date: {{type: date, required: true}}
      amount:     {{type: "decimal(12,2)", min: 0}}
"""
DAYS = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]


def day_file(day: int, rows: int = 2, *, bad: bool = True) -> str:
    lines = [f"{day}{i},2026-01-0{day},{i}.50" for i in range(1, rows + 1)]
    if bad:
        lines.append(f"{day}9,2026-01-0{day},-1")  # breaks min: 0: quarantined
    return "order_id,order_date,amount\n" + "\n".join(lines) + "\n"


def project(root: Path, *, source: str = "", load: str = "append", days: int = 4) -> Path:
    files = {f"landing/orders/2026-01-0{i}/a.csv": day_file(i) for i in range(1, days + 1)}
    return write_project(root, YML.format(source=source, load=load), files)


def state(root: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The table, the ledger and the partitions, in full."""
    return {
        "orders": query(root, "SELECT * FROM orders ORDER BY order_id"),
        "loads": query(root, "SELECT * EXCLUDE (run_id) FROM penstock.loads ORDER BY batch_id"),
        "partitions": query(
            root, "SELECT * EXCLUDE (run_id, loaded_at) FROM penstock.partitions ORDER BY 2"
        ),
        "quarantine": query(root, "SELECT * FROM quarantine.orders ORDER BY _batch_id, 1"),
    }


Span = tuple[str | None, str, datetime, datetime]


def step_rows(root: Path, run_id: str, step: str) -> list[Span]:
    """(source_file, status, started_at, ended_at) of the run's steps of one kind."""
    with sqlite3.connect(root / ".penstock" / "metadata.db") as conn:
        rows = conn.execute(
            "SELECT source_file, status, started_at, ended_at FROM step_runs "
            "WHERE run_id = ? AND step = ? ORDER BY started_at",
            [run_id, step],
        ).fetchall()
    return [(f, s, _at(a), _at(b)) for f, s, a, b in rows]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(str(value))


def most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    """The most spans open at one instant."""
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_a_backfill_run_again_changes_nothing_and_holds_every_row_once(tmp_path: Path) -> None:
    root = project(tmp_path)
    first = penstock.backfill(root, "orders", first="2026-01-01", last="2026-01-05", workers=3)
    assert first.run.status == "success"
    assert [(p.key, p.status) for p in first.partitions] == [
        *((d, "warning") for d in DAYS),  # one row of each day is quarantined
        ("2026-01-05", "empty"),
    ]
    rows = query(root, "SELECT order_id, order_date::VARCHAR, amount::VARCHAR FROM orders")
    assert sorted(rows) == [
        (d * 10 + i, f"2026-01-0{d}", f"{i}.50") for d in range(1, 5) for i in (1, 2)
    ]
    assert query(root, "SELECT count(*) FROM quarantine.orders")[0][0] == 4
    before = state(root)
    again = penstock.backfill(root, "orders", first="2026-01-01", last="2026-01-05", workers=3)
    assert [p.status for p in again.partitions] == ["unchanged"] * 5
    assert state(root) == before
    # forced, every partition is deleted and loaded again: the same rows, load times kept
    forced = penstock.backfill(
        root, "orders", first="2026-01-01", last="2026-01-05", workers=3, force=True
    )
    assert [p.status for p in forced.partitions] == ["warning"] * 4 + ["empty"]
    assert state(root) == before
    # a plain run after it finds every file staged and loaded: nothing to do
    assert penstock.run(root).loads() == []
    assert state(root) == before


def test_a_partition_whose_files_changed_is_replaced_exactly(tmp_path: Path) -> None:
    root = project(tmp_path, load="merge")
    penstock.backfill(root, "orders", first="2026-01-01", last="2026-01-04")
    others = query(root, "SELECT * FROM orders WHERE order_date <> DATE '2026-01-02' ORDER BY 1")
    day = root / "landing/orders/2026-01-02"
    # row 22 leaves, row 21 changes, 23 arrives in a second file
    (day / "a.csv").write_text("order_id,order_date,amount\n21,2026-01-02,9.99\n")
    (day / "b.csv").write_text("order_id,order_date,amount\n23,2026-01-02,3.00\n")
    result = penstock.backfill(root, "orders", partitions=["2026-01-02"])
    (outcome,) = result.partitions
    assert (outcome.key, outcome.status, outcome.replaced, len(outcome.batches)) == (
        "2026-01-02",
        "success",
        1,
        2,
    )
    assert query(
        root,
        "SELECT order_id, amount::VARCHAR FROM orders WHERE order_date = DATE '2026-01-02' "
        "ORDER BY 1",
    ) == [(21, "9.99"), (23, "3.00")]
    assert query(root, "SELECT * FROM orders WHERE order_date <> DATE '2026-01-02' ORDER BY 1") == (
        others
    )
    # the replaced batch's quarantine and ledger rows went with it; it is skipped in the lake
    assert query(root, "SELECT count(*) FROM quarantine.orders WHERE order_id = '29'") == [(0,)]
    assert query(root, "SELECT count(*) FROM penstock.loads") == [(5,)]
    skipped = [b for b in Lake(root / "lake").batches("orders") if b.skip is not None]
    assert [b.manifest.source_file for b in skipped] == ["landing/orders/2026-01-02/a.csv"]
    # so neither a run nor a rebuild brings its rows back
    after = state(root)
    assert penstock.run(root).loads() == []
    assert penstock.rebuild(root).status == "success"
    assert query(root, "SELECT order_id, amount FROM orders ORDER BY 1") == [
        (r[0], r[2]) for r in after["orders"]
    ]


def failing_on(call: int) -> Callable[[], None]:
    """An action that fails the `call`-th time it runs."""
    calls = {"n": 0}

    def act() -> None:
        calls["n"] += 1
        if calls["n"] == call:
            raise RuntimeError("disk full (injected)")

    return act


def test_a_failed_partition_keeps_its_rows_and_is_retried_alone(tmp_path: Path) -> None:
    root = project(tmp_path)
    penstock.backfill(root, "orders", first="2026-01-01", last="2026-01-04", workers=1)
    before = state(root)
    for i, d in enumerate(DAYS, 1):  # every day changes: one more row each
        (root / f"landing/orders/{d}/a.csv").write_text(day_file(i, rows=3))
    # the second partition's load fails inside its transaction
    with fault_action("inside_load_transaction", failing_on(2)):
        result = penstock.backfill(root, "orders", first="2026-01-01", last="2026-01-04", workers=1)
    assert result.run.status == "failed"
    assert [(p.key, p.status) for p in result.partitions] == [
        ("2026-01-01", "warning"),
        ("2026-01-02", "failed"),
        ("2026-01-03", "warning"),
        ("2026-01-04", "warning"),
    ]
    assert "disk full (injected)" in (result.partitions[1].error or "")
    # the failed partition is as it was: its old rows, its old ledger and partition rows
    day2 = "SELECT * FROM orders WHERE order_date = DATE '2026-01-02' ORDER BY 1"
    assert query(root, day2) == [r for r in before["orders"] if str(r[1]) == "2026-01-02"]
    assert query(root, "SELECT count(*) FROM orders")[0][0] == 2 + 3 * 3
    # its new batch waits for the partition's retry: a plain run does not append it
    assert penstock.run(root).loads() == []
    assert query(root, day2) == [r for r in before["orders"] if str(r[1]) == "2026-01-02"]
    # its failure is recorded in the metadata store, and `partitions` shows it
    steps = step_rows(root, result.run.run_id, "partition")
    assert sorted((f, s) for f, s, _, _ in steps) == [
        ("2026-01-01", "warning"),
        ("2026-01-02", "failed"),
        ("2026-01-03", "warning"),
        ("2026-01-04", "warning"),
    ]
    from penstock.engine.partition_status import partition_status

    shown, _ = partition_status(penstock.load_project(root), "orders")
    assert [(r["partition"], r["status"]) for r in shown][1] == ("2026-01-02", "failed")
    # retried alone, it is replaced; the others are not touched
    retried = penstock.backfill(root, "orders", partitions=["2026-01-02"])
    assert [(p.key, p.status) for p in retried.partitions] == [("2026-01-02", "warning")]
    assert query(root, "SELECT count(*) FROM orders")[0][0] == 12
    # the whole range again: nothing left to do, and the same state as one clean backfill
    again = penstock.backfill(root, "orders", first="2026-01-01", last="2026-01-04")
    assert [p.status for p in again.partitions] == ["unchanged"] * 4
    clean = project(tmp_path / "clean")
    for i, d in enumerate(DAYS, 1):
        (clean / f"landing/orders/{d}/a.csv").write_text(day_file(i, rows=3))
    penstock.backfill(clean, "orders", first="2026-01-01", last="2026-01-04")
    assert _comparable(state(root)) == _comparable(state(clean))


@pytest.mark.chaos
def test_a_backfill_killed_inside_a_load_leaves_nothing_a_plain_run_would_append(
    tmp_path: Path,
) -> None:
    """The batches a partition is about to load are held (marked skipped) until its load
    commits: after a SIGKILL inside the second partition's transaction, a plain run does not
    append that partition's batch behind its back; back-filling again ends as one clean
    backfill does."""
    root = project(tmp_path)
    killed = subprocess.run(
        [
            *(sys.executable, "-m", "penstock.cli.app", "backfill", "orders", "-p", str(root)),
            *("--from", "2026-01-01", "--to", "2026-01-04", "--workers", "1"),
        ],
        env={**os.environ, "PENSTOCK_FAULT": "inside_load_transaction@2"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert query(root, "SELECT DISTINCT order_date::VARCHAR FROM orders") == [("2026-01-01",)]
    held = [b for b in Lake(root / "lake").batches("orders") if b.skip is not None]
    assert len(held) == 1 and "did not finish" in held[0].skip.reason  # type: ignore[union-attr]
    # a plain run loads the files no backfill reached, never the held batch of day 2
    plain = penstock.run(root)
    assert sorted(str(o.source_file) for o in plain.loads()) == [
        "landing/orders/2026-01-03/a.csv",
        "landing/orders/2026-01-04/a.csv",
    ]
    day2 = "SELECT count(*) FROM orders WHERE order_date = DATE '2026-01-02'"
    assert query(root, day2) == [(0,)]
    again = penstock.backfill(root, "orders", first="2026-01-01", last="2026-01-04", workers=1)
    assert [p.status for p in again.partitions] == ["unchanged"] + ["warning"] * 3
    assert not [b for b in Lake(root / "lake").batches("orders") if b.skip is not None]
    clean = project(tmp_path / "clean")
    penstock.backfill(clean, "orders", first="2026-01-01", last="2026-01-04")
    assert _comparable(state(root)) == _comparable(state(clean))


def _comparable(found: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """Two projects' state without load times (they ran at different times)."""
    return {
        "orders": [r[:4] for r in found["orders"]],
        "loads": sorted(r[:14] for r in found["loads"]),
        "partitions": found["partitions"],
    }


def test_partitions_overlap_within_the_source_cap_and_loads_take_turns(tmp_path: Path) -> None:
    root = project(tmp_path, source=", max_connections: 2", days=8)
    loading = {"now": 0, "most": 0}
    lock = threading.Lock()

    def copy_slowly() -> None:  # staging takes a while: the partitions have time to meet
        time.sleep(0.03)

    def load_begins() -> None:
        with lock:
            loading["now"] += 1
            loading["most"] = max(loading["most"], loading["now"])
        time.sleep(0.01)

    def load_ends() -> None:
        with lock:
            loading["now"] -= 1

    with (
        fault_action("after_copy", copy_slowly),
        fault_action("before_load_commit", load_begins),
        fault_action("inside_load_transaction", load_ends),
    ):
        result = penstock.backfill(root, "orders", first="2026-01-01", last="2026-01-08", workers=4)
    assert result.run.status == "success"
    assert result.workers == 4
    run_id = result.run.run_id
    partitions = step_rows(root, run_id, "partition")
    stages = step_rows(root, run_id, "stage")
    assert len(partitions) == 8 and len(stages) == 8
    # partitions ran at the same time; reads from the source never more than 2 at once
    assert most_at_once([(a, b) for _, _, a, b in partitions]) >= 2
    assert most_at_once([(a, b) for _, _, a, b in stages]) == 2
    assert loading["most"] == 1  # one load into the DuckDB file at a time

    # the same backfill on one worker: the same warehouse
    single = project(tmp_path / "single", source=", max_connections: 2", days=8)
    one = penstock.backfill(single, "orders", first="2026-01-01", last="2026-01-08", workers=1)
    assert [(p.key, p.status, p.rows_loaded) for p in one.partitions] == [
        (p.key, p.status, p.rows_loaded) for p in result.partitions
    ]
    assert _comparable(state(single)) == _comparable(state(root))
    spans = [(a, b) for _, _, a, b in step_rows(single, one.run.run_id, "partition")]
    assert most_at_once(spans) == 1


def test_what_a_backfill_refuses(tmp_path: Path) -> None:
    root = project(tmp_path)
    with pytest.raises(penstock.UsageError, match="--from DATE and --to DATE"):
        penstock.backfill(root, "orders")
    with pytest.raises(penstock.UsageError, match="is before --from"):
        penstock.backfill(root, "orders", first="2026-01-03", last="2026-01-01")
    with pytest.raises(penstock.UsageError, match="is not a date"):
        penstock.backfill(root, "orders", partitions=["yesterday"])
    with pytest.raises(penstock.UsageError, match="unknown object 'nope'"):
        penstock.backfill(root, "nope", partitions=["2026-01-01"])


def test_a_row_dated_outside_its_files_partition_is_quarantined(tmp_path: Path) -> None:
    root = project(tmp_path, days=2)
    stray = "order_id,order_date,amount\n11,2026-01-01,1.00\n12,2026-01-02,2.00\n"
    (root / "landing/orders/2026-01-01/a.csv").write_text(stray)
    result = penstock.backfill(root, "orders", first="2026-01-01", last="2026-01-02", workers=2)
    assert [(p.key, p.status, p.rows_loaded) for p in result.partitions] == [
        ("2026-01-01", "warning", 1),
        ("2026-01-02", "warning", 2),  # its own rows; its -1 amount is quarantined
    ]
    assert query(root, "SELECT order_id FROM orders ORDER BY 1") == [(11,), (21,), (22,)]
    reasons = query(root, "SELECT order_id, _reasons FROM quarantine.orders ORDER BY 1")
    assert reasons == [("12", ["check:in_partition"]), ("29", ["min:amount"])]
