"""The incremental case on the shared orders contract: each job's small batch against its own
full load (penstock, the hand-written SQL job, a bare MERGE).

    python bench/incremental_shared.py --rows 2000000 --size 0.01 --repeat 3

Issue 7 asks for a 1% batch merged into the 2M-row table in at most 5% of penstock's full load.
This benchmark puts the same question to the reference jobs of `../shared/bench` (run from
there, never copied), on the same data:
  * expert: `expert_duckdb.py --runs 1` on the N-row file (T_full); then, from a copy of its
    database, `expert_duckdb.py --runs 1 --keep` on the increment (T_inc);
  * bare: `raw_duckdb_load.py` (T_full, no checks); then, from a copy of its database, a bare
    `MERGE INTO orders USING read_csv(increment)` with the table's own types, no checks (T_inc);
  * penstock: the 12-check contract's project (`batch_shared.SHARED_PROJECT`) (T_full); then,
    from a copy of its state, the increment as a second landing file (T_inc).
The increment is p% of N rows drawn from the expert's loaded table: half changed (another
status, amount + 1, updated_at one day later), a tenth identical, the rest new keys, written in
gen_orders.py's formats. Before any figure is printed each result is checked: penstock's ledger
(inserted, updated, unchanged) and the expert's rows changed against what was written.
Every job runs in a fresh child process and reports its own clock (connect -> job -> close):
`import duckdb` before it, as the reference scripts do, and for penstock its engine's imports
too (as `incremental.py` does), so both sides' clocks start at the same point. The jobs
alternate every repeat; the medians and each job's T_inc / T_full are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from batch_shared import (
    ORDERS_FINGERPRINT,
    SHARED_PROJECT,
    check_expert,
    check_penstock,
    run_child,
    shared_bench,
)
from bytecode import allow_bytecode
from incremental import copy_state, write_increment

PENSTOCK_CHILD = (
    """
import json, sys, time
import duckdb
import penstock
import penstock.catalog.loader, penstock.engine.runner, penstock.engine.session  # before the clock
started = time.perf_counter()
result = penstock.run(sys.argv[1])
elapsed = time.perf_counter() - started
conn = duckdb.connect(sys.argv[1] + "/warehouse.duckdb", read_only=True)
counts = conn.execute(
    "SELECT rows_inserted, rows_updated, rows_unchanged, rows_stale, rows_in, rows_loaded, "
    "rows_quarantined, rows_duplicate FROM penstock.loads WHERE run_id = ?", [result.run_id]
).fetchall()
"""
    + ORDERS_FINGERPRINT
    + """conn.close()
(load,) = counts if len(counts) == 1 else [[None] * 8]
print(json.dumps({"seconds": elapsed, "status": result.status, "loads": len(counts),
                  "counts": load[:4], "rows_in": load[4], "loaded": load[5],
                  "quarantined": load[6], "duplicates": load[7], "reasons": None,
                  "table": table, "rows": rows, "sum_amount_cents": int(cents),
                  "sum_quantity": int(quantity)}))
"""
)

# The bare incremental job: what a MERGE of the increment costs with no check at all. The
# increment is read with the stored table's own column types (the sniffer could type a column
# of the table, which holds gen_orders.py's planted defects, differently).
BARE_INC_CHILD = """
import json, sys, time
import duckdb
started = time.perf_counter()
conn = duckdb.connect(sys.argv[1])
columns = ", ".join(
    f"'{name}': '{kind}'" for name, kind, *_ in conn.execute("DESCRIBE orders").fetchall()
)
(changed,) = conn.execute(
    "MERGE INTO orders AS t "
    f"USING read_csv(?, header = true, auto_detect = false, columns = {{{columns}}}) AS s "
    "ON t.order_id = s.order_id "
    "WHEN MATCHED AND s.updated_at > t.updated_at THEN UPDATE SET * "
    "WHEN NOT MATCHED THEN INSERT *",
    [sys.argv[2]],
).fetchone()
conn.close()
print(json.dumps({"seconds": time.perf_counter() - started, "changed": changed}))
"""

JOBS = ("penstock", "expert", "bare")
LABELS = {
    "penstock": "penstock run (12-check contract, merge)",
    "expert": "expert_duckdb.py (hand-written SQL)",
    "bare": "bare: CREATE TABLE AS / MERGE INTO, no checks",
}


def copy_db(src: Path, dst: Path) -> None:
    """A copy of a DuckDB file written to disk before the next job (so that no job's
    checkpoint pays for writing the copy)."""
    shutil.copy2(src, dst)
    os.sync()


def main() -> None:
    allow_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--size", type=float, default=0.01, help="the increment, a fraction")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--shared",
        type=Path,
        help="the shared reference jobs' folder (default: $PENSTOCK_SHARED/bench, else "
        "../shared/bench from the repository's root)",
    )
    args = parser.parse_args()
    shared = args.shared
    if shared is None and os.environ.get("PENSTOCK_SHARED"):  # the folder is elsewhere
        shared = Path(os.environ["PENSTOCK_SHARED"]) / "bench"
    bench = shared_bench(shared)
    python = sys.executable
    inc_rows = round(args.rows * args.size)
    generate, expert = (
        [python, str(bench / "gen_orders.py")],
        [python, str(bench / "expert_duckdb.py")],
    )

    with tempfile.TemporaryDirectory(prefix="penstock-incr-shared-") as tmp:
        work = Path(tmp)
        full_csv = work / "orders_full.csv"
        started = time.perf_counter()
        subprocess.run(
            [*generate, str(full_csv), str(args.rows), "--seed", str(args.seed)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        expected = json.loads(full_csv.with_name(full_csv.name + ".expected.json").read_text())
        print(
            f"gen_orders.py: {args.rows:,} rows ({full_csv.stat().st_size / 1e6:,.0f} MB) in "
            f"{time.perf_counter() - started:.1f} s; increment {inc_rows:,} rows ({args.size:.1%})"
        )
        inc_csv = work / "orders_inc.csv"
        want: dict[str, int] = {}
        base, inc = work / "penstock-full", work / "penstock-inc"
        (base / "landing" / "orders").mkdir(parents=True)
        (base / "landing" / "orders" / "orders_0_full.csv").symlink_to(full_csv)
        (base / "penstock.yml").write_text(SHARED_PROJECT)
        expert_db, expert_inc_db = work / "expert.duckdb", work / "expert-inc.duckdb"
        bare_db, bare_inc_db = work / "bare.duckdb", work / "bare-inc.duckdb"
        full_s: dict[str, list[float]] = {job: [] for job in JOBS}
        inc_s: dict[str, list[float]] = {job: [] for job in JOBS}

        for attempt in range(1, args.repeat + 1):
            # expert: the full job, then the increment on a copy of its database
            for path in (expert_db, expert_db.with_name(expert_db.name + ".wal")):
                path.unlink(missing_ok=True)
            full, _, _ = run_child([*expert, str(full_csv), "--db", str(expert_db), "--runs", "1"])
            check_expert(full, expected)
            if not want:
                want = write_increment(
                    expert_db,
                    inc_csv,
                    inc_rows,
                    args.seed,
                    timestamp_format="%Y-%m-%dT%H:%M:%S",  # as gen_orders.py writes them
                    key_offset=1_000_000_000,
                )
            copy_db(expert_db, expert_inc_db)
            ran, _, _ = run_child(
                [*expert, str(inc_csv), "--db", str(expert_inc_db), "--runs", "1", "--keep"]
            )
            got = ran["merge_rows_changed_per_run"]
            assert got == [want["inserted"] + want["updated"]], ("expert", got, want)
            full_s["expert"].append(float(full["seconds"]))  # type: ignore[arg-type]
            inc_s["expert"].append(float(ran["seconds"]))  # type: ignore[arg-type]

            # bare: CREATE TABLE AS read_csv, then a MERGE of the increment, no checks
            full, _, _ = run_child(
                [python, str(bench / "raw_duckdb_load.py"), str(full_csv), "--db", str(bare_db)]
            )
            copy_db(bare_db, bare_inc_db)
            ran, _, _ = run_child([python, "-c", BARE_INC_CHILD, str(bare_inc_db), str(inc_csv)])
            # the bare table keeps gen_orders.py's repeated keys: a key may match two rows
            assert int(ran["changed"]) >= want["inserted"] + want["updated"], ("bare", ran, want)  # type: ignore[call-overload]
            full_s["bare"].append(float(full["seconds"]))  # type: ignore[arg-type]
            inc_s["bare"].append(float(ran["seconds"]))  # type: ignore[arg-type]

            # penstock: the full load, then the increment from a copy of that state
            for name in ("lake", ".penstock", "warehouse.duckdb", "warehouse.duckdb.wal"):
                target = base / name
                if target.is_dir():
                    shutil.rmtree(target)
                target.unlink(missing_ok=True)
            full, _, _ = run_child([python, "-c", PENSTOCK_CHILD, str(base)])
            check_penstock(full, expected)
            copy_state(base, inc)
            (inc / "landing" / "orders" / "orders_1_inc.csv").symlink_to(inc_csv)
            ran, _, _ = run_child([python, "-c", PENSTOCK_CHILD, str(inc)])
            counts = [want["inserted"], want["updated"], want["unchanged"], 0]
            assert ran["status"] == "success" and ran["counts"] == counts, ("penstock", ran, want)
            shutil.rmtree(inc)
            full_s["penstock"].append(float(full["seconds"]))  # type: ignore[arg-type]
            inc_s["penstock"].append(float(ran["seconds"]))  # type: ignore[arg-type]

            print(
                f"  run {attempt}: "
                + "; ".join(
                    f"{job} full {full_s[job][-1]:.2f} s, {args.size:.1%} {inc_s[job][-1]:.3f} s"
                    for job in JOBS
                ),
                flush=True,
            )

    print(
        f"\nmedians of {args.repeat} ({args.rows:,}-row full load; increment {inc_rows:,} rows: "
        f"{want['updated']:,} changed, {want['unchanged']:,} identical, "
        f"{want['inserted']:,} new; every result checked)"
    )
    print(f"{'job':<48}{'T_full':>8}{'T_inc':>8}{'T_inc/T_full':>14}")
    for job in JOBS:
        t_full, t_inc = statistics.median(full_s[job]), statistics.median(inc_s[job])
        print(f"{LABELS[job]:<48}{t_full:>7.2f}s{t_inc:>7.3f}s{t_inc / t_full:>14.1%}")
    ours = statistics.median(inc_s["penstock"])
    for job in ("expert", "bare"):
        print(
            f"penstock's incremental run vs {job}'s: "
            f"{statistics.median(inc_s[job]) / ours:.2f}x (speed)"
        )


if __name__ == "__main__":
    main()
