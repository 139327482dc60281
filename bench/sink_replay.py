"""What each sink costs a run of many small files: one run's events, replayed into each sink alone.

    python bench/sink_replay.py --files 1000 --rows 100

Writes `--files` orders files of `--rows` rows (the demo's generator, as `scale.py`'s files
axis does), runs penstock on them once while recording every event the run emits, then hands
those events to each sink on its own, the way its queue would (`handle_many` in runs of up to
512 events, else `handle` one by one; then its `flush` and `close`), each against a fresh
metadata store, and prints the thread CPU seconds each took. A sink works on its own thread in
a run, but every sink's Python holds the same GIL as the run: on many small files their sum
is part of the run's wall time (bench/README.md, "Small files").
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from batch import orders_only_project
from bytecode import allow_bytecode
from penstock.demo import write_orders_csv

SINKS = ("store", "quality", "lineage", "openlineage", "metrics")


def record_run(root: Path) -> list[Any]:
    """Run penstock on `root`; every event its bus emitted, in order."""
    import penstock
    from penstock.observe import bus as bus_module

    events: list[Any] = []
    emit = bus_module.EventBus.emit

    def recording(self: Any, event: Any) -> None:
        events.append(event)
        emit(self, event)

    bus_module.EventBus.emit = recording  # type: ignore[method-assign]
    try:
        result = penstock.run(str(root))
    finally:
        bus_module.EventBus.emit = emit  # type: ignore[method-assign]
    assert result.status == "success", result.status
    return events


def subscribe(name: str, bus: Any, project: Any, store: Any) -> None:
    if name == "store":
        from penstock.engine.session import _StoreSink
        from penstock.observe.store import RECORDED_EVENTS

        bus.subscribe(_StoreSink(store), name=name, events=RECORDED_EVENTS)
    elif name == "quality":
        from penstock.observe.dq import QualitySink

        bus.subscribe(QualitySink(store, project, None), name=name, events=QualitySink.EVENTS)
    elif name == "lineage":
        from penstock.observe.lineage import LineageRecorder, StepTracker

        bus.subscribe(LineageRecorder(store, project), name=name, events=StepTracker.EVENTS)
    elif name == "openlineage":
        from penstock.observe.lineage import StepTracker
        from penstock.observe.openlineage import openlineage_sink

        bus.subscribe(openlineage_sink(project), name=name, events=StepTracker.EVENTS)
    else:
        from penstock.observe.metrics import MetricsSink

        bus.subscribe(MetricsSink(store, project.name), name=name, events=MetricsSink.EVENTS)


def replay(name: str, events: list[Any], project: Any, work: Path) -> tuple[int, float]:
    """Hand `events` to the sink `name` alone; the events it took and its CPU seconds."""
    from penstock.observe.bus import EventBus
    from penstock.observe.store import MetadataStore

    store = MetadataStore(f"sqlite:///{work / f'{name}.db'}")
    store.create()
    bus = EventBus()
    subscribe(name, bus, project, store)
    sub = bus._subscriptions[-1]
    mine = [e for e in events if sub.wants(e)]
    gc.collect()  # the garbage the run and the sinks before left is not this sink's to collect
    started = time.thread_time()
    if sub.on_many is not None:
        for at in range(0, len(mine), 512):
            sub.deliver_many(mine[at : at + 512])
    else:
        for event in mine:
            sub.deliver(event)
    if sub.on_flush is not None:
        sub.on_flush()
    if sub.on_close is not None:
        sub.on_close()
    cpu = time.thread_time() - started
    store.close()
    return len(mine), cpu


def main() -> None:
    allow_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=100, help="rows per file")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="penstock-sinks-") as tmp:
        root = Path(tmp) / "project"
        folder = root / "landing" / "orders"
        folder.mkdir(parents=True)
        for i in range(args.files):
            write_orders_csv(
                folder / f"orders_{i:05d}.csv",
                args.rows,
                seed=args.seed + i,
                start_id=1 + i * args.rows,
            )
        orders_only_project(root)
        events = record_run(root)
        from penstock.catalog import load_project

        project = load_project(root)
        print(f"{args.files:,} files x {args.rows:,} rows: the run emitted {len(events):,} events")
        total = 0.0
        for name in SINKS:
            work = Path(tmp) / name
            work.mkdir()
            taken, cpu = replay(name, events, project, work)
            total += cpu
            print(f"  {name:<12} {taken:>7,} events {cpu:>7.3f} s CPU")
            shutil.rmtree(work)
        print(f"  {'all':<12} {'':>14} {total:>7.3f} s CPU")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
