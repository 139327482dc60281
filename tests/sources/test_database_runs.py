"""Database sources against the real servers: full and incremental runs, rows changed between
runs, cursor ties, late commits and lookback, partitions, and rebuild without the database."""

from __future__ import annotations

import shutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import penstock
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
    source_db,
    source_rows,
    table_rows,
)
from helpers import query

pytestmark = pytest.mark.services


def test_full_then_incremental_picks_up_each_change_once(db: SourceDb, tmp_path: Path) -> None:
    create_orders(db, 50)
    project = db_project(tmp_path / "p", db, ORDERS)
    run_ok(project)
    assert table_rows(project) == source_rows(db)
    assert len(table_rows(project)) == 50

    later = (BASE + timedelta(days=1)).isoformat(" ")
    db.execute(
        f"UPDATE orders SET status = 'shipped', updated_at = '{later}' WHERE id IN (3, 7, 11)",
        *insert_orders(range(51, 53), BASE + timedelta(days=1)),
    )
    run_ok(project)
    run_ok(project)
    run_ok(project)
    assert table_rows(project) == source_rows(db)
    loads = ledger(project)
    assert sum(r[2] for r in loads) == 52  # every row inserted once
    assert sum(r[3] for r in loads) == 3  # each changed row updated once
    assert len({r[0] for r in loads}) == len(loads)  # no batch loaded twice
    # a quiet source stages nothing: the last runs found their window staged already
    assert len(Lake(project / "lake").batches("orders")) == len(loads) <= 3


def test_rows_tied_on_the_watermark_are_read_again_and_merged_by_key(
    db: SourceDb, tmp_path: Path
) -> None:
    tie = BASE + timedelta(hours=1)
    db.execute(
        f"CREATE TABLE orders (id bigint PRIMARY KEY, amount decimal(12,2) NOT NULL, "
        f"status varchar(20), updated_at {db.timestamp} NOT NULL)",
        *insert_orders(range(1, 11), tie),
    )
    project = db_project(tmp_path / "p", db, ORDERS)
    run_ok(project)
    # committed after the first read, with the watermark's own value
    db.execute(*insert_orders(range(11, 14), tie))
    run_ok(project)
    assert table_rows(project) == source_rows(db)
    loads = ledger(project)
    assert sum(r[2] for r in loads) == 13
    assert sum(r[3] for r in loads) == 0
    assert loads[-1][4] == 10  # the tied rows read again are unchanged


def test_lookback_catches_a_late_commit_below_the_watermark(db: SourceDb, tmp_path: Path) -> None:
    create_orders(db, 10)  # updated_at BASE+1m .. BASE+10m
    objects = ORDERS + ORDERS.replace("orders:", "no_lookback:", 1).replace(
        "cursor: updated_at", "cursor: updated_at\n  target: no_lookback"
    )
    objects = objects.replace(
        "cursor: updated_at\n  columns", "cursor: updated_at\n  lookback: 10m\n  columns", 1
    )
    project = db_project(tmp_path / "p", db, objects)
    run_ok(project)
    # a transaction that took its time: its row is older than the watermark
    db.execute(*insert_orders(range(11, 12), BASE + timedelta(minutes=5)))
    run_ok(project)
    assert table_rows(project) == source_rows(db)
    assert 11 not in {r[0] for r in table_rows(project, "no_lookback")}


def test_partitions_read_exactly_the_table(db: SourceDb, tmp_path: Path) -> None:
    db.execute(
        f"CREATE TABLE orders (id bigint PRIMARY KEY, amount decimal(12,2) NOT NULL, "
        f"status varchar(20), updated_at {db.timestamp} NOT NULL)",
        # sparse keys, a gap in the middle, a negative one
        *insert_orders(range(1, 700, 3)),
        *insert_orders(range(5000, 5300)),
        "INSERT INTO orders VALUES (-7, 1.00, NULL, '2023-01-01 00:00:00')",
    )
    objects = ORDERS.replace("cursor: updated_at", "partitions: 4")
    project = db_project(tmp_path / "p", db, objects)
    run_ok(project)
    assert table_rows(project) == source_rows(db)
    (batch,) = Lake(project / "lake").batches("orders")
    assert len(list(batch.directory.glob("part-*.parquet"))) == 4
    assert batch.manifest.rows == len(source_rows(db))
    # the same rows read again are the same batch: nothing new
    run_ok(project)
    assert len(Lake(project / "lake").batches("orders")) == 1


def test_rebuild_replays_the_stage_zone_without_the_database(db: SourceDb, tmp_path: Path) -> None:
    create_orders(db, 30)
    project = db_project(tmp_path / "p", db, ORDERS)
    run_ok(project)
    db.execute("UPDATE orders SET amount = 0, updated_at = '2025-01-01 00:00:00' WHERE id = 4")
    run_ok(project)
    before = query(project, "SELECT * EXCLUDE (_loaded_at) FROM orders ORDER BY id")
    db.execute("DROP TABLE orders")
    assert penstock.rebuild(project).status == "success"
    assert query(project, "SELECT * EXCLUDE (_loaded_at) FROM orders ORDER BY id") == before
    assert query(project, "SELECT amount FROM orders WHERE id = 4") == [(Decimal("0.00"),)]


def test_the_same_window_is_the_same_batch_in_any_lake(db: SourceDb, tmp_path: Path) -> None:
    create_orders(db, 20)
    first = db_project(tmp_path / "a", db, ORDERS)
    run_ok(first)
    second = tmp_path / "b"
    shutil.copytree(first, second, ignore=shutil.ignore_patterns("lake", "*.duckdb*", ".penstock"))
    run_ok(second)
    ids = [[b.batch_id for b in Lake(p / "lake").batches("orders")] for p in (first, second)]
    assert ids[0] == ids[1] and len(ids[0]) == 1


def test_a_query_reads_incrementally(db: SourceDb, tmp_path: Path) -> None:
    create_orders(db, 12)
    objects = ORDERS.replace(
        "table: orders",
        "query: SELECT id, amount * 2 AS amount, status, updated_at FROM orders WHERE id > 2",
    )
    project = db_project(tmp_path / "p", db, objects)
    run_ok(project)
    db.execute("UPDATE orders SET amount = 100, updated_at = '2025-01-01 00:00:00' WHERE id = 5")
    run_ok(project)
    expected = [(r[0], r[1] * 2, r[2], r[3]) for r in source_rows(db) if r[0] > 2]
    assert table_rows(project) == expected
    assert sum(r[3] for r in ledger(project)) == 1


def test_a_full_read_that_goes_back_loads_again(pg_url: str, tmp_path: Path) -> None:
    db = source_db("postgres", pg_url)
    create_orders(db, 5)
    keyed = ORDERS.replace("  cursor: updated_at\n", "")
    snapshot = keyed.replace("orders:", "snapshot:", 1).replace(
        "  key: [id]\n", "  target: snapshot\n"
    )
    project = db_project(tmp_path / "p", db, keyed + snapshot)
    states = []
    for amount in ("1.00", "2.00", "1.00"):  # A, B, then A again
        db.execute(f"UPDATE orders SET amount = {amount} WHERE id = 3")
        run_ok(project)
        states.append(
            (
                table_rows(project)[2][1],
                table_rows(project, "snapshot")[2][1],
                len(table_rows(project, "snapshot")),
            )
        )
    assert states == [
        (Decimal("1.00"), Decimal("1.00"), 5),
        (Decimal("2.00"), Decimal("2.00"), 5),
        (Decimal("1.00"), Decimal("1.00"), 5),
    ]
    run_ok(project)  # nothing changed: nothing staged
    assert len(Lake(project / "lake").batches("orders")) == 3
