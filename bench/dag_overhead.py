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
Two more rows, on the same plan:

- **workers**: the same no-op steps through the parallel executor (engine/parallel.py) on
  `--workers` threads (default: the core count): what a worker view (its own DuckDB cursor and
  result), the dependency bookkeeping and the merge add per object;
- **dask**: the plan's nodes as no-op tasks on a Dask `LocalCluster` of worker processes
  (`--dask`, needs `penstock[dask]`), each task depending on the tasks of its node's
  dependencies: what a step would cost if penstock shipped every plan node to Dask (it ships
  only staging there, engine/dask_executor.py); the cluster's start is not counted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

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


def _nothing(*_args: object) -> None:
    return None


def one_round(root: Path, workers: int = 1) -> dict[str, float]:
    from penstock.catalog import load_project
    from penstock.engine import Session
    from penstock.engine.parallel import run_parallel
    from penstock.engine.run_order import planned, run_in_order

    project = load_project(root)
    with Session(project) as session:
        runner = session.runner
        started = time.perf_counter()
        plan, objects, _models = planned(project, None)
        planned_at = time.perf_counter()
        result = runner._start("run", None, objects)
        if workers == 1:
            run_in_order(runner, result, plan, objects, _nothing)
        else:
            run_parallel(runner, result, plan, objects, _nothing, workers)
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


def dask_round(root: Path, client: Any) -> float:
    """Seconds to run the plan's nodes as no-op Dask tasks, each after its dependencies."""
    from penstock.catalog import load_project
    from penstock.engine.run_order import planned

    plan, _, _ = planned(load_project(root), None)
    started = time.perf_counter()
    futures: dict[str, object] = {}
    for node in plan.nodes.values():
        needs = [futures[d] for d in node.depends_on if d in futures]
        key = f"{node.id}-{started}"
        futures[node.id] = client.submit(_nothing, *needs, key=key, pure=False)
    client.gather(list(futures.values()))
    return time.perf_counter() - started


def main() -> None:
    allow_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000, help="nodes of the plan (2 per object)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--dask", action="store_true", help="add the Dask row")
    args = parser.parse_args()
    rounds = []
    parallel = []
    on_dask = []
    with tempfile.TemporaryDirectory(prefix="penstock-dag-") as tmp:
        for n in range(args.repeat):  # the rows alternate within each round
            root = Path(tmp) / f"round{n}"
            write_project(root, max(1, args.nodes // 2))
            rounds.append(one_round(root))
            other = Path(tmp) / f"workers{n}"
            write_project(other, max(1, args.nodes // 2))
            parallel.append(one_round(other, args.workers))
        if args.dask:
            from distributed import Client, LocalCluster

            with (
                LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
                Client(cluster) as client,
            ):
                for n in range(args.repeat):
                    on_dask.append(dask_round(Path(tmp) / f"round{n}", client))
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
    whole = [r["plan"] + r["steps"] + r["drain"] for r in parallel]
    steps = [r["steps"] for r in parallel]
    print(
        f"{'workers':<8} {statistics.median(whole):>9.3f} "
        f"{statistics.median(whole) / nodes * 1000:>8.3f} ms   all, on {args.workers} worker "
        f"threads (steps alone {statistics.median(steps) / nodes * 1000:.3f} ms per node): "
        + ", ".join(f"{v:.3f}" for v in whole)
    )
    if on_dask:
        median = statistics.median(on_dask)
        print(
            f"{'dask':<8} {median:>9.3f} {median / nodes * 1000:>8.3f} ms   no-op tasks on a "
            "2-process LocalCluster: " + ", ".join(f"{v:.3f}" for v in on_dask)
        )


if __name__ == "__main__":
    main()
