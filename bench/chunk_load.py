"""Benchmark micro-batch loads: n batches through `apply_batches` against one at a time.

    PYTHONPATH=src:tests .venv/bin/python bench/chunk_load.py --repeat 3

Two parts, each side on the same warehouse file (DuckDBWarehouse's settings: memory_limit 1GB,
UTC), its table reset from a saved copy before every sample, the sides alternating (and which
runs first alternating too):

* **micro-batches**: `--batches` batches of `--batch-rows` orders rows (keys repeat across
  batches, 5% of the rows are late), loaded (a) one at a time by the single-batch mode functions
  of the code before micro-batches (`tests/reference_modes.py`), each batch in its own
  transaction as `load_batch` runs it, and (b) by one `apply_batches` call in one transaction.
  append loads into an empty table, merge and SCD2 into a table of `--stored-rows` rows.
* **n=1 on a large table**: a `--rows`-row initial load (empty table) and a `--inc-rows` batch
  (half changed keys, a tenth identical rows, the rest new) into the `--rows` table, through
  the reference single-batch function and through `apply_batches` with one batch.

Before timing, both sides' tables and counts are compared (a checksum over every row and
column; the per-batch counts); a difference stops the script. Prints every sample and the
medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from bytecode import allow_bytecode
from penstock.catalog import ObjectSpec
from penstock.catalog.columns import ColumnSpec
from penstock.warehouse.duckdb import DuckDBWarehouse
from penstock.warehouse.duckdb_chunk import SEQ, ChunkBatch, apply_batches
from penstock.warehouse.duckdb_modes import ModeCounts
from penstock.warehouse.duckdb_tables import ensure_object_tables

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import reference_modes as ref  # the single-batch functions before micro-batches

ORDINAL = "__penstock_ordinal"
COLUMNS = {
    "order_id": "bigint",
    "customer_id": "bigint",
    "order_ts": "timestamp",
    "status": "text",
    "amount": "decimal(12,2)",
    "country": "text",
    "email": "text",
    "quantity": "integer",
    "updated_at": "timestamp",
}
LOADED = datetime(2025, 1, 1)
EXTRACTED = datetime(2024, 6, 1)


def orders(load: str) -> ObjectSpec:
    return ObjectSpec(
        name="orders",
        source="landing",
        files="*.csv",
        columns={c: ColumnSpec(type=t) for c, t in COLUMNS.items()},
        key=("order_id",) if load != "append" else (),
        order_by="updated_at" if load != "append" else None,
        load=load,  # type: ignore[arg-type]
    )


def rows_sql(n: int, per_batch: int, key_space: int, offset: int = 0) -> str:
    """`n` orders rows in batches of `per_batch` (seq 1..), unique keys within a batch; keys
    drawn over `key_space` (so they repeat across batches); 5% of the rows a day late."""
    key = (
        f"(i + {offset})"
        if key_space == 0
        else (f"((i // {per_batch} + 1) * 7919 + (i % {per_batch} + 1) * 104729) % {key_space}")
    )

    def pick(salt: int, modulo: int) -> str:
        return f"CAST(hash(i, {salt}) % {modulo} AS BIGINT)"

    return f"""
        SELECT CAST(i // {per_batch} + 1 AS INTEGER) AS {SEQ},
               CAST(i % {per_batch} + 1 AS BIGINT) AS {ORDINAL},
               CAST({key} AS BIGINT) AS order_id, {pick(0, 50000)} AS customer_id,
               TIMESTAMP '2024-01-01' + to_minutes(CAST(i // {per_batch} AS BIGINT)) AS order_ts,
               ['placed', 'shipped', 'delivered', 'cancelled', 'returned'][{pick(1, 5)} + 1]
                   AS status,
               CAST({pick(2, 100000)} / 100 AS DECIMAL(12, 2)) AS amount,
               ['NO', 'SE', 'DE', 'FR'][{pick(3, 4)} + 1] AS country,
               'customer' || {pick(0, 50000)} || '@example.com' AS email,
               CAST({pick(4, 1000)} + 1 AS INTEGER) AS quantity,
               TIMESTAMP '2024-01-02' + to_minutes(CAST(i // {per_batch} AS BIGINT))
                   - CASE WHEN {pick(5, 20)} = 0 THEN INTERVAL 1 DAY ELSE INTERVAL 0 DAY END
                   AS updated_at
        FROM range({n}) r(i)
    """


def increment_sql(base: str, rows: int, *, current_only: bool) -> str:
    """`rows` rows against the stored table `base`: half changed keys (a day later), a tenth
    identical, the rest new keys; keys drawn uniformly over the table."""
    changed, identical = rows // 2, rows // 10
    new = rows - changed - identical
    cols = ", ".join(COLUMNS)
    changed_cols = cols.replace("status", "'returned' AS status").replace(
        "updated_at", "updated_at + INTERVAL 1 DAY AS updated_at"
    )
    new_cols = cols.replace("order_id", "order_id + 100000000 AS order_id")
    picked = (
        f"(SELECT {cols}, row_number() OVER () AS n FROM (SELECT * FROM {base} "
        f"{'WHERE _is_current' if current_only else ''} ORDER BY hash(order_id) "
        f"LIMIT {changed + identical + new}))"
    )
    return f"""
        SELECT CAST(1 AS INTEGER) AS {SEQ}, row_number() OVER () AS {ORDINAL}, * FROM (
            SELECT {changed_cols} FROM {picked} WHERE n <= {changed}
            UNION ALL SELECT {cols} FROM {picked} WHERE n > {changed} AND n <= {changed + identical}
            UNION ALL SELECT {new_cols} FROM {picked} WHERE n > {changed + identical})
    """


class Bench:
    def __init__(self, path: Path) -> None:
        self.warehouse = DuckDBWarehouse(path)
        self.conn = self.warehouse.conn

    def reset(self, obj: ObjectSpec, saved: str | None) -> None:
        """The object's table afresh: a copy of `saved`, or empty."""
        self.conn.execute("DROP TABLE IF EXISTS orders")
        if saved:
            self.conn.execute(f"CREATE TABLE orders AS SELECT * FROM {saved}")
        else:
            ensure_object_tables(self.conn, obj)
        self.conn.execute("CHECKPOINT")

    def checksum(self) -> tuple[int, int]:
        row = self.conn.execute("SELECT count(*), sum(hash(t)) FROM orders t").fetchone()
        assert row is not None
        return int(row[0]), int(row[1] or 0)

    def transaction(self, work: Callable[[], object]) -> float:
        started = time.perf_counter()
        self.conn.execute("BEGIN TRANSACTION")
        work()
        self.conn.execute("COMMIT")
        return time.perf_counter() - started


def one_at_a_time(
    bench: Bench, obj: ObjectSpec, batches: Sequence[ChunkBatch], source: Callable[[int], str]
) -> list[ModeCounts]:
    """Each batch through the reference single-batch function, in its own transaction."""
    out: list[ModeCounts] = []
    for b in batches:

        def work(b: ChunkBatch = b) -> None:
            src = source(b.seq)
            if obj.load == "append":
                out.append(ref.append(bench.conn, obj, src, b.batch_id, b.loaded_at))
            elif obj.load == "merge":
                out.append(ref.merge(bench.conn, obj, src, b.batch_id, b.loaded_at))
            else:
                out.append(ref.scd2(bench.conn, obj, src, b.batch_id, b.loaded_at, b.extracted_at))

        bench.transaction(work)
    return out


def chunked(
    bench: Bench, obj: ObjectSpec, source: str, batches: Sequence[ChunkBatch]
) -> list[ModeCounts]:
    """The whole chunk through `apply_batches`, in one transaction."""
    out: list[ModeCounts] = []
    bench.transaction(lambda: out.extend(apply_batches(bench.conn, obj, source, batches)))
    return out


def compare(
    bench: Bench,
    label: str,
    obj: ObjectSpec,
    saved: str | None,
    batches: Sequence[ChunkBatch],
    per_batch: Callable[[int], str],
    chunk_source: str,
    repeat: int,
) -> tuple[float, float]:
    """Check both sides agree, then time them alternately; (one at a time, chunk) medians."""
    times: dict[str, list[float]] = {"one": [], "chunk": []}
    results: dict[str, tuple[list[ModeCounts], tuple[int, int]]] = {}
    for attempt in range(repeat):
        # the side that runs second after a reset measured slower: alternate the order
        for side in ("one", "chunk") if attempt % 2 == 0 else ("chunk", "one"):
            bench.reset(obj, saved)
            started = time.perf_counter()
            if side == "one":
                counts = one_at_a_time(bench, obj, batches, per_batch)
            else:
                counts = chunked(bench, obj, chunk_source, batches)
            times[side].append(time.perf_counter() - started)
            if attempt == 0:
                results[side] = (counts, bench.checksum())
        if attempt == 0 and results["one"] != results["chunk"]:
            raise SystemExit(f"{label}: the chunk differs from one batch at a time")
        print(
            f"  {label} run {attempt + 1}: one at a time {times['one'][-1]:.3f} s, "
            f"chunk {times['chunk'][-1]:.3f} s",
            flush=True,
        )
    return statistics.median(times["one"]), statistics.median(times["chunk"])


def batches_of(n: int, rows: dict[int, int]) -> list[ChunkBatch]:
    return [
        ChunkBatch(
            seq,
            f"batch-{seq:05d}",
            EXTRACTED + timedelta(minutes=seq),
            LOADED + timedelta(seconds=seq),
            rows.get(seq, 0),
        )
        for seq in range(1, n + 1)
    ]


def micro_batches(bench: Bench, args: argparse.Namespace, modes: list[str]) -> list[str]:
    conn = bench.conn
    n, per = args.batches, args.batch_rows
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE chunk_rows AS {rows_sql(n * per, per, args.key_space)}"
    )
    for seq in range(1, n + 1):
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE batch_{seq} AS "
            f"SELECT * FROM chunk_rows WHERE {SEQ} = {seq}"
        )
    batches = batches_of(n, dict.fromkeys(range(1, n + 1), per))
    lines = []
    for load in modes:
        obj = orders(load)
        saved = None
        if load != "append":
            saved = f"saved_{load}"
            bench.reset(obj, None)
            stored = rows_sql(args.stored_rows, args.stored_rows, 0).replace(
                "TIMESTAMP '2024-01-02'", "TIMESTAMP '2023-12-01'"
            )
            conn.execute(f"CREATE TEMP TABLE stored_rows AS {stored}")
            (batch,) = batches_of(1, {1: args.stored_rows})
            ref_load = ref.merge if load == "merge" else None
            if ref_load:
                ref_load(conn, obj, "stored_rows", batch.batch_id, batch.loaded_at)
            else:
                ref.scd2(conn, obj, "stored_rows", batch.batch_id, batch.loaded_at, EXTRACTED)
            conn.execute("DROP TABLE stored_rows")
            conn.execute(f"CREATE OR REPLACE TABLE {saved} AS SELECT * FROM orders")
        one, chunk = compare(
            bench,
            f"{load} {n} x {per}",
            obj,
            saved,
            batches,
            lambda seq: f"batch_{seq}",
            "chunk_rows",
            args.repeat,
        )
        into = "empty table" if saved is None else f"{args.stored_rows:,}-row table"
        lines.append(
            f"| {load} | {n:,} x {per} rows into an {into} | {one:.2f} s | {chunk:.3f} s "
            f"| {one / chunk:.0f}x |"
        )
    for seq in range(1, n + 1):
        conn.execute(f"DROP TABLE batch_{seq}")
    return lines


def single_batch(bench: Bench, args: argparse.Namespace, modes: list[str]) -> list[str]:
    conn = bench.conn
    conn.execute(f"CREATE OR REPLACE TEMP TABLE big_rows AS {rows_sql(args.rows, args.rows, 0)}")
    (big,) = batches_of(1, {1: args.rows})
    lines = []
    for load in modes:
        obj = orders(load)
        label = f"{load} n=1 initial {args.rows:,}"
        one, chunk = compare(
            bench, label, obj, None, [big], lambda _: "big_rows", "big_rows", args.repeat
        )
        lines.append(f"| {label} | {one:.2f} s | {chunk:.2f} s | {chunk / one:.0%} |")
        if load == "append":
            continue
        saved = f"saved_big_{load}"
        bench.reset(obj, None)
        chunked(bench, obj, "big_rows", [big])
        conn.execute(f"CREATE OR REPLACE TABLE {saved} AS SELECT * FROM orders")
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE inc_rows AS "
            f"{increment_sql(saved, args.inc_rows, current_only=load == 'scd2')}"
        )
        (inc,) = batches_of(1, {1: args.inc_rows})
        label = f"{load} n=1 {args.inc_rows:,} into {args.rows:,}"
        one, chunk = compare(
            bench, label, obj, saved, [inc], lambda _: "inc_rows", "inc_rows", args.repeat
        )
        lines.append(f"| {label} | {one:.3f} s | {chunk:.3f} s | {chunk / one:.0%} |")
        conn.execute(f"DROP TABLE {saved}")
    return lines


def main() -> None:
    allow_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--batch-rows", type=int, default=100)
    parser.add_argument("--key-space", type=int, default=60_000, help="keys of the micro-batches")
    parser.add_argument("--stored-rows", type=int, default=50_000)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--inc-rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", default="append,merge,scd2")
    parser.add_argument("--parts", default="micro,single")
    args = parser.parse_args()
    modes = args.modes.split(",")
    with tempfile.TemporaryDirectory(prefix="penstock-chunk-") as tmp:
        bench = Bench(Path(tmp) / "warehouse.duckdb")
        try:
            micro = micro_batches(bench, args, modes) if "micro" in args.parts else []
            single = single_batch(bench, args, modes) if "single" in args.parts else []
        finally:
            bench.warehouse.close()
    print(f"\nmedians of {args.repeat}")
    if micro:
        print("| mode | batches | one at a time | chunk | speed-up |")
        print("| --- | --- | ---: | ---: | ---: |")
        print("\n".join(micro))
    if single:
        print("\n| n=1 | reference single-batch | apply_batches | ratio |")
        print("| --- | ---: | ---: | ---: |")
        print("\n".join(single))


if __name__ == "__main__":
    main()
