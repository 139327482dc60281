"""Objects of a run on several workers (`penstock run --workers N`, default the core count).

The plan's units run as soon as the units upstream of them (among those selected) have
finished, at most N at once, in the plan's order among those ready; an object downstream of
one that failed is held back (`upstream_failed`), as in the sequential runner
(engine/run_order.py). A source's `max_connections: N` caps how many of its objects run at
once, so a run never works against a source system with more than N of its objects.

Each worker is a view of the runner (`worker_view`): the same project, lake, bus and step
clock, its own try state (attempt, deadline), its own connection to the warehouse's DuckDB
(a cursor: staging, validation and its temp tables live there) and its own `RunResult`,
merged into the run's once the object is done, on the coordinating thread: nothing mutates
the run's result from two threads. Loads take the runner's `write_lock` (engine/loading.py),
so one load at a time reaches the warehouse (DuckDB has one writer; the PostgreSQL adapter
holds one connection); extraction, staging and validation overlap. The bus is safe to emit
from the workers (observe/bus.py).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import partial
from typing import TYPE_CHECKING

from penstock.catalog import ObjectSpec
from penstock.engine.plan import Plan
from penstock.engine.results import BatchStatus, RunResult
from penstock.engine.run_order import hold_back
from penstock.quality.privacy_sql import install_key
from penstock.warehouse import Warehouse

if TYPE_CHECKING:
    from penstock.engine.runner import Runner

Work = Callable[["Runner", RunResult, ObjectSpec], None]


class _Connections:
    """One warehouse view per worker thread (its own connection), made on the thread's first
    object and kept for its next ones; closed when the run's objects are done."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.local = threading.local()
        self.opened: list[Warehouse] = []
        self.lock = threading.Lock()

    def mine(self) -> Warehouse:
        warehouse: Warehouse | None = getattr(self.local, "warehouse", None)
        if warehouse is None:
            warehouse = self.runner.warehouse.for_worker()
            install_key(warehouse.conn, self.runner.project.privacy.key)
            self.local.warehouse = warehouse
            with self.lock:
                self.opened.append(warehouse)
        return warehouse

    def close(self) -> None:
        for warehouse in self.opened:
            warehouse.close_worker()


def worker_view(runner: Runner, result: RunResult) -> tuple[Runner, RunResult]:
    """A runner for one object on a worker thread (its warehouse view is set on the thread),
    and the result it records into (see the module docstring)."""
    view = copy.copy(runner)
    view.attempt = 1
    view.deadline = None
    mine = RunResult(
        run_id=result.run_id,
        command=result.command,
        selected=result.selected,
        restage=[] if result.restage is not None else None,
    )
    return view, mine


def _on_worker(
    connections: _Connections, view: Runner, mine: RunResult, obj: ObjectSpec, work: Work
) -> BatchStatus:
    view.warehouse = connections.mine()
    return view._guard(mine, obj, partial(work, view, mine, obj))


def merge(result: RunResult, part: RunResult) -> None:
    """What a worker recorded, into the run's result (on the coordinating thread)."""
    result.outcomes.extend(part.outcomes)
    result.no_match.extend(part.no_match)
    result.rejected.extend(part.rejected)
    result.notes.extend(part.notes)
    if part.restage is not None:
        result.restage = [*(result.restage or []), *part.restage]


def run_parallel(
    runner: Runner,
    result: RunResult,
    plan: Plan,
    objects: list[ObjectSpec],
    work: Work,
    workers: int,
) -> None:
    """Each object's `work` on up to `workers` threads, in dependency order (module
    docstring)."""
    connections = _Connections(runner)
    try:
        _schedule(runner, result, plan, objects, work, workers, connections)
    finally:
        connections.close()


def _schedule(
    runner: Runner,
    result: RunResult,
    plan: Plan,
    objects: list[ObjectSpec],
    work: Work,
    workers: int,
    connections: _Connections,
) -> None:
    selected = {o.name for o in objects}
    pending = list(objects)
    finished: set[str] = set()
    failed: list[str] = []
    busy: dict[str, int] = {}  # source -> its objects running
    running: dict[Future[BatchStatus], tuple[ObjectSpec, RunResult]] = {}

    def cap(obj: ObjectSpec) -> int | None:
        source = runner.project.sources.get(obj.source)
        return getattr(source, "max_connections", None)

    with ThreadPoolExecutor(workers, thread_name_prefix="penstock-worker") as pool:
        while pending or running:
            for obj in list(pending):
                if len(running) >= workers:
                    break
                waiting = [
                    n for n in selected - finished if n != obj.name and plan.depends(obj.name, n)
                ]
                if waiting:
                    continue
                blocked = [n for n in failed if plan.depends(obj.name, n)]
                if blocked:
                    pending.remove(obj)
                    hold_back(runner, result, obj, blocked)
                    finished.add(obj.name)
                    continue
                limit = cap(obj)
                if limit is not None and busy.get(obj.source, 0) >= limit:
                    continue
                pending.remove(obj)
                busy[obj.source] = busy.get(obj.source, 0) + 1
                view, mine = worker_view(runner, result)
                future = pool.submit(_on_worker, connections, view, mine, obj, work)
                running[future] = (obj, mine)
            if not running:
                continue  # held back objects freed others: look again
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                obj, mine = running.pop(future)
                busy[obj.source] -= 1
                try:
                    status = future.result()
                finally:
                    merge(result, mine)
                finished.add(obj.name)
                if status == "failed":
                    failed.append(obj.name)
