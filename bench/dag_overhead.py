"""Benchmark penstock's orchestration overhead per step: a DAG of no-op steps, in process.

    python bench/dag_overhead.py --nodes 1000 --repeat 5

Builds a project of `--nodes`/2 objects (each is two nodes of the plan, extract and load) in
ten groups, each group after the one before, so the plan has real edges. Then, in one
process, with a real session (DuckDB warehouse, SQLite metadata store, every default sink):

- **plan**: `build_plan` and the selection (the DAG, its cycle check and its order);
- **steps**: the runner's loop over the objects in the plan's order with each object's work a
  no-op: what is left is the orchestration itself (the `object` step recorded started and
  finished through the event bus, the object's counts read from the warehouse for `status`,
  the downstream-of-a-failure test);
- **drain**: the end of the run: the queued sinks catching up (the metadata store writes the
  step rows) and the run's close.

It prints each phase per node, and the whole against the issue's target of 1 ms per step.
The executor that runs steps in parallel (and on Dask) is issue 8's next part: its figures
join this script then.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bytecode import allow_bytecode

TARGET_MS = 1.0


def write_project(root: Path, objects: int, groups: int = 10) -> None:
    lines = [
        "name: dag_overhead",
        "sources:",
        "  landing: {kind: files, path: ./landing, settle: 0s}",
        "groups:",
    ]
    lines += [
        f"  g{g}: {{after: [g{g - 1}]}}" if g else f"  g{g}: {{}}"
        for g in range(min(groups, objects))
    ]
    lines.append("objects:")
    for i in range(objects):
        lines.append(
            f'  o{i:05d}: {{source: landing, files: "o{i:05d}/*.csv", group: g{i % groups}, '
            "columns: {id: {type: bigint}}}"
        )
    (root / "landing").mkdir(parents=True, exist_ok=True)
    (root / "penstock.yml").write_text("\n".join(lines) + "\n")


def one_round(root: Path) -> dict[str, float]:
    from penstock.catalog import load_project
    from penstock.engine import Session
    from penstock.engine.run_order import planned, run_in_order

    project = load_project(root)
    with Session(project) as session:
        runner = session.runner
        started = time.perf_counter()
        plan, objects = planned(project, None)
        planned_at = time.perf_counter()
        result = runner._start("run", None, objects)
        run_in_order(runner, result, plan, objects, lambda _obj: lambda: None)
        stepped = time.perf_counter()
        runner._finish(result)  # run_finished: the queued sinks catch up
        finished = time.perf_counter()
    closed = time.perf_counter()
    assert result.status == "success", result.status
    assert len(plan.nodes) == 2 * len(objects)
    return {
        "plan": planned_at - started,
        "steps": stepped - planned_at,
        "drain": (finished - stepped) + (closed - finished),
        "nodes": float(len(plan.nodes)),
    }


def main() -> None:
    allow_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000, help="nodes of the plan (2 per object)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="penstock-dag-") as tmp:
        for n in range(args.repeat):
            root = Path(tmp) / f"round{n}"
            write_project(root, max(1, args.nodes // 2))
            rounds.append(one_round(root))
    nodes = int(rounds[0]["nodes"])
    print(f"{nodes:,} nodes ({nodes // 2:,} objects in 10 chained groups), {args.repeat} rounds")
    print(f"{'phase':<8} {'median s':>9} {'per node':>10}   samples (s)")
    total = []
    for phase in ("plan", "steps", "drain"):
        values = [r[phase] for r in rounds]
        median = statistics.median(values)
        samples = ", ".join(f"{v:.3f}" for v in values)
        print(f"{phase:<8} {median:>9.3f} {median / nodes * 1000:>8.3f} ms   {samples}")
    total = [r["plan"] + r["steps"] + r["drain"] for r in rounds]
    per_node = statistics.median(total) / nodes * 1000
    print(
        f"{'all':<8} {statistics.median(total):>9.3f} {per_node:>8.3f} ms   "
        f"= {per_node / TARGET_MS:.2f}x the target of {TARGET_MS:g} ms per step"
    )


if __name__ == "__main__":
    main()
