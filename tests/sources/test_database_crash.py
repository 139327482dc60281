"""A run killed (SIGKILL) between extracting a window and loading it neither skips nor
doubles a window: the next run loads the staged window, then reads on from its watermark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from penstock.lake import Lake

from db_sources import (
    BASE,
    ORDERS,
    SourceDb,
    create_orders,
    db_project,
    insert_orders,
    ledger,
    run_ok,
    source_rows,
    table_rows,
)
from helpers import query

pytestmark = [pytest.mark.services, pytest.mark.chaos]


def run_killed_at(project: Path, point: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "penstock.cli.app", "run", "-p", str(project)],
        env={**os.environ, "PENSTOCK_FAULT": point},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("db", "point"),
    # after_extract runs the same engine code on either server: one proves it (suite time)
    [("postgres", "after_extract"), ("postgres", "after_stage"), ("mysql", "after_stage")],
    indirect=["db"],
)
def test_killed_between_extract_and_load(db: SourceDb, tmp_path: Path, point: str) -> None:
    """`after_extract`: the window's rows are on disk, its manifest not yet (nothing is
    staged); `after_stage`: the batch is staged and not loaded (the watermark is in its
    manifest, the ledger does not have it)."""
    create_orders(db, 20)
    project = db_project(tmp_path / "p", db, ORDERS)
    run_ok(project)  # the first window loads: the kill hits the second
    later = (BASE + timedelta(days=1)).isoformat(" ")
    db.execute(
        f"UPDATE orders SET status = 'shipped', updated_at = '{later}' WHERE id IN (2, 5)",
        *insert_orders(range(21, 24), BASE + timedelta(days=1)),
    )
    killed = run_killed_at(project, point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    staged = {b.batch_id for b in Lake(project / "lake").batches("orders")}
    loaded = {r[0] for r in ledger(project)}
    assert len(staged) == (1 if point == "after_extract" else 2)  # the manifest commits it
    assert len(loaded) == 1

    # more changes arrive before the next run: the pending window loads first, then the next
    db.execute(*insert_orders(range(24, 26), BASE + timedelta(days=2)))
    run_ok(project)
    assert table_rows(project) == source_rows(db)
    loads = ledger(project)
    assert len({r[0] for r in loads}) == len(loads)  # no batch loaded twice
    assert sum(r[2] for r in loads) == 25  # each row inserted once
    assert sum(r[3] for r in loads) == 2  # each change applied once
    # the windows chain: each starts at the watermark the one before it ended on
    windows = [b.manifest.window for b in Lake(project / "lake").batches("orders")]
    assert all(w is not None for w in windows)
    lows = [w["low"] for w in windows if w is not None]
    highs = [w["high"] for w in windows if w is not None]
    assert lows[0] is None and lows[1:] == highs[:-1]
    assert query(project, "SELECT count(*) FROM orders") == [(25,)]
