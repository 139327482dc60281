"""Benchmark incremental cost: a small batch merged into a large table, against the full load.

    python bench/incremental.py --rows 2000000 --repeat 3

For each load mode (merge, and SCD2 on the same orders object: key order_id, order_by
updated_at) and each repeat, in fresh child processes:
  * T_full: `penstock.run` on a project whose landing holds the N-row orders CSV;
  * T_inc: from a copy of that state, `penstock.run` after a second file arrives with p% of N
    rows (half changed existing keys, a tenth identical rows (`--identical`), the rest new
    keys), for each p;
  * T_idle: from a copy of that state, `penstock.run` with nothing new: a run's fixed cost
    (project, session, discovery, events, close), so T_inc - T_idle is what the batch costs.
The child imports penstock's engine before the clock starts (on both sides alike).
The sides alternate (full, then each size) every repeat; it prints the medians, T_inc / T_full
per mode and size, and where the incremental runs' time went (opening the session, discovery,
staging, validation, the load transaction, recording events, closing), measured by timers
wrapped around those functions in the child process.
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

import duckdb

from bytecode import allow_bytecode
from penstock.demo import write_orders_csv
from penstock.demo.templates import DEMO_PROJECT

CHILD = """
import json, sys, time
from collections import defaultdict
spent = defaultdict(float)

def timed(owner, name, label):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - started
    setattr(owner, name, wrapper)

import penstock
from penstock.engine import fused, loading, runner, session
from penstock.lake import Lake
from penstock.observe import MetadataStore
from penstock.sources import FilesSourceReader
from penstock.warehouse import duckdb as wh
timed(penstock, "load_project", "load project")
timed(session.Session, "__init__", "open session (warehouse, reconcile, catalog)")
timed(Lake, "batches", "read manifests")
timed(FilesSourceReader, "discover", "discover files")
timed(runner.Runner, "_stage_items", "stage (copy, hash, read: new files read once)")
timed(fused, "read_chunk", "  of which the shared read (validation's)")
timed(loading, "finish_chunk", "finish validation (counts, quarantine)")
timed(loading, "validate_chunk", "validate (staged batches read again)")
timed(wh.DuckDBWarehouse, "write_quarantine_file", "quarantine file")
timed(wh.DuckDBWarehouse, "loaded_batches", "loaded batches")
timed(wh.DuckDBWarehouse, "load_chunk", "load transaction")
timed(wh, "apply_batches", "  of which the mode SQL")
timed(MetadataStore, "handle_many", "record events (store thread)")
timed(session.Session, "close", "close session (sinks flush, retention, checkpoint)")
started = time.perf_counter()
result = penstock.run(sys.argv[1])
elapsed = time.perf_counter() - started
loads = [o for o in result.outcomes if o.step == "load"]
import duckdb
conn = duckdb.connect(sys.argv[1] + "/warehouse.duckdb", read_only=True)
counts = conn.execute(
    "SELECT rows_inserted, rows_updated, rows_unchanged, rows_stale FROM penstock.loads "
    "WHERE run_id = ?", [result.run_id]).fetchall()
conn.close()
print(json.dumps({"seconds": elapsed, "status": result.status, "loads": len(loads),
                  "counts": [list(c) for c in counts], "spent": spent}))
"""

OBJECT_LINES = {
    "merge": "    load: merge\n",
    "scd2": "    load: scd2\n",
}


def run_child(root: Path) -> tuple[dict[str, object], int]:
    """One `penstock.run` in a fresh interpreter: its JSON line and peak RSS in bytes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}):\n{err.decode()}")
    return json.loads(out.decode().strip().splitlines()[-1]), 0


def write_project(root: Path, mode: str) -> None:
    yml = DEMO_PROJECT.replace("include: [objects/*.yml]\n", "")
    yml = yml.replace("path: ./landing,", "path: ./landing, settle: 0s,")
    yml = yml.replace("    load: merge\n", OBJECT_LINES[mode])
    (root / "penstock.yml").write_text(yml)


def fresh_project(root: Path, mode: str, full_csv: Path) -> None:
    """A project whose landing holds the full file, as a symbolic link: a hard link would
    change the file's ctime, and a landing file whose ctime changed is hashed again."""
    if root.exists():
        shutil.rmtree(root)
    (root / "landing" / "orders").mkdir(parents=True)
    (root / "landing" / "orders" / "orders_0_full.csv").symlink_to(full_csv)
    write_project(root, mode)


def copy_state(src: Path, dst: Path) -> None:
    """A copy of a loaded project: the lake's files are never modified in place (hard links);
    the warehouse and the metadata store are copied, and written to disk before the run (the
    run's checkpoint would otherwise pay for writing the copy)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src / "lake", dst / "lake", copy_function=os.link)
    shutil.copytree(src / "landing", dst / "landing", symlinks=True)
    shutil.copytree(src / ".penstock", dst / ".penstock")
    shutil.copy2(src / "warehouse.duckdb", dst / "warehouse.duckdb")
    shutil.copy2(src / "penstock.yml", dst / "penstock.yml")
    os.sync()


def write_increment(
    warehouse: Path,
    target: Path,
    rows: int,
    seed: int,
    identical_share: float = 0.1,
    *,
    timestamp_format: str = "%Y-%m-%d %H:%M:%S",
    key_offset: int = 100_000_000,
) -> dict[str, int]:
    """A CSV of `rows` rows drawn from the warehouse's `orders` table (its own columns, not
    penstock's `_` ones; current versions only, under SCD2): half changed existing keys (new
    status, amount + 1, updated_at one day later), `identical_share` (a tenth) identical rows,
    the rest new keys (`order_id + key_offset`). Keys are drawn uniformly over the table (the
    worst case for zone maps); timestamps are written with `timestamp_format`."""
    changed = rows // 2
    identical = round(rows * identical_share)
    new = rows - changed - identical
    conn = duckdb.connect(str(warehouse), read_only=True)
    names = _columns(conn)
    columns = [c for c in names if not c.startswith("_")]
    cols = ", ".join(columns)
    changed_cols = ", ".join(
        {
            "status": "CASE status WHEN 'placed' THEN 'shipped' WHEN 'shipped' THEN 'delivered' "
            "ELSE 'placed' END AS status",
            "amount": "amount + 1 AS amount",
            "updated_at": "updated_at + INTERVAL 1 DAY AS updated_at",
        }.get(c, c)
        for c in columns
    )
    new_cols = ", ".join(
        f"order_id + {key_offset} AS order_id" if c == "order_id" else c for c in columns
    )
    current = " AND _is_current" if "_is_current" in names else ""
    conn.execute(
        f"CREATE TEMP TABLE picked AS SELECT {cols}, row_number() OVER () AS n FROM "
        f"(SELECT * FROM orders WHERE updated_at IS NOT NULL{current} "
        f"ORDER BY hash(order_id + {seed}) LIMIT {changed + identical + new})"
    )
    conn.execute(
        f"COPY (SELECT {changed_cols} FROM picked WHERE n <= {changed} "
        f"UNION ALL SELECT {cols} FROM picked WHERE n > {changed} AND n <= {changed + identical} "
        f"UNION ALL SELECT {new_cols} FROM picked WHERE n > {changed + identical}) "
        f"TO '{target}' (HEADER, TIMESTAMPFORMAT '{timestamp_format}')"
    )
    conn.close()
    return {"inserted": new, "updated": changed, "unchanged": identical}


def _columns(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The `orders` table's columns, in order."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' "
            "ORDER BY ordinal_position"
        ).fetchall()
    ]


def main() -> None:
    allow_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="0.001,0.01,0.1", help="fractions of --rows")
    parser.add_argument("--modes", default="merge,scd2")
    parser.add_argument(
        "--identical",
        type=float,
        default=0.1,
        help="share of the increment's rows identical to the stored ones (default 0.1); 0 is a "
        "feed of changes only, each with a newer updated_at",
    )
    args = parser.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    modes = args.modes.split(",")

    with tempfile.TemporaryDirectory(prefix="penstock-incr-") as tmp:
        work = Path(tmp)
        full_csv = work / "orders_full.csv"
        started = time.perf_counter()
        write_orders_csv(full_csv, args.rows, seed=args.seed)
        print(
            f"generated {args.rows:,} rows ({full_csv.stat().st_size / 1e6:,.0f} MB) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        full_s: dict[str, list[float]] = {m: [] for m in modes}
        idle_s: dict[str, list[float]] = {m: [] for m in modes}
        inc_s: dict[tuple[str, float], list[float]] = {(m, p): [] for m in modes for p in sizes}
        spent: dict[tuple[str, float], dict[str, list[float]]] = {k: {} for k in inc_s}
        increments: dict[tuple[str, float], tuple[Path, dict[str, int]]] = {}
        for attempt in range(1, args.repeat + 1):
            for mode in modes:
                base = work / f"{mode}-full"
                fresh_project(base, mode, full_csv)
                full, _ = run_child(base)
                assert full["status"] == "success", full
                full_s[mode].append(float(full["seconds"]))  # type: ignore[arg-type]
                line = f"  run {attempt} {mode}: full {full_s[mode][-1]:.2f} s"
                idle = work / f"{mode}-idle"
                copy_state(base, idle)
                ran, _ = run_child(idle)
                assert ran["status"] == "success" and ran["loads"] == 0, ran
                idle_s[mode].append(float(ran["seconds"]))  # type: ignore[arg-type]
                line += f", nothing new {idle_s[mode][-1]:.2f} s"
                shutil.rmtree(idle)
                for p in sizes:
                    if (mode, p) not in increments:
                        csv = work / f"{mode}-inc-{p}.csv"
                        expect = write_increment(
                            base / "warehouse.duckdb",
                            csv,
                            round(args.rows * p),
                            args.seed,
                            args.identical,
                        )
                        increments[mode, p] = (csv, expect)
                    csv, expect = increments[mode, p]
                    inc = work / f"{mode}-inc"
                    copy_state(base, inc)
                    (inc / "landing" / "orders" / "orders_1_inc.csv").symlink_to(csv)
                    ran, _ = run_child(inc)
                    assert ran["status"] == "success", ran
                    got = ran["counts"]
                    want = [[expect["inserted"], expect["updated"], expect["unchanged"], 0]]
                    assert got == want, (mode, p, got, want)
                    inc_s[mode, p].append(float(ran["seconds"]))  # type: ignore[arg-type]
                    for label, seconds in ran["spent"].items():  # type: ignore[union-attr]
                        spent[mode, p].setdefault(label, []).append(seconds)
                    line += f", {p:.1%} {inc_s[mode, p][-1]:.2f} s"
                    shutil.rmtree(inc)
                print(line, flush=True)

    print(f"\nmedians of {args.repeat} ({args.rows:,}-row full load, fresh processes)")
    print(
        f"{'mode':<6}{'size':>7}{'rows':>10}{'T_full':>9}{'T_idle':>9}{'T_inc':>9}"
        f"{'T_inc/T_full':>14}{'(T_inc-T_idle)/T_full':>23}"
    )
    for mode in modes:
        t_full = statistics.median(full_s[mode])
        t_idle = statistics.median(idle_s[mode])
        for p in sizes:
            t_inc = statistics.median(inc_s[mode, p])
            print(
                f"{mode:<6}{p:>7.1%}{round(args.rows * p):>10,}{t_full:>8.2f}s{t_idle:>8.2f}s"
                f"{t_inc:>8.2f}s{t_inc / t_full:>14.1%}{(t_inc - t_idle) / t_full:>23.1%}"
            )
    print("\nwhere an incremental run's time goes (medians, seconds)")
    for key, labels in spent.items():
        mode, p = key
        total = statistics.median(inc_s[key])
        print(f"{mode} {p:.1%}: total {total:.3f}")
        for label, v in labels.items():
            print(f"    {label:<52}{statistics.median(v):>7.3f}")


if __name__ == "__main__":
    main()
