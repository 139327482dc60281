"""A database object's partitions (`partition_by: {column: ...}`) are windows over the column:
a backfill reads each day from the server and replaces it in the warehouse; rows changed or
deleted at the source are replaced exactly, the other days are not touched."""

from __future__ import annotations

from pathlib import Path

import pytest

import penstock

from db_sources import SourceDb, db_project, insert_orders, source_rows, table_rows

pytestmark = pytest.mark.services

ORDERS = """
orders:
  source: shop_db
  table: orders
  key: [id]
  partition_by: {column: updated_at, grain: day}
  columns:
    id: {type: bigint}
    amount: {type: "decimal(12,2)", required: true}
    status: {type: text}
    updated_at: {type: timestamp, required: true}
"""


def test_database_partitions_are_windows_replaced_exactly(tmp_path: Path, db: SourceDb) -> None:
    from datetime import datetime

    db.execute(
        f"CREATE TABLE orders (id bigint PRIMARY KEY, amount decimal(12,2) NOT NULL, "
        f"status varchar(20), updated_at {db.timestamp} NOT NULL)",
        *insert_orders(range(1, 4), datetime(2024, 1, 1, 10)),
        *insert_orders(range(4, 7), datetime(2024, 1, 2, 23, 59, 59)),
        *insert_orders(range(7, 9), datetime(2024, 1, 3)),
    )
    root = db_project(tmp_path, db, ORDERS)
    first = penstock.backfill(root, "orders", first="2024-01-01", last="2024-01-03", workers=2)
    assert [(p.key, p.status, p.rows_loaded) for p in first.partitions] == [
        ("2024-01-01", "success", 3),
        ("2024-01-02", "success", 3),
        ("2024-01-03", "success", 2),
    ]
    assert table_rows(root) == source_rows(db)
    again = penstock.backfill(root, "orders", first="2024-01-01", last="2024-01-03")
    assert [p.status for p in again.partitions] == ["unchanged"] * 3
    # day 2 changes at the source: a row updated, one deleted
    db.execute(
        "UPDATE orders SET status = 'shipped' WHERE id = 5", "DELETE FROM orders WHERE id = 6"
    )
    day1 = [r for r in table_rows(root) if r[0] <= 3]
    changed = penstock.backfill(root, "orders", partitions=["2024-01-02"])
    assert [(p.key, p.status, p.rows_loaded, p.replaced) for p in changed.partitions] == [
        ("2024-01-02", "success", 2, 1)
    ]
    assert table_rows(root) == source_rows(db)
    assert [r for r in table_rows(root) if r[0] <= 3] == day1
    # a plain run reads the table's own windows; the partitions' batches do not block it
    assert penstock.run(root).status == "success"
    assert table_rows(root) == source_rows(db)
