"""Benchmark what a run costs as the stage zone grows: a run's fixed cost must not grow with
every file ever loaded.

    python bench/history.py --staged 1000,10000 --repeat 3

For each point, `--staged` orders files of 100 rows are staged and loaded first (one run,
not timed). Then, in fresh child processes, penstock's engine imported before the clock starts
(as bench/incremental.py does; imports are the same at every point), alternating:
  * idle: a run with nothing new (what a scheduler's tick costs);
  * +1 file: a run that stages, validates and merges one new 100-row file (a per-minute drop);
  * idle, no catalog: the idle run with the stage catalog (lake/stage_catalog.py) deleted
    first, so that every manifest and skip marker is read from its own file.
The reference is the same run on a stage zone of one batch, measured in the same process: it
prints each point's medians and their ratio to the reference (1.0 = no growth with history).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from batch import orders_only_project
from bytecode import allow_bytecode
from penstock.demo import write_orders_csv

CHILD = """
import json, sys, time
import penstock
from penstock.engine import runner, session  # the engine's imports, before the clock
started = time.perf_counter()
result = penstock.run(sys.argv[1])
elapsed = time.perf_counter() - started
assert result.status == "success", result.status
print(json.dumps({"seconds": elapsed, "loads": len(result.loads())}))
"""

ROWS = 100  # per file: the demo generator's smallest


def child(root: Path) -> tuple[float, int]:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root)], capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}):\n{proc.stderr.decode()}")
    out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return float(out["seconds"]), int(out["loads"])


def prepared(work: Path, staged: int, seed: int) -> Path:
    """A project whose stage zone holds `staged` batches, all loaded."""
    root = work / f"staged-{staged}"
    folder = root / "landing" / "orders"
    folder.mkdir(parents=True)
    for i in range(staged):
        write_orders_csv(folder / f"orders_{i:06d}.csv", ROWS, seed=seed + i, start_id=1 + i * ROWS)
    orders_only_project(root)
    seconds, loads = child(root)
    assert loads == staged, loads
    print(f"  {staged:,} batches staged and loaded in {seconds:.1f} s", flush=True)
    return root


def measure(root: Path, repeat: int, seed: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {"idle": [], "+1 file": [], "idle, no catalog": []}
    catalog = root / "lake" / "index" / "orders.batches.json"
    for n in range(repeat):
        seconds, loads = child(root)
        assert loads == 0, loads
        samples["idle"].append(seconds)
        new = root / "landing" / "orders" / f"new_{n:04d}.csv"
        write_orders_csv(new, ROWS, seed=seed + 900_000 + n, start_id=10**9 + n * ROWS)
        seconds, loads = child(root)
        assert loads == 1, loads
        samples["+1 file"].append(seconds)
        catalog.unlink(missing_ok=True)
        seconds, loads = child(root)
        assert loads == 0, loads
        samples["idle, no catalog"].append(seconds)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    allow_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--staged", default="1000,10000", help="batches staged before")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tmp", help="where to write the data (default: system's)")
    args = parser.parse_args()
    points = [int(float(x)) for x in args.staged.split(",")]
    with tempfile.TemporaryDirectory(prefix="penstock-history-", dir=args.tmp) as tmp:
        work = Path(tmp)
        results: dict[int, dict[str, float]] = {}
        for staged in sorted({1, *points}):
            root = prepared(work, staged, args.seed)
            results[staged] = measure(root, args.repeat, args.seed)
            shutil.rmtree(root)
    base = results[1]
    print(f"\nmedians of {args.repeat}; the reference: the same runs with one batch staged")
    print(f"{'batches staged':>15}" + "".join(f"{name:>26}" for name in base))
    for staged, figures in results.items():
        cells = "".join(
            f"{figures[name]:>14.3f} s ({figures[name] / base[name]:>5.2f}x)" for name in base
        )
        print(f"{staged:>15,}{cells}")


if __name__ == "__main__":
    main()
