"""Benchmark how penstock's cost grows with the work, each point against its bare DuckDB reference.

    python bench/scale.py --axis all --png bench/scale.png
    python bench/scale.py --axis rows --rows 1e6,2e6,5e6,10e6,20e6 --repeat 1
    python bench/scale.py --axis files --files 1,10,100,1000,10000 --total-rows 1000000
    python bench/scale.py --axis incremental --base-rows 1000000 --sizes 0.001,0.01,0.1

Three axes, each point run in fresh child processes (peak RSS is the child's own VmHWM, see
`batch.PEAK`), the two sides alternating `--repeat` times, medians reported:
  * rows: one orders CSV of N rows (the demo's defect mix); penstock runs the demo's orders
    object on it (bench/batch.py's child, its result checked against the file's expectation);
    the reference is bare DuckDB `CREATE TABLE AS SELECT * FROM read_csv(file)`, no checks.
  * files: `--total-rows` rows split over N files (distinct order ids per file); penstock stages,
    validates and merges every file (one batch each, every batch's counts checked); the
    reference is one bare `CREATE TABLE AS SELECT * FROM read_csv('orders/*.csv')`.
  * incremental: a `--base-rows` table loaded in full (the reference, T_full), then from a copy
    of that state a second file of p% of those rows merged in (bench/incremental.py's files and
    child; the ledger's inserted/updated/unchanged counts checked against the file's make-up).
It prints a table per axis (work, reference s, penstock s, penstock/reference time, peak RSS of
each) and, with --png, writes a chart: per axis, time and peak RSS against the work.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from batch import PENSTOCK_CHILD, check, orders_only_project, run_child
from bytecode import allow_bytecode
from incremental import CHILD as INCREMENTAL_CHILD
from incremental import copy_state, fresh_project, write_increment
from large import reset
from penstock.demo import FileExpectation, write_orders_csv
from penstock.demo.orders import MIN_ROWS

# batch.py's bare child with ignore_errors: without it DuckDB's sniffer gives up on some of the
# demo's files (seed 7 at 1M rows: "not possible to automatically detect the CSV parsing
# dialect"), as the malformed lines (0.15% of rows) land in its sample; they are skipped.
# The files axis passes the glob as the path: one statement reads every file.
BARE_CHILD = """
import json, sys, time
import duckdb
conn = duckdb.connect(sys.argv[1])
started = time.perf_counter()
sql = "CREATE TABLE orders AS SELECT * FROM read_csv(?, ignore_errors = true)"
conn.execute(sql, [sys.argv[2]])
elapsed = time.perf_counter() - started
rows = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
conn.close()
print(json.dumps({"seconds": elapsed, "rows": rows}))
"""

FILES_CHILD = """
import json, sys, time
import penstock
started = time.perf_counter()
result = penstock.run(sys.argv[1])
elapsed = time.perf_counter() - started
loads = result.loads()
print(json.dumps({"seconds": elapsed, "status": result.status, "loads": len(loads),
                  "rows_in": sum(l.rows_in for l in loads),
                  "loaded": sum(l.rows_loaded for l in loads),
                  "quarantined": sum(l.rows_quarantined for l in loads),
                  "duplicates": sum(l.rows_duplicate for l in loads)}))
"""

AXES = ("rows", "files", "incremental")
WORK_LABEL = {
    "rows": "rows in one CSV file",
    "files": "number of files (same total rows)",
    "incremental": "rows in the incremental batch",
}
REFERENCE_LABEL = {
    "rows": "bare DuckDB CREATE TABLE AS read_csv",
    "files": "bare DuckDB one glob read_csv",
    "incremental": "penstock full load (reference)",
}

OURS_LABEL = {
    "rows": "penstock run (stage, validate, quarantine, merge)",
    "files": "penstock run (a batch per file, loaded in micro-batches)",
    "incremental": "penstock incremental run (merge)",
}


@dataclass
class Point:
    """One point of an axis: its samples, reference and penstock side by side."""

    work: int
    label: str
    ref_s: list[float] = field(default_factory=list)
    ours_s: list[float] = field(default_factory=list)
    ref_rss: list[int] = field(default_factory=list)
    ours_rss: list[int] = field(default_factory=list)

    def add(
        self,
        ref: dict[str, object],
        ref_rss: int,
        ours: dict[str, object],
        rss: int,
        note: str = "",
    ) -> None:
        self.ref_s.append(float(ref["seconds"]))  # type: ignore[arg-type]
        self.ours_s.append(float(ours["seconds"]))  # type: ignore[arg-type]
        self.ref_rss.append(ref_rss)
        self.ours_rss.append(rss)
        print(
            f"    {self.label}: reference {self.ref_s[-1]:.2f} s ({ref_rss / 2**20:,.0f} MB), "
            f"penstock {self.ours_s[-1]:.2f} s ({rss / 2**20:,.0f} MB)"
            + (f"; {note}" if note else ""),
            flush=True,
        )

    @property
    def ref(self) -> float:
        return statistics.median(self.ref_s)

    @property
    def ours(self) -> float:
        return statistics.median(self.ours_s)


def rows_axis(work: Path, counts: list[int], repeat: int, seed: int) -> list[Point]:
    points = []
    for rows in counts:
        root = work / f"rows-{rows}"
        csv = root / "landing" / "orders" / "orders.csv"
        csv.parent.mkdir(parents=True)
        expected = write_orders_csv(csv, rows, seed=seed)
        orders_only_project(root)
        point = Point(rows, f"{rows:,} rows ({csv.stat().st_size / 1e6:,.0f} MB)")
        for _ in range(repeat):
            reset(root)
            bare, bare_rss = run_child(BARE_CHILD, str(root / "bare.duckdb"), str(csv))
            reset(root)
            ours, rss = run_child(PENSTOCK_CHILD, str(root))
            check(ours, expected)
            point.add(bare, bare_rss, ours, rss)
        shutil.rmtree(root)
        points.append(point)
    return points


def creation_cost(directory: Path, count: int = 200) -> float:
    """Microseconds of CPU to create one empty file in `directory` now (the files are left in
    place: deleting them would change the cost being measured). Staging creates three a file
    (its directory, its copy, its manifest); on this project's VM the cost swings from ~20 to
    ~700 us with the file system's state, so each sample of the files axis prints it."""
    probe = directory / f"probe-{time.time_ns()}"
    probe.mkdir(parents=True)
    started = time.process_time()
    for n in range(count):
        os.close(os.open(probe / str(n), os.O_CREAT | os.O_WRONLY, 0o644))
    return (time.process_time() - started) / count * 1e6


def files_axis(work: Path, counts: list[int], total: int, repeat: int, seed: int) -> list[Point]:
    points = []
    for files in counts:
        per_file = total // files
        if per_file < MIN_ROWS:
            print(f"    {files:,} files: skipped (the generator writes {MIN_ROWS}+ rows a file)")
            continue
        root = work / f"files-{files}"
        folder = root / "landing" / "orders"
        folder.mkdir(parents=True)
        expected: list[FileExpectation] = [
            write_orders_csv(
                folder / f"orders_{i:05d}.csv", per_file, seed=seed + i, start_id=1 + i * per_file
            )
            for i in range(files)
        ]
        want = {
            "status": "success",
            "loads": files,
            "rows_in": sum(e.rows_in for e in expected),
            "loaded": sum(e.loaded for e in expected),
            "quarantined": sum(len(e.quarantined) for e in expected),
            "duplicates": sum(e.duplicates for e in expected),
        }
        orders_only_project(root)
        point = Point(files, f"{files:,} files x {per_file:,} rows")
        for _ in range(repeat):
            reset(root)
            bare, bare_rss = run_child(BARE_CHILD, str(root / "bare.duckdb"), str(folder / "*.csv"))
            reset(root)
            creating = creation_cost(work / "probes")
            ours, rss = run_child(FILES_CHILD, str(root))
            got = {name: ours[name] for name in want}
            assert got == want, (files, got, want)
            point.add(bare, bare_rss, ours, rss, f"creating a file {creating:,.0f} us")
        shutil.rmtree(root)
        points.append(point)
    return points


def incremental_axis(
    work: Path, base_rows: int, sizes: list[float], repeat: int, seed: int
) -> list[Point]:
    full_csv = work / "orders_full.csv"
    write_orders_csv(full_csv, base_rows, seed=seed)
    base, inc = work / "inc-full", work / "inc-run"
    points = {p: Point(round(base_rows * p), f"{p:.1%} of {base_rows:,}") for p in sizes}
    increments: dict[float, tuple[Path, dict[str, int]]] = {}
    for _ in range(repeat):
        fresh_project(base, "merge", full_csv)
        full, full_rss = run_child(INCREMENTAL_CHILD, str(base))
        assert full["status"] == "success", full
        for p, point in points.items():
            if p not in increments:
                csv = work / f"inc-{p}.csv"
                expect = write_increment(base / "warehouse.duckdb", csv, point.work, seed)
                increments[p] = (csv, expect)
            csv, expect = increments[p]
            copy_state(base, inc)
            (inc / "landing" / "orders" / "orders_1_inc.csv").symlink_to(csv)
            ours, rss = run_child(INCREMENTAL_CHILD, str(inc))
            want = [[expect["inserted"], expect["updated"], expect["unchanged"], 0]]
            assert ours["status"] == "success" and ours["counts"] == want, (p, ours, want)
            point.add(full, full_rss, ours, rss)
            shutil.rmtree(inc)
    shutil.rmtree(base)
    return list(points.values())


def print_table(axis: str, points: list[Point], repeat: int) -> None:
    print(f"\n{axis}: medians of {repeat} (reference: {REFERENCE_LABEL[axis]})")
    print(
        f"{'work':<28}{'ref s':>8}{'penstock s':>12}{'ratio':>8}{'ref RSS':>10}{'penstock RSS':>14}"
    )
    for p in points:
        print(
            f"{p.label:<28}{p.ref:>8.2f}{p.ours:>12.2f}{p.ours / p.ref:>7.2f}x"
            f"{max(p.ref_rss) / 2**20:>7,.0f} MB{max(p.ours_rss) / 2**20:>11,.0f} MB"
        )


def write_chart(path: Path, results: dict[str, list[Point]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    fig, grid = plt.subplots(len(results), 2, figsize=(10, 3.3 * len(results)), squeeze=False)
    for (axis, points), (time_ax, rss_ax) in zip(results.items(), grid, strict=True):
        work = [p.work for p in points]
        time_ax.plot(work, [p.ref for p in points], "o--", label=REFERENCE_LABEL[axis])
        time_ax.plot(work, [p.ours for p in points], "o-", label=OURS_LABEL[axis])
        time_ax.set_ylabel("time (s, median)")
        rss_ax.plot(
            work, [max(p.ref_rss) / 2**20 for p in points], "o--", label=REFERENCE_LABEL[axis]
        )
        rss_ax.plot(work, [max(p.ours_rss) / 2**20 for p in points], "o-", label=OURS_LABEL[axis])
        rss_ax.set_ylabel("peak RSS (MiB)")
        for ax, what in ((time_ax, "time"), (rss_ax, "peak RSS")):
            ax.set_xlabel(WORK_LABEL[axis])
            ax.set_title(f"{axis}: {what}")
            if axis != "rows":
                ax.set_xscale("log")
            ax.xaxis.set_major_formatter(EngFormatter(sep=""))
            ax.set_ylim(0, max(line.get_ydata().max() for line in ax.get_lines()) * 1.3)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def numbers(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",")]


def main() -> None:
    allow_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--axis", choices=[*AXES, "all"], default="all")
    parser.add_argument("--rows", type=numbers, default=numbers("1e6,2e6,5e6,10e6,20e6"))
    parser.add_argument("--files", type=numbers, default=numbers("1,10,100,1000,10000"))
    parser.add_argument(
        "--total-rows", type=lambda s: int(float(s)), default=1_000_000, help="files axis"
    )
    parser.add_argument(
        "--base-rows", type=lambda s: int(float(s)), default=1_000_000, help="incremental axis"
    )
    parser.add_argument(
        "--sizes",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[0.001, 0.01, 0.1],
        help="incremental batch sizes, fractions of --base-rows",
    )
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of each side")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--png", type=Path, help="write the chart here (needs matplotlib)")
    parser.add_argument("--tmp", type=Path, help="where to write the data (default: system's)")
    args = parser.parse_args()
    axes = AXES if args.axis == "all" else (args.axis,)

    results: dict[str, list[Point]] = {}
    with tempfile.TemporaryDirectory(prefix="penstock-scale-", dir=args.tmp) as tmp:
        work = Path(tmp)
        for axis in axes:
            started = time.perf_counter()
            print(f"{axis} axis", flush=True)
            if axis == "rows":
                results[axis] = rows_axis(work, args.rows, args.repeat, args.seed)
            elif axis == "files":
                results[axis] = files_axis(
                    work, args.files, args.total_rows, args.repeat, args.seed
                )
            else:
                results[axis] = incremental_axis(
                    work, args.base_rows, args.sizes, args.repeat, args.seed
                )
            print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)
    for axis, points in results.items():
        print_table(axis, points, args.repeat)
    if args.png:
        write_chart(args.png, results, f"penstock vs reference, medians of {args.repeat}")
        print(f"\nchart: {args.png} ({args.png.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
