"""Benchmark a large orders file (CSV or JSONL, plain or compressed): time and peak RSS of
penstock against a bare DuckDB load of the same file.

    python bench/large.py --rows 2000000 --format csv
    python bench/large.py --rows 20000000 --format csv --repeat 1
    python bench/large.py --rows 10000000 --format jsonl --compress zstd

Generates an N-row orders CSV with the demo's defect mix (for JSONL, the same rows written by
DuckDB as JSON objects, one per line, every value a string; lines the CSV holds malformed are
left out), compresses it if asked, then runs each side in a fresh process (peak RSS is the
child's own VmHWM, batch.PEAK), alternately `--repeat` times:
  * penstock: `penstock.run` on a one-object project (the demo's orders contract) at the
    warehouse's default memory_limit;
  * bare DuckDB: CREATE TABLE AS SELECT * FROM read_csv / read_json of the file, no checks,
    at DuckDB's own default memory_limit.
It prints every sample, the medians and the ratio. The data lives in a temporary directory
(--tmp, default the system's) that is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from batch import run_child  # bench/ is the script's directory, first on sys.path
from bytecode import allow_bytecode
from penstock.demo import write_orders_csv
from penstock.demo.templates import DEMO_PROJECT

PENSTOCK_CHILD = """
import json, sys, time
import penstock
started = time.perf_counter()
result = penstock.run(sys.argv[1])
elapsed = time.perf_counter() - started
if result.status != "success":
    sys.exit("penstock failed: " + "; ".join(str(f.error) for f in result.failures))
(load,) = result.loads()
print(json.dumps({"seconds": elapsed, "status": result.status, "rows_in": load.rows_in,
                  "loaded": load.rows_loaded, "quarantined": load.rows_quarantined}))
"""

BARE_CHILD = """
import json, sys, time
import duckdb
conn = duckdb.connect(sys.argv[1])
reader = "read_json(?, format = 'newline_delimited')" if sys.argv[3] == "jsonl" else "read_csv(?)"
started = time.perf_counter()
conn.execute(f"CREATE TABLE orders AS SELECT * FROM {reader}", [sys.argv[2]])
elapsed = time.perf_counter() - started
rows = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
conn.close()
print(json.dumps({"seconds": elapsed, "rows": rows}))
"""

SUFFIX = {"none": "", "gzip": ".gz", "zstd": ".zst"}


def write_input(root: Path, rows: int, fmt: str, compress: str, seed: int) -> tuple[Path, int]:
    """The landing file and the number of records it holds."""
    folder = root / "landing" / "orders"
    folder.mkdir(parents=True)
    csv = root / "orders.csv"
    expected = write_orders_csv(csv, rows, seed=seed)
    plain = folder / f"orders.{fmt}"
    records = expected.rows_in
    if fmt == "csv":
        csv.rename(plain)
    else:
        conn = duckdb.connect()
        conn.execute("SET preserve_insertion_order = true")
        written = conn.execute(
            f"COPY (SELECT * FROM read_csv('{csv}', all_varchar = true, header = true, "
            f"ignore_errors = true)) TO '{plain}' (FORMAT json)"
        ).fetchone()
        conn.close()
        csv.unlink()
        records = int(written[0]) if written else 0
    if compress == "none":
        return plain, records
    target = plain.with_name(plain.name + SUFFIX[compress])
    with plain.open("rb") as reader, pa.output_stream(str(target), compression=compress) as out:
        while block := reader.read(16 * 2**20):
            out.write(block)
    plain.unlink()
    return target, records


def write_project(root: Path, landing: Path, fmt: str) -> None:
    """The demo's orders object (same contract, merge by order_id) on its own."""
    yml = DEMO_PROJECT.replace("include: [objects/*.yml]\n", "")
    yml = yml.replace("path: ./landing,", "path: ./landing, settle: 0s,")
    yml = yml.replace('files: "orders/*.csv"', f'files: "orders/{landing.name}"')
    yml = yml.replace("format: csv", f"format: {fmt}")
    (root / "penstock.yml").write_text(yml)


def reset(root: Path) -> None:
    """Remove what the last run left, and write the removal to disk before the next run
    starts: a run of 1,000 small files leaves ~3,000 files whose deletion the next side's
    timed run would otherwise pay for in the file system's journal."""
    for name in ("lake", ".penstock", "warehouse.duckdb", "warehouse.duckdb.tmp", "bare.duckdb"):
        target = root / name
        if target.is_dir():
            shutil.rmtree(target)
        target.unlink(missing_ok=True)
    os.sync()


def main() -> None:
    allow_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    parser.add_argument("--compress", choices=list(SUFFIX), default="none")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1, help="alternating runs of each side")
    parser.add_argument("--tmp", type=Path, default=None, help="where to write the data")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="penstock-large-", dir=args.tmp) as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        landing, records = write_input(root, args.rows, args.format, args.compress, args.seed)
        size_mb = landing.stat().st_size / 1e6
        print(
            f"generated {landing.name}: {records:,} records, {size_mb:,.0f} MB "
            f"in {time.perf_counter() - started:.0f} s"
        )
        write_project(root, landing, args.format)
        bare_runs: list[tuple[float, int]] = []
        our_runs: list[tuple[float, int]] = []
        for attempt in range(1, args.repeat + 1):
            reset(root)
            bare, bare_rss = run_child(
                BARE_CHILD, str(root / "bare.duckdb"), str(landing), args.format
            )
            reset(root)
            ours, our_rss = run_child(PENSTOCK_CHILD, str(root))
            assert ours["status"] == "success", ours
            assert ours["rows_in"] == records or args.format == "csv", (ours, records)
            bare_runs.append((float(bare["seconds"]), bare_rss))  # type: ignore[arg-type]
            our_runs.append((float(ours["seconds"]), our_rss))  # type: ignore[arg-type]
            print(
                f"  run {attempt}: bare {bare_runs[-1][0]:.1f} s ({bare_rss / 2**20:,.0f} MB), "
                f"penstock {our_runs[-1][0]:.1f} s ({our_rss / 2**20:,.0f} MB); "
                f"rows in {ours['rows_in']:,}, loaded {ours['loaded']:,}, "
                f"quarantined {ours['quarantined']:,}"
            )
        reset(root)
    bare_s = statistics.median(t for t, _ in bare_runs)
    our_s = statistics.median(t for t, _ in our_runs)
    print(
        f"median of {args.repeat}: bare DuckDB {bare_s:.1f} s, peak RSS "
        f"{max(r for _, r in bare_runs) / 2**20:,.0f} MB; penstock {our_s:.1f} s "
        f"({args.rows / our_s:,.0f} rows/s), peak RSS "
        f"{max(r for _, r in our_runs) / 2**20:,.0f} MB; penstock/bare time {our_s / bare_s:.2f}x"
    )


if __name__ == "__main__":
    main()
