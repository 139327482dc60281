"""penstock merging orders into PostgreSQL against a bare COPY of the same CSV, in one run.

    python bench/load_postgres.py --rows 2000000 --repeat 3 [--url postgresql://…/test]

Generates the orders CSV with the shared generator (../shared/bench/gen_orders.py: 11 columns,
~1% planted defects, 0.2% repeated keys) and then, alternately and each in a fresh process:
  * bare COPY: `COPY orders FROM STDIN (FORMAT csv, HEADER true)` of the file into an empty
    table of text columns (the file holds values no typed column would take), streamed by
    psycopg in 1 MiB writes: the floor, no parsing of values, no checks;
  * penstock: `penstock.run` on a one-object project (the anchor's 12-check contract, load:
    merge on order_id) whose warehouse is `postgresql://…?schema=<fresh>`: stage, validate in
    the embedded DuckDB, quarantine, dedupe, COPY into the table, ledger, one transaction.
Before any time is reported penstock's table is checked against the generator's
expected.json (rows, sum of amount in cents, sum of quantity). It prints every sample, the
medians and the speed ratio (bare seconds / penstock seconds; the target is >= 0.5).

`--second` adds a second delivery per penstock sample: a file from another seed (about a
quarter of its keys are already stored) merged into the 2M-row table: the staged path
(COPY into a temp table, classify, delete + insert), reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from batch_shared import SHARED_PROJECT, shared_bench

BARE_CHILD = """
import json, sys, time
import psycopg
url, csv = sys.argv[1], sys.argv[2]
with psycopg.connect(url, autocommit=True) as conn:
    header = next(__import__("csv").reader(open(csv)))
    conn.execute("DROP TABLE IF EXISTS bench_bare_orders")
    columns = ", ".join(f'"{c}" text' for c in header)
    conn.execute(f"CREATE TABLE bench_bare_orders ({columns})")
    started = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy("COPY bench_bare_orders FROM STDIN (FORMAT csv, HEADER true)") as copy, \\
                open(csv, "rb") as data:
            while block := data.read(1 << 20):
                copy.write(block)
    elapsed = time.perf_counter() - started
    rows = conn.execute("SELECT count(*) FROM bench_bare_orders").fetchone()[0]
    conn.execute("DROP TABLE bench_bare_orders")
print(json.dumps({"seconds": elapsed, "rows": rows}))
"""

PENSTOCK_CHILD = """
import json, sys, time
import penstock
from penstock.warehouse.postgres import PostgresWarehouse
load_seconds = []
load_chunk = PostgresWarehouse.load_chunk
def timed(self, *args, **kwargs):  # the load step: validated rows in, transaction committed
    started = time.perf_counter()
    try:
        return load_chunk(self, *args, **kwargs)
    finally:
        load_seconds.append(time.perf_counter() - started)
PostgresWarehouse.load_chunk = timed
started = time.perf_counter()
result = penstock.run(sys.argv[1])
elapsed = time.perf_counter() - started
loads = result.loads()
print(json.dumps({"seconds": elapsed, "load_seconds": sum(load_seconds), "status": result.status,
                  "loaded": sum(l.rows_loaded for l in loads),
                  "quarantined": sum(l.rows_quarantined for l in loads),
                  "duplicates": sum(l.rows_duplicate for l in loads)}))
"""


def child(argv: list[str]) -> dict[str, object]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{argv[1][:40]!r} failed:\n{done.stderr}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def drop_schemas(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for name in (schema, f"{schema}_penstock", f"{schema}_quarantine"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def check(url: str, schema: str, expected: dict[str, object]) -> None:
    final = expected["final_table"]
    assert isinstance(final, dict)
    with psycopg.connect(url) as conn:
        row = conn.execute(
            f'SELECT count(*), sum(amount * 100)::bigint, sum(quantity) FROM "{schema}".orders'
        ).fetchone()
    assert row is not None
    want = (final["rows"], final["sum_amount_cents"], final["sum_quantity"])
    if tuple(row) != want:
        raise SystemExit(f"penstock's table differs from expected.json: {tuple(row)} != {want}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--second", action="store_true", help="also merge a second delivery")
    parser.add_argument("--shared", type=Path, default=None, help="the shared bench folder")
    args = parser.parse_args()
    # PENSTOCK_SHARED names the shared folder when it is not beside the repository
    shared = args.shared or (
        Path(os.environ["PENSTOCK_SHARED"]) / "bench" if "PENSTOCK_SHARED" in os.environ else None
    )
    bench = shared_bench(shared)
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="penstock-pg-bench-") as tmp:
        root = Path(tmp)
        files = root / "files"
        files.mkdir()
        csv, second = files / "orders.csv", files / "orders-2.csv"
        started = time.perf_counter()
        for path, seed in ((csv, 42), (second, 7)) if args.second else ((csv, 42),):
            subprocess.run(
                [
                    python,
                    str(bench / "gen_orders.py"),
                    str(path),
                    str(args.rows),
                    "--seed",
                    str(seed),
                ],
                check=True,
                stderr=subprocess.DEVNULL,
            )
        expected = json.loads(csv.with_name(csv.name + ".expected.json").read_text())
        print(
            f"gen_orders.py: {args.rows:,} rows ({csv.stat().st_size / 1e6:,.0f} MB) in "
            f"{time.perf_counter() - started:.1f} s; PostgreSQL at "
            f"{args.url.split('@')[-1]}"
        )
        samples: dict[str, list[float]] = {
            "bare": [],
            "penstock": [],
            "load": [],
            "second": [],
            "second_load": [],
        }
        for attempt in range(1, args.repeat + 1):
            bare = child([python, "-c", BARE_CHILD, args.url, str(csv)])
            assert bare["rows"] == args.rows, bare
            samples["bare"].append(float(bare["seconds"]))  # type: ignore[arg-type]
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            project = root / f"project-{attempt}"
            landing = project / "landing" / "orders"
            landing.mkdir(parents=True)
            (project / "penstock.yml").write_text(
                SHARED_PROJECT.replace(
                    "warehouse: duckdb:///warehouse.duckdb",
                    f"warehouse: {args.url}?schema={schema}",
                )
            )
            (landing / "orders.csv").symlink_to(csv)
            try:
                ours = child([python, "-c", PENSTOCK_CHILD, str(project)])
                check(args.url, schema, expected)
                samples["penstock"].append(float(ours["seconds"]))  # type: ignore[arg-type]
                samples["load"].append(float(ours["load_seconds"]))  # type: ignore[arg-type]
                line = (
                    f"  run {attempt}: bare COPY {samples['bare'][-1]:.2f} s, penstock "
                    f"{samples['penstock'][-1]:.2f} s, of which the load step "
                    f"{samples['load'][-1]:.2f} s ({ours['loaded']:,} loaded, "
                    f"{ours['quarantined']:,} quarantined, {ours['duplicates']:,} duplicates); "
                    f"{samples['bare'][-1] / samples['penstock'][-1]:.2f}x"
                )
                if args.second:
                    (landing / "orders-2.csv").symlink_to(second)
                    again = child([python, "-c", PENSTOCK_CHILD, str(project)])
                    samples["second"].append(float(again["seconds"]))  # type: ignore[arg-type]
                    samples["second_load"].append(float(again["load_seconds"]))  # type: ignore[arg-type]
                    line += (
                        f"; second delivery {samples['second'][-1]:.2f} s "
                        f"(load step {samples['second_load'][-1]:.2f} s)"
                    )
                print(line, flush=True)
            finally:
                drop_schemas(args.url, schema)
    bare_s, ours_s = statistics.median(samples["bare"]), statistics.median(samples["penstock"])
    load_s = statistics.median(samples["load"])
    print(
        f"median of {args.repeat}: bare COPY {bare_s:.2f} s ({args.rows / bare_s:,.0f} rows/s), "
        f"penstock run {ours_s:.2f} s ({args.rows / ours_s:,.0f} rows/s), its load step "
        f"{load_s:.2f} s"
    )
    print(
        f"speed vs bare COPY: the whole run (stage, validate, load) {bare_s / ours_s:.2f}x, "
        f"the load step (validated rows to committed transaction) {bare_s / load_s:.2f}x "
        f"(target >= 0.5x)"
    )
    if samples["second"]:
        print(
            f"second delivery ({args.rows:,} rows, about a quarter of the keys stored) merged "
            f"into the table: run {statistics.median(samples['second']):.2f} s, load step "
            f"{statistics.median(samples['second_load']):.2f} s (medians)"
        )


if __name__ == "__main__":
    main()
