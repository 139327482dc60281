"""Backfills into a PostgreSQL warehouse: a partition is replaced in one PostgreSQL
transaction with its ledger rows and its `penstock.partitions` row, as on DuckDB; run twice,
nothing changes; a changed partition is replaced exactly; a failed load leaves it as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

import penstock
from penstock.faults import fault_action

from helpers import write_project
from pg_projects import PgWarehouse

pytestmark = pytest.mark.services

YML = """
name: shop
warehouse: {warehouse}
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  orders:
    source: landing
    key: [order_id]
    load: merge
    partition_by: {{path: "orders/{{date:%Y-%m-%d}}.csv", column: order_ts}}
    columns:
      order_id: {{type: bigint, required: true}}
      order_ts: {{type: timestamptz, required: true}}
      amount:   {{type: "decimal(12,2)", min: 0}}
"""


def day(d: int, *rows: tuple[int, str]) -> str:
    body = "".join(f"{k},2026-01-0{d}T{h}:00:00Z,{k}.00\n" for k, h in rows)
    return "order_id,order_ts,amount\n" + body


def read(pg: PgWarehouse) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(pg.conninfo) as conn:
        return {
            "orders": conn.execute(
                f'SELECT order_id, order_ts, amount, _batch_id FROM "{pg.schema}".orders ORDER BY 1'
            ).fetchall(),
            "loads": conn.execute(
                f'SELECT batch_id, rows_loaded FROM "{pg.ledger}".loads ORDER BY 1'
            ).fetchall(),
            "partitions": conn.execute(
                f"SELECT partition_key, batch_ids, rows_loaded FROM "
                f'"{pg.ledger}".partitions ORDER BY 1'
            ).fetchall(),
        }


def test_backfills_on_postgres(tmp_path: Path, pg_warehouse: PgWarehouse) -> None:
    files = {
        "landing/orders/2026-01-01.csv": day(1, (11, "01"), (12, "23")),
        "landing/orders/2026-01-02.csv": day(2, (21, "00"), (22, "12")),
    }
    root = write_project(tmp_path, YML.format(warehouse=pg_warehouse.url), files)
    first = penstock.backfill(root, "orders", first="2026-01-01", last="2026-01-02")
    assert [(p.key, p.status, p.rows_loaded) for p in first.partitions] == [
        ("2026-01-01", "success", 2),
        ("2026-01-02", "success", 2),
    ]
    before = read(pg_warehouse)
    assert [r[0] for r in before["orders"]] == [11, 12, 21, 22]
    forced = penstock.backfill(root, "orders", first="2026-01-01", last="2026-01-02", force=True)
    assert [p.status for p in forced.partitions] == ["success", "success"]
    assert read(pg_warehouse) == before
    # day 2 changes: 22 leaves, 23 arrives; a failed load first leaves it as it was
    (root / "landing/orders/2026-01-02.csv").write_text(day(2, (21, "00"), (23, "05")))

    def refuse() -> None:
        raise RuntimeError("injected")

    with fault_action("inside_load_transaction", refuse):
        failed = penstock.backfill(root, "orders", partitions=["2026-01-02"])
    assert [p.status for p in failed.partitions] == ["failed"]
    assert read(pg_warehouse) == before
    retried = penstock.backfill(root, "orders", partitions=["2026-01-02"])
    assert [p.status for p in retried.partitions] == ["success"]
    after = read(pg_warehouse)
    assert [r[0] for r in after["orders"]] == [11, 12, 21, 23]
    assert after["orders"][:2] == before["orders"][:2]
    assert len(after["loads"]) == 2
    assert [(k, n) for k, _, n in after["partitions"]] == [("2026-01-01", 2), ("2026-01-02", 2)]


PARALLEL = """
name: par
warehouse: {warehouse}
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
"""


def test_objects_on_workers_into_postgres(tmp_path: Path, pg_warehouse: PgWarehouse) -> None:
    """Each worker its own server connection; loads take turns; a rebuild on workers too."""
    yml = PARALLEL.format(warehouse=pg_warehouse.url)
    files = {}
    for name in "abc":
        yml += (
            f"  {name}: {{source: landing, files: '{name}/*.csv', key: [id], load: merge, "
            "columns: {id: {type: bigint}, q: {type: integer, min: 0}}}\n"
        )
        files[f"landing/{name}/1.csv"] = "id,q\n1,1\n2,-1\n3,3\n"
    root = write_project(tmp_path, yml, files)
    result = penstock.run(root, workers=3)
    assert result.status == "success"
    assert [
        (s.object, s.rows_loaded, s.rows_quarantined) for s in result.summary(["a", "b", "c"])
    ] == [
        ("a", 2, 1),
        ("b", 2, 1),
        ("c", 2, 1),
    ]
    assert penstock.rebuild(root, workers=3).status == "success"
    with psycopg.connect(pg_warehouse.conninfo) as conn:
        for name in "abc":
            rows = conn.execute(f'SELECT id, q FROM "{pg_warehouse.schema}".{name} ORDER BY 1')
            assert rows.fetchall() == [(1, 1), (3, 3)]
        loads = conn.execute(f'SELECT count(*) FROM "{pg_warehouse.ledger}".loads').fetchone()
        assert loads == (3,)
