"""Micro-batch loads, the tricky cases spelled out: each example states what the table holds
and what each batch counts, and checks that one batch at a time gives exactly the same."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from penstock.errors import WarehouseError
from penstock.warehouse.duckdb_chunk import SEQ, ChunkBatch, apply_batches
from penstock.warehouse.duckdb_modes import ModeCounts
from penstock.warehouse.duckdb_tables import ensure_object_tables

from chunk_oracle import (
    Outcome,
    Row,
    Scenario,
    batch_times,
    build_stored,
    connect,
    load_view,
    run_both,
)

JAN, FEB, MAR = date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)
T1, T2 = datetime(2024, 1, 1, 10), datetime(2024, 1, 2, 10)


def example(
    load: str,
    chunk: list[list[Row]],
    *,
    history: list[list[Row]] | None = None,
    order_by: str | None = "timestamp",
    key: tuple[str, ...] = ("k1",),
    null_order_by: tuple[int, ...] = (),
) -> Outcome:
    scenario = Scenario(
        load=load,
        key=key,
        order_by=order_by,
        history=tuple(tuple(b) for b in history or []),
        null_order_by=null_order_by,
        chunk=tuple(tuple(b) for b in chunk),
        extracted=tuple(range(len(chunk))),
    )
    one_at_a_time, chunked = run_both(scenario)
    assert chunked.counts == one_at_a_time.counts
    assert chunked.table == one_at_a_time.table
    return chunked


def row(k1: int, v: str | None, ts: Any = T1, *, n: float | None = None, k2: str = "a") -> Row:
    return (k1, k2, v, n, ts)


def test_merge_a_then_b_then_a_across_three_batches_ends_on_the_third() -> None:
    out = example("merge", [[row(1, "A")], [row(1, "B")], [row(1, "A")]])
    assert out.counts == [ModeCounts(inserted=1), ModeCounts(updated=1), ModeCounts(updated=1)]
    assert out.pick("k1", "v", "_batch_id") == [(1, "A", "b-3")]


def test_merge_a_then_b_then_a_with_an_older_order_by_is_stale() -> None:
    out = example("merge", [[row(1, "A", T1)], [row(1, "B", T2)], [row(1, "A", T1)]])
    assert out.counts == [ModeCounts(inserted=1), ModeCounts(updated=1), ModeCounts(stale=1)]
    assert out.pick("k1", "v", "_batch_id") == [(1, "B", "b-2")]


def test_merge_an_identical_row_in_a_later_batch_keeps_the_first_batch() -> None:
    out = example("merge", [[row(1, "A"), row(2, "B")], [row(1, "A")], [row(1, "A"), row(2, "C")]])
    assert out.counts == [
        ModeCounts(inserted=2),
        ModeCounts(unchanged=1),
        ModeCounts(updated=1, unchanged=1),
    ]
    assert out.pick("k1", "v", "_batch_id") == [(1, "A", "b-1"), (2, "C", "b-3")]
    first_load = out.pick("k1", "_loaded_at")[0][1]
    assert out.pick("_batch_id", "_loaded_at").count(("b-1", first_load)) == 1


def test_merge_a_stored_null_order_by_loses_and_the_kept_column_stays() -> None:
    out = example(
        "merge",
        [[row(1, "B", T1)], [row(1, "C", T1)]],
        history=[[row(1, "A", T2), row(2, "Z", T2)]],
        null_order_by=(1,),
    )
    assert out.counts == [ModeCounts(updated=1), ModeCounts(updated=1)]
    # the stored row's column the contract dropped is carried to the key's new version
    assert out.pick("k1", "v", "_batch_id", "legacy") == [
        (1, "C", "b-2", "kept-1aA"),
        (2, "Z", "h-0", "kept-2aZ"),
    ]


def test_merge_one_batch_against_the_stored_rows_every_case_at_once() -> None:
    """A batch alone is classified by order_by first; only the rows whose order_by equals the
    stored one's are compared in every column (duckdb_chunk_merge)."""
    stored = [row(1, "A"), row(2, "B"), row(3, "C", T2), row(4, "D"), row(5, "E")]
    out = example(
        "merge",
        [
            [
                row(1, "A"),  # the same row: unchanged
                row(2, "X"),  # the same order_by, another value: a correction, an update
                row(3, "Y", T1),  # older: stale
                row(4, "Z", T2),  # newer: an update
                row(5, "E", T2),  # the stored order_by is NULL: it loses
                row(6, "N"),  # a new key
            ]
        ],
        history=[stored],
        null_order_by=(5,),
    )
    assert out.counts == [ModeCounts(inserted=1, updated=3, unchanged=1, stale=1)]
    assert out.pick("k1", "v", "_batch_id") == [
        (1, "A", "h-0"),
        (2, "X", "b-1"),
        (3, "C", "h-0"),
        (4, "Z", "b-1"),
        (5, "E", "b-1"),
        (6, "N", "b-1"),
    ]


def test_replace_with_an_empty_last_batch_keeps_the_snapshot_before_it() -> None:
    out = example("replace", [[row(1, "A"), row(2, "B")], [row(3, "C")], []], order_by=None)
    assert out.counts == [
        ModeCounts(inserted=2),
        ModeCounts(inserted=1),
        ModeCounts(kept_previous=True),
    ]
    assert out.pick("k1", "v", "_batch_id") == [(3, "C", "b-2")]


def test_append_keeps_every_row_with_its_own_batch() -> None:
    out = example("append", [[row(1, "A")], [], [row(1, "A"), row(2, "B")]], order_by=None, key=())
    assert out.counts == [ModeCounts(inserted=1), ModeCounts(), ModeCounts(inserted=2)]
    assert out.pick("k1", "v", "_batch_id") == [(1, "A", "b-1"), (1, "A", "b-3"), (2, "B", "b-3")]


HISTORY = ("k1", "v", "_valid_from", "_valid_to", "_is_current", "_batch_id")


def ts(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def test_scd2_a_late_version_in_a_later_batch_is_placed_between() -> None:
    out = example(
        "scd2",
        [[row(1, "Oslo", JAN)], [row(1, "Rome", MAR)], [row(1, "Lima", FEB)]],
        order_by="date",
    )
    assert out.counts == [ModeCounts(inserted=1), ModeCounts(updated=1), ModeCounts(updated=1)]
    assert out.pick(*HISTORY) == [
        (1, "Lima", ts(FEB), ts(MAR), False, "b-3"),
        (1, "Oslo", ts(JAN), ts(FEB), False, "b-1"),
        (1, "Rome", ts(MAR), None, True, "b-2"),
    ]


def test_scd2_a_version_equal_to_the_current_one_is_forgotten_before_a_late_one() -> None:
    # batch 1's Oslo on March equals the current version: it adds nothing and is not stored;
    # batch 2's late Lima then runs on from February (had Lima come first, Oslo on March
    # would have been a version of its own): the chunk keeps this order
    out = example(
        "scd2",
        [[row(1, "Oslo", MAR)], [row(1, "Lima", FEB)]],
        history=[[row(1, "Oslo", JAN)]],
        order_by="date",
    )
    assert out.counts == [ModeCounts(unchanged=1), ModeCounts(updated=1)]
    assert out.pick(*HISTORY) == [
        (1, "Lima", ts(FEB), None, True, "b-2"),
        (1, "Oslo", ts(JAN), ts(FEB), False, "h-0"),
    ]


def test_scd2_a_correction_in_a_later_batch_replaces_the_version_at_its_start() -> None:
    out = example(
        "scd2",
        [[row(1, "Oslo", JAN), row(2, "Pune", JAN)], [row(1, "Bergen", JAN), row(2, "Pune", JAN)]],
        order_by="date",
    )
    assert out.counts == [ModeCounts(inserted=2), ModeCounts(updated=1, unchanged=1)]
    assert out.pick(*HISTORY) == [
        (1, "Bergen", ts(JAN), None, True, "b-2"),
        (2, "Pune", ts(JAN), None, True, "b-1"),
    ]


class CountingConnection:
    """Forwards to a DuckDB connection and counts the statements it executes."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.statements = 0

    def execute(self, sql: str, *args: Any) -> Any:
        self.statements += 1
        return self.conn.execute(sql, *args)


def statements_for(load: str, order_by: str | None, n: int) -> int:
    """Statements `apply_batches` runs for n batches of late, repeated and new keys."""

    day = [JAN, FEB, MAR]
    values: Any = day if order_by == "date" else [T1, T2, datetime(2024, 1, 3)]
    scenario = Scenario(load, ("k1",), order_by, ((row(1, "S", values[1]),),), (), (), ())
    conn = connect()
    try:
        obj = scenario.obj("items")
        build_stored(conn, scenario, obj)
        batches = []
        for seq in range(1, n + 1):
            records = [row(1, f"v{seq % 2}", values[seq % 3]), row(seq + 1, "new", values[0])]
            loaded = load_view(conn, obj, f"batch_{seq}", records)
            loaded_at, extracted_at = batch_times(seq, seq)
            batches.append(ChunkBatch(seq, f"b-{seq}", extracted_at, loaded_at, loaded))
        union = " UNION ALL ".join(
            f"SELECT *, {b.seq}::INTEGER AS {SEQ} FROM batch_{b.seq}" for b in batches
        )
        conn.execute(f"CREATE TEMP VIEW chunk_rows AS {union}")
        counting = CountingConnection(conn)
        counts = apply_batches(counting, obj, "chunk_rows", batches)  # type: ignore[arg-type]
        assert sum(c.inserted + c.updated + c.unchanged + c.stale for c in counts) > 0
        return counting.statements
    finally:
        conn.close()


def test_the_statements_per_chunk_do_not_grow_with_its_batches() -> None:
    for load, order_by in [
        ("append", None),
        ("replace", None),
        ("merge", "timestamp"),
        ("scd2", "date"),
        ("scd2", None),
    ]:
        few, many = statements_for(load, order_by, 2), statements_for(load, order_by, 60)
        assert few == many <= 12, (load, order_by, few, many)


def test_counts_come_back_in_the_order_the_batches_are_given() -> None:

    scenario = Scenario("merge", ("k1",), "timestamp", (), (), (), ())
    conn = connect()
    try:
        obj = scenario.obj("items")
        ensure_object_tables(conn, obj)
        load_view(conn, obj, "first", [row(1, "A"), row(2, "B")])
        load_view(conn, obj, "second", [row(1, "C")])
        conn.execute(
            f"CREATE TEMP VIEW rows AS SELECT *, 1 AS {SEQ} FROM first "
            f"UNION ALL SELECT *, 2 AS {SEQ} FROM second"
        )
        second = ChunkBatch(2, "b-2", T1, T2, 1)
        first = ChunkBatch(1, "b-1", T1, T1, 2)
        counts = apply_batches(conn, obj, "rows", [second, first])
        assert counts == [ModeCounts(updated=1), ModeCounts(inserted=2)]
        rows = conn.execute("SELECT k1, v, _batch_id FROM items ORDER BY k1").fetchall()
        assert rows == [(1, "C", "b-2"), (2, "B", "b-1")]
    finally:
        conn.close()


def test_batches_must_be_numbered_one_to_n() -> None:

    obj = Scenario("append", (), None, (), (), (), ()).obj("items")
    conn = connect()
    try:
        batches = [ChunkBatch(1, "b-1", T1, T1, 0), ChunkBatch(3, "b-3", T1, T1, 0)]
        with pytest.raises(WarehouseError, match=r"numbered 1\.\.2 once each, got seq \[1, 3\]"):
            apply_batches(conn, obj, "nowhere", batches)
    finally:
        conn.close()
