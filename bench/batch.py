"""Benchmark one orders batch through penstock against a bare DuckDB load of the same file.

    python bench/batch.py --rows 2000000

Generates an N-row orders CSV with the demo's defect mix, then, each in its own child process
(so peak RSS is measured per side):
  * penstock: `penstock.run` on a one-object project (stage → validate → quarantine → merge);
  * bare DuckDB: CREATE TABLE … AS SELECT * FROM read_csv(…), no checks at all.
The two sides run alternately `--repeat` times (this machine is a VM with noisy neighbours);
it prints every sample, then the medians: rows/s of each, their ratio, and peak RSS.

    python bench/batch.py --contract shared --rows 2000000 --repeat 3 [--profile]

The issue-7 anchor instead (bench/batch_shared.py): the shared reference jobs in
../shared/bench beside the repo (gen_orders.py's file, contract.md's 12 checks), penstock against
the hand-written DuckDB SQL job (expert_duckdb.py) and the bare load (raw_duckdb_load.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytecode import allow_bytecode
from penstock.demo import FileExpectation, write_orders_csv
from penstock.demo.templates import DEMO_PROJECT

PENSTOCK_CHILD = """
import json, sys, time
import penstock
started = time.perf_counter()
result = penstock.run(sys.argv[1])
elapsed = time.perf_counter() - started
(load,) = result.loads()
import duckdb
conn = duckdb.connect(sys.argv[1] + "/warehouse.duckdb", read_only=True)
inserted, updated, stale = conn.execute(
    "SELECT rows_inserted, rows_updated, rows_stale FROM penstock.loads WHERE batch_id = ?",
    [load.batch_id],
).fetchone()
conn.close()
print(json.dumps({"seconds": elapsed, "status": result.status, "rows_in": load.rows_in,
                  "loaded": load.rows_loaded, "quarantined": load.rows_quarantined,
                  "duplicates": load.rows_duplicate, "inserted": inserted,
                  "updated": updated, "stale": stale}))
"""

BARE_CHILD = """
import json, sys, time
import duckdb
conn = duckdb.connect(sys.argv[1])
started = time.perf_counter()
conn.execute("CREATE TABLE orders AS SELECT * FROM read_csv(?)", [sys.argv[2]])
elapsed = time.perf_counter() - started
rows = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
conn.close()
print(json.dumps({"seconds": elapsed, "rows": rows}))
"""


# Peak RSS is the child's own VmHWM (the high-water mark of its address space), printed at exit.
# Not os.wait4's ru_maxrss: on Linux a child started by subprocess (vfork + exec) carries the
# parent's peak RSS into its ru_maxrss, so every child would read at least this script's own
# peak (the data generation's: 1.5 GB for a 2 GB JSONL file, where penstock and bare DuckDB
# both "peaked" at exactly that): a child that only reads /proc/self/status, started from a
# parent that had touched 600 MB, reported VmHWM 8.7 MB and ru_maxrss 625 MB.
PEAK = """
import atexit as _atexit
def _peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                print("peak", int(line.split()[1]) * 1024, flush=True)
_atexit.register(_peak)
"""


def run_child(code: str, *args: str) -> tuple[dict[str, object], int]:
    """Run `code` in a fresh interpreter; return its JSON line and its peak RSS in bytes."""
    proc = subprocess.run([sys.executable, "-c", PEAK + code, *args], capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}):\n{proc.stderr.decode()}")
    *_, result, peak = proc.stdout.decode().strip().splitlines()
    return json.loads(result), int(peak.split()[1])


def orders_only_project(root: Path) -> None:
    """The demo's orders object (same contract, merge by order_id) on its own."""
    yml = DEMO_PROJECT.replace("include: [objects/*.yml]\n", "")
    # the bench writes each file whole before running: no settle time to wait out
    yml = yml.replace("path: ./landing,", "path: ./landing, settle: 0s,")
    (root / "penstock.yml").write_text(yml)


def main() -> None:
    allow_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, help="default 7 (demo), 42 (shared)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of each side")
    parser.add_argument(
        "--contract",
        choices=("demo", "shared"),
        default="demo",
        help="demo: the demo's orders (default); shared: ../shared/bench's 12-check orders job "
        "against its hand-written DuckDB SQL (seed 42 unless --seed is given)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="--contract shared: cProfile one penstock run"
    )
    parser.add_argument(
        "--shared",
        type=Path,
        help="--contract shared: the reference jobs' folder (default: ../shared/bench beside "
        "the repository; give it when the repository is a worktree elsewhere)",
    )
    args = parser.parse_args()
    if args.contract == "shared":
        from batch_shared import run_shared

        seed = 42 if args.seed is None else args.seed
        run_shared(args.rows, seed, args.repeat, args.profile, args.shared)
        return
    if args.seed is None:
        args.seed = 7

    with tempfile.TemporaryDirectory(prefix="penstock-bench-") as tmp:
        root = Path(tmp)
        csv = root / "landing" / "orders" / "orders.csv"
        csv.parent.mkdir(parents=True)
        started = time.perf_counter()
        expected = write_orders_csv(csv, args.rows, seed=args.seed)
        generated = time.perf_counter() - started
        size_mb = csv.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({size_mb:,.0f} MB) in {generated:.1f} s")
        orders_only_project(root)

        bare_runs: list[tuple[float, int]] = []
        our_runs: list[tuple[float, int]] = []
        ours: dict[str, object] = {}
        for attempt in range(1, args.repeat + 1):
            (root / "bare.duckdb").unlink(missing_ok=True)
            bare, bare_rss = run_child(BARE_CHILD, str(root / "bare.duckdb"), str(csv))
            for name in ("lake", ".penstock", "warehouse.duckdb"):
                target = root / name
                if target.is_dir():
                    shutil.rmtree(target)
                target.unlink(missing_ok=True)
            ours, our_rss = run_child(PENSTOCK_CHILD, str(root))
            check(ours, expected)
            bare_runs.append((float(bare["seconds"]), bare_rss))  # type: ignore[arg-type]
            our_runs.append((float(ours["seconds"]), our_rss))  # type: ignore[arg-type]
            print(
                f"  run {attempt}: bare {bare_runs[-1][0]:.2f} s, penstock {our_runs[-1][0]:.2f} s"
                f" ({bare_runs[-1][0] / our_runs[-1][0]:.1%})"
            )

        # steady state: a second batch with the same ids merges into the populated table
        second = csv.with_name("orders_2.csv")
        second_expected = write_orders_csv(second, args.rows, seed=args.seed + 1)
        merged, merged_rss = run_child(PENSTOCK_CHILD, str(root))
        check(merged, second_expected)

    bare_s = statistics.median(t for t, _ in bare_runs)
    our_s = statistics.median(t for t, _ in our_runs)
    bare_rss = max(r for _, r in bare_runs)
    our_rss = max(r for _, r in our_runs)
    bare_rate, our_rate = args.rows / bare_s, args.rows / our_s
    print(f"median of {args.repeat}{'':<22}{'seconds':>9}{'rows/s':>14}{'peak RSS':>12}")
    print(
        f"{'bare DuckDB CREATE TABLE AS csv':<34}{bare_s:>9.2f}"
        f"{bare_rate:>14,.0f}{bare_rss / 2**20:>9,.0f} MB"
    )
    print(
        f"{'penstock validate+quarantine+merge':<34}{our_s:>9.2f}"
        f"{our_rate:>14,.0f}{our_rss / 2**20:>9,.0f} MB"
    )
    print(
        f"ratio penstock/bare: {our_rate / bare_rate:.1%} of the bare load's speed "
        f"(rows in {ours['rows_in']:,}: loaded {ours['loaded']:,}, "
        f"quarantined {ours['quarantined']:,}, duplicates {ours['duplicates']:,})"
    )
    merge_s = float(merged["seconds"])  # type: ignore[arg-type]
    print(
        f"steady state: a second {args.rows:,}-row batch merged into the {ours['loaded']:,}-row "
        f"table in {merge_s:.2f} s ({args.rows / merge_s:,.0f} rows/s, peak RSS "
        f"{merged_rss / 2**20:,.0f} MB): inserted {merged['inserted']:,}, "
        f"updated {merged['updated']:,}, older than stored {merged['stale']:,}"
    )


def check(ours: dict[str, object], expected: FileExpectation) -> None:
    """penstock must have done the whole job right, or its time means nothing."""
    assert ours["status"] == "success", ours
    assert ours["rows_in"] == expected.rows_in, ours
    assert ours["quarantined"] == len(expected.quarantined), ours
    assert ours["duplicates"] == expected.duplicates, ours
    assert ours["loaded"] == expected.loaded, ours


if __name__ == "__main__":
    main()
