"""Micro-batch loads against their definition: n batches applied one at a time.

A scenario is an object (load mode, key, order_by type), a stored table (built by loading a few
history batches one at a time, then given a column the contract no longer names, and for merge
some NULL order_by values) and the n batches of a chunk. `run_both` loads the chunk into one
copy of the table with `apply_batches` and, batch by batch, into another with the single-batch
mode functions (`reference_modes`), each batch's rows deduplicated by the one-batch load view
of `quality.validate`; it returns both tables' full contents and both lists of counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
from hypothesis import strategies as st

from penstock.catalog import ObjectSpec
from penstock.catalog.columns import ColumnSpec
from penstock.lake.read import ORDINAL
from penstock.quality.validate import version_columns
from penstock.sql import ident, idents
from penstock.warehouse.duckdb_chunk import SEQ, ChunkBatch, apply_batches
from penstock.warehouse.duckdb_modes import ModeCounts
from penstock.warehouse.duckdb_tables import ensure_object_tables

import reference_modes as ref

Row = tuple[Any, ...]
KEPT = "legacy"  # a column the table keeps, the contract no longer names
BASE = datetime(2024, 1, 1)


@dataclass(frozen=True)
class Scenario:
    load: str
    key: tuple[str, ...]
    order_by: str | None  # None, or the type of column `ts`: timestamp, date, integer
    history: tuple[tuple[Row, ...], ...]  # batches loaded one at a time before the chunk
    null_order_by: tuple[int, ...]  # merge: stored keys (k1) whose order_by is set NULL
    chunk: tuple[tuple[Row, ...], ...]  # the chunk's batches, in seq order
    extracted: tuple[int, ...]  # each batch's extraction time (hours after BASE; ties occur)

    def obj(self, table: str) -> ObjectSpec:
        columns = {
            "k1": ColumnSpec(type="integer", required=True),
            "k2": ColumnSpec(type="text", required=True),
            "v": ColumnSpec(type="text"),
            "n": ColumnSpec(type="double"),
            "ts": ColumnSpec(type=self.order_by or "timestamp"),
        }
        return ObjectSpec(
            name="items",
            target=table,
            source="landing",
            files="*.csv",
            columns=columns,
            key=self.key,
            order_by="ts" if self.order_by else None,
            load=self.load,  # type: ignore[arg-type]
        )


COLUMNS = ("k1", "k2", "v", "n", "ts")


def _ts_value(kind: str, step: int) -> Any:
    if kind == "date":
        return date(2024, 1, 1) + timedelta(days=step)
    if kind == "integer":
        return step
    return BASE + timedelta(hours=step)


@st.composite
def rows(draw: st.DrawFn, order_by: str | None, null_ts: bool) -> tuple[Row, ...]:
    """A batch's records: few keys and values, so keys, rows and order_by values repeat."""
    kind = order_by or "timestamp"
    ts = st.integers(0, 5).map(lambda s: _ts_value(kind, s))
    if null_ts:
        ts = st.one_of(ts, st.none())
    row = st.tuples(
        st.integers(1, 4),
        st.sampled_from(["a", "b"]),
        st.sampled_from([None, "x", "y", ""]),
        st.sampled_from([None, 1.5, -0.0, 2.0]),
        ts,
    )
    return tuple(draw(st.lists(row, max_size=7)))


@st.composite
def scenarios(draw: st.DrawFn, load: str) -> Scenario:
    keyed = load in ("merge", "scd2") or draw(st.booleans())
    key = draw(st.sampled_from([("k1",), ("k1", "k2")])) if keyed else ()
    order_by = draw(st.sampled_from([None, "timestamp", "date", "integer"]))
    if not key:
        order_by = None
    # a validated row always has its order_by value, a stored merge row may lack it; merge
    # is checked with NULL order_by values coming in too (the rules decide those as well)
    batch = rows(order_by, null_ts=order_by is None or load == "merge")
    history = tuple(draw(st.lists(batch, max_size=3)))
    chunk = draw(st.lists(batch, min_size=1, max_size=6))
    if draw(st.booleans()):  # an empty batch somewhere
        chunk.insert(draw(st.integers(0, len(chunk))), ())
    null_keys = draw(st.lists(st.integers(1, 4), max_size=3)) if load == "merge" else []
    extracted = draw(st.lists(st.integers(0, 8), min_size=len(chunk), max_size=len(chunk)))
    return Scenario(
        load, key, order_by, history, tuple(null_keys), tuple(chunk), tuple(sorted(extracted))
    )


def connect() -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def load_view(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, name: str, records: Sequence[Row]
) -> int:
    """The batch's rows as today's one-batch load view `name` (deduplicated within the batch);
    returns its row count."""
    checked = f"{name}_checked"
    typed = ", ".join(
        f"{ident(c)} {spec.column_type.duckdb_type}" for c, spec in obj.columns.items()
    )
    conn.execute(f"CREATE TEMP TABLE {checked} ({typed})")
    for record in records:
        conn.execute(f"INSERT INTO {checked} VALUES ({', '.join('?' for _ in record)})", record)
    # within a batch, each key (version) keeps its greatest order_by, at a tie its later
    # record: the one-batch load view's rule, written out here as its definition
    versions = version_columns(obj)
    qualify = ""
    if versions:
        by_value = obj.order_by and obj.order_by not in versions
        order = f"{ident(obj.order_by)} DESC NULLS LAST, " if by_value and obj.order_by else ""
        qualify = (
            f"QUALIFY row_number() OVER (PARTITION BY {idents(versions)} "
            f"ORDER BY {order}rowid DESC) = 1"
        )
    conn.execute(
        f"CREATE TEMP VIEW {name} AS SELECT *, rowid + 1 AS {ORDINAL} FROM {checked} {qualify}"
    )
    return _count(conn, name)


def _count(conn: duckdb.DuckDBPyConnection, relation: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {relation}").fetchone()
    assert row is not None
    return int(row[0])


def batch_times(index: int, extracted_hours: int) -> tuple[datetime, datetime]:
    """(loaded_at, extracted_at) of a batch: distinct load times, extraction times may tie."""
    loaded = datetime(2025, 1, 1) + timedelta(minutes=index, microseconds=7)
    return loaded, BASE + timedelta(hours=extracted_hours)


def apply_one(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    batch_id: str,
    loaded_at: datetime,
    extracted_at: datetime,
    rows_loaded: int,
) -> ModeCounts:
    """One batch through the single-batch mode function, as `load_batch` calls it."""
    if obj.load == "append":
        return ref.append(conn, obj, source, batch_id, loaded_at)
    if obj.load == "replace":
        return ref.replace(conn, obj, source, batch_id, loaded_at, rows=rows_loaded)
    if obj.load == "merge":
        return ref.merge(conn, obj, source, batch_id, loaded_at)
    return ref.scd2(conn, obj, source, batch_id, loaded_at, extracted_at)


def build_stored(conn: duckdb.DuckDBPyConnection, scenario: Scenario, obj: ObjectSpec) -> None:
    """The stored table: the history batches loaded one at a time, then the kept column added
    (it reads NULL in the contract from now on) and filled, and some NULL order_by values."""
    ensure_object_tables(conn, obj)
    for index, records in enumerate(scenario.history):
        view = f"history_{index}"
        loaded = load_view(conn, obj, view, records)
        loaded_at, extracted_at = batch_times(index, index)
        earlier = extracted_at - timedelta(days=9)
        apply_one(conn, obj, view, f"h-{index}", loaded_at, earlier, loaded)
    table = ident(obj.table_name)
    conn.execute(f"ALTER TABLE {table} ADD COLUMN {KEPT} VARCHAR")
    conn.execute(f"UPDATE {table} SET {KEPT} = 'kept-' || k1 || k2 || coalesce(v, '-')")
    if scenario.null_order_by and scenario.order_by:
        listed = ", ".join(str(k) for k in scenario.null_order_by)
        conn.execute(f"UPDATE {table} SET ts = NULL WHERE k1 IN ({listed})")


@dataclass(frozen=True)
class Outcome:
    columns: list[str]
    table: list[Row]  # every column, every row, sorted
    counts: list[ModeCounts]

    def pick(self, *names: str) -> list[Row]:
        """The table's rows reduced to `names`, sorted."""
        at = [self.columns.index(n) for n in names]
        return sorted((tuple(row[i] for i in at) for row in self.table), key=repr)


def run_both(scenario: Scenario) -> tuple[Outcome, Outcome]:
    """(one batch at a time, the chunk at once): each table's content and the counts."""
    conn = connect()
    try:
        one, chunked = scenario.obj("one_at_a_time"), scenario.obj("chunked")
        build_stored(conn, scenario, one)
        conn.execute(f"CREATE TABLE chunked AS SELECT * FROM {ident(one.table_name)}")
        batches: list[ChunkBatch] = []
        sequential: list[ModeCounts] = []
        for seq, records in enumerate(scenario.chunk, start=1):
            view = f"batch_{seq}"
            loaded = load_view(conn, one, view, records)
            loaded_at, extracted_at = batch_times(100 + seq, scenario.extracted[seq - 1])
            batch = ChunkBatch(seq, f"b-{seq}", extracted_at, loaded_at, loaded)
            batches.append(batch)
            sequential.append(
                apply_one(conn, one, view, batch.batch_id, loaded_at, extracted_at, loaded)
            )
        source = " UNION ALL ".join(
            f"SELECT *, CAST({b.seq} AS INTEGER) AS {SEQ} FROM batch_{b.seq}" for b in batches
        )
        conn.execute(f"CREATE TEMP VIEW chunk_rows AS {source}")
        chunk_counts = apply_batches(conn, chunked, "chunk_rows", batches)
        return (
            Outcome(*table_rows(conn, one.table_name), sequential),
            Outcome(*table_rows(conn, chunked.table_name), chunk_counts),
        )
    finally:
        conn.close()


def table_rows(conn: duckdb.DuckDBPyConnection, table: str) -> tuple[list[str], list[Row]]:
    cursor = conn.execute(f"SELECT * FROM {ident(table)} ORDER BY ALL")
    rows = list(cursor.fetchall())
    return [d[0] for d in cursor.description], rows


def describe(scenario: Scenario) -> str:
    return (
        f"load={scenario.load} key={scenario.key} order_by={scenario.order_by} "
        f"history={scenario.history} chunk={scenario.chunk} extracted={scenario.extracted} "
        f"null_order_by={scenario.null_order_by}"
    )
