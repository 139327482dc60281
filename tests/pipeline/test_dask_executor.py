"""`--executor dask` (issue 8, part 7): new files are staged on the worker processes of a real
Dask LocalCluster; validation and loads stay with the run. The warehouse and the stage zone end
exactly as a local run leaves them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import penstock
from penstock.demo import DemoExpectations
from penstock.errors import UsageError
from penstock.lake import Lake

from helpers import query

pytestmark = pytest.mark.slow  # a LocalCluster starts worker processes (~3 s)

TABLES = {
    "orders": "SELECT * EXCLUDE (_loaded_at) FROM orders ORDER BY ALL",
    "customers": "SELECT * EXCLUDE (_loaded_at) FROM customers ORDER BY ALL",
    "quarantine.orders": "SELECT * FROM quarantine.orders ORDER BY ALL",
    "quarantine.customers": "SELECT * FROM quarantine.customers ORDER BY ALL",
    "ledger": (
        "SELECT object, batch_id, source_file, content_hash, rows_in, rows_loaded, "
        "rows_quarantined, rows_duplicate, rows_inserted, rows_updated, rows_unchanged, "
        "rows_stale FROM penstock.loads ORDER BY ALL"
    ),
}


def contents(project: Path) -> dict[str, list[tuple[object, ...]]]:
    return {name: query(project, sql) for name, sql in TABLES.items()}


def staged(project: Path) -> dict[str, list[tuple[str, str, int, int]]]:
    lake = Lake(project / "lake")
    return {
        obj: [
            (b.batch_id, b.manifest.source_file, b.manifest.rows, b.manifest.rows_malformed)
            for b in lake.batches(obj)
        ]
        for obj in ("orders", "customers")
    }


def test_dask_stages_and_the_warehouse_ends_as_a_local_run_leaves_it(
    demo: tuple[Path, DemoExpectations], tmp_path: Path
) -> None:
    local, _ = demo
    # a file whose content another one holds: a duplicate batch, whichever worker reads it
    shutil.copy2(local / "landing/orders/drop_001.csv", local / "landing/orders/drop_009.csv")
    on_dask = tmp_path / "on_dask"
    shutil.copytree(local, on_dask)
    ran_here = penstock.run(local)
    ran_there = penstock.run(on_dask, executor="dask")
    assert ran_there.status == ran_here.status == "success"

    def outcomes(result: penstock.RunResult) -> list[tuple[object, ...]]:
        return sorted(
            (o.object, o.source_file, o.step, o.status, o.rows_in, o.rows_loaded)
            for o in result.outcomes
        )

    assert outcomes(ran_there) == outcomes(ran_here)
    assert contents(on_dask) == contents(local)
    assert staged(on_dask) == staged(local)
    assert len(staged(local)["orders"]) == 3  # drop_009 is drop_001's duplicate
    # a second run on Dask finds nothing new
    assert penstock.run(on_dask, executor="dask").loads() == []
    text = (on_dask / ".penstock/openlineage.jsonl").read_text()
    log = [json.loads(line) for line in text.splitlines()]
    assert {e["job"]["name"] for e in log} >= {"orders.stage", "orders.load"}


def test_an_unknown_executor_is_a_usage_error(demo: tuple[Path, DemoExpectations]) -> None:
    project, _ = demo
    with pytest.raises(UsageError, match="give local, dask"):
        penstock.run(project, executor="spark")
    with pytest.raises(UsageError, match="no Dask scheduler answers there"):
        penstock.run(project, executor="tcp://127.0.0.1:1")
