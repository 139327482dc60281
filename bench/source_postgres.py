"""Benchmark the PostgreSQL source: penstock extracting a 2,000,000-row table to the stage
zone, against a bare `COPY (SELECT ...) TO STDOUT` read of the same table.

    python bench/source_postgres.py --rows 2000000 [--url postgresql://postgres@127.0.0.1/postgres]

Creates a throwaway database, loads an orders table (bigint key, integer, numeric(12,2), two
text columns, two timestamptz) with generate_series, then times, each in a fresh child process
(peak RSS is the child's own):
  * copy_text: psycopg reading `COPY (SELECT * FROM orders) TO STDOUT` to the end, bytes
    discarded: the bare read the target is set against;
  * copy_binary: the same in `FORMAT binary`;
  * adbc_arrow / connectorx_arrow: each driver's Arrow record batches read to the end, nothing
    written: the candidates for penstock's read path;
  * penstock: `DatabaseSourceReader.extract`, the table read and staged as Parquet with its
    manifest, as `penstock run` stages it (and `partitions: 2` for the parallel read).
The sides alternate every repeat; medians are printed with rows/s and the ratio to copy_text.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import psycopg

SIDES = ("copy_text", "copy_binary", "adbc_arrow", "connectorx_arrow", "penstock", "penstock_p2")
SELECT = "SELECT * FROM orders"
CHILD = """
import json, sys, time
SELECT = "{SELECT}"
side, url, work = sys.argv[1], sys.argv[2], sys.argv[3]
if side.startswith("copy"):
    import psycopg
    conn = psycopg.connect(url)
    fmt = " (FORMAT binary)" if side == "copy_binary" else ""
    start = time.perf_counter()
    size = 0
    with conn.cursor().copy("COPY (" + SELECT + ") TO STDOUT" + fmt) as copy:
        for chunk in copy:
            size += len(chunk)
    took = time.perf_counter() - start
elif side == "adbc_arrow":
    import adbc_driver_postgresql.dbapi as dbapi
    start = time.perf_counter()
    conn = dbapi.connect(url)
    cur = conn.cursor()
    cur.execute(SELECT)
    size = sum(b.nbytes for b in cur.fetch_record_batch())
    took = time.perf_counter() - start
elif side == "connectorx_arrow":
    import connectorx
    start = time.perf_counter()
    reader = connectorx.read_sql(url, SELECT, return_type="arrow_stream", batch_size=100000)
    size = sum(b.nbytes for b in reader)
    took = time.perf_counter() - start
else:
    from pathlib import Path
    from penstock.catalog import load_project
    from penstock.lake import Lake
    from penstock.sources.database import DatabaseSourceReader
    project = load_project(Path(work) / side)
    obj = project.objects["orders"]
    reader = DatabaseSourceReader(project, "bench_db", project.sources["bench_db"])
    lake = Lake(project.lake_path)
    start = time.perf_counter()
    extracted = reader.extract(obj, lake, [])
    took = time.perf_counter() - start
    size = extracted.batch.manifest.size_bytes
    assert extracted.batch.manifest.rows == int(sys.argv[4]), extracted.batch.manifest.rows
    import shutil
    shutil.rmtree(project.lake_path)
print(json.dumps({"seconds": took, "bytes": size}))
""".replace("{SELECT}", SELECT)

PROJECT = """name: bench
sources:
  bench_db: {{kind: postgres, url: "{url}"}}
objects:
  orders:
    source: bench_db
    table: orders
    key: [id]
    {partitions}
    columns:
      id: {{type: bigint}}
      customer_id: {{type: integer, required: true}}
      amount: {{type: "decimal(12,2)", required: true}}
      status: {{type: text}}
      note: {{type: text}}
      created_at: {{type: timestamptz, required: true}}
      updated_at: {{type: timestamptz, required: true}}
"""


def load_table(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id integer NOT NULL, "
            "amount numeric(12,2) NOT NULL, status text, note text, "
            "created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)"
        )
        conn.execute(
            "INSERT INTO orders SELECT i, i %% 50000, (i %% 100000) / 100.0, "
            "(ARRAY['placed','shipped','delivered','cancelled'])[1 + i %% 4], "
            "'order note ' || md5(i::text), "
            "timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second', "
            "timestamptz '2024-01-01 00:00:00+00' + i * interval '2 second' "
            "FROM generate_series(1, %s) i",
            (rows,),
        )
        conn.execute("VACUUM ANALYZE orders")


def run_child(side: str, url: str, work: Path, rows: int) -> dict[str, Any]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, side, url, str(work), str(rows)],
        stdout=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read() if proc.stdout else ""
    if status != 0:
        raise SystemExit(f"{side} failed (status {status})")
    result: dict[str, Any] = json.loads(out)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    name = f"penstock_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = args.url.rsplit("/", 1)[0] + f"/{name}"
    try:
        load_table(url, args.rows)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            for side, partitions in (("penstock", ""), ("penstock_p2", "partitions: 2")):
                (work / side).mkdir()
                (work / side / "penstock.yml").write_text(
                    PROJECT.format(url=url, partitions=partitions)
                )
            results: dict[str, list[dict[str, Any]]] = {s: [] for s in SIDES}
            for _ in range(args.repeat):
                for side in SIDES:
                    results[side].append(run_child(side, url, work, args.rows))
        base = statistics.median(r["seconds"] for r in results["copy_text"])
        print(f"{args.rows:,} rows, median of {args.repeat}")
        print(f"{'side':<18}{'seconds':>9}{'rows/s':>12}{'vs COPY':>9}{'peak RSS':>10}")
        for side in SIDES:
            took = statistics.median(r["seconds"] for r in results[side])
            rss = max(r["peak_rss_mb"] for r in results[side])
            print(
                f"{side:<18}{took:>9.2f}{args.rows / took:>12,.0f}{base / took:>8.0%}{rss:>8.0f} MB"
            )
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
