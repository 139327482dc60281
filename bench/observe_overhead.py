"""Benchmark what observability costs a run: the same 1,000,000-row run with every sink on
against the same run with sinks off, alternating, in the same invocation.

    python bench/observe_overhead.py --rows 1000000 --repeat 5

Generates one orders CSV with the demo's defect mix (bench/batch.py's generator), then runs the
demo's orders object on it, each run in a fresh child process and a fresh project (warehouse,
lake and store empty; the landing file is a symlink to the one generated):

- **off**: the runner with a bare event bus: every event is still built and emitted, nothing
  is subscribed (no metadata store, no hook, nothing queued);
- **on**: a normal session: the metadata store (queued), and every sink of `ON_*` below.

Each side is timed from the start of the run to the end of its session (sinks flushed and
closed, retention applied): what a `penstock run` waits for, less the session's opening
(the same on both sides). Before any figure is printed, each run's counts are checked against
the generator's, and the "on" side's records against the run (the store's run and rows, the
hook's events). It prints every sample, the medians, and the overhead: on / off - 1, from the
medians and as the median of each round's pair (the machine is noisy; rounds alternate which
side goes first). The target is an overhead of at most 5%.

Sinks join the "on" side here: settings in `ON_SETTINGS` (and `ON_OBJECT_SETTINGS`, under
the orders object), files in `ON_FILES`, a local receiver (a webhook, an SMTP server) in
`on_receivers`, and a check of what they recorded in `check_on`. On now: the metadata store,
a hook handling every event kind, the metrics sink (with a push to a local Pushgateway when
the run ends, as `run --pushgateway` does), the lineage sinks (the store's lineage table;
OpenLineage events to the default file, or with `--lineage http` to a local receiver), and
alerts (rules on every event kind, to a local webhook; the orders object's SLOs evaluated when
the run ends). One local HTTP server plays the Pushgateway, the OpenLineage backend and the
webhook.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bytecode import allow_bytecode
from penstock.demo import FileExpectation, write_orders_csv
from penstock.demo.templates import DEMO_PROJECT

# ---- the "on" side: every sink penstock has -------------------------------------------------

# appended to penstock.yml (the metrics and lineage sinks are on in every session: OpenLineage
# events go to the default file, or with --lineage http to a local receiver, the heavier
# transport: openlineage-python's); the demo's orders carry defects, so check_failed alerts
# with a sample of failing rows read from the lake
LINEAGE = {
    "file": "lineage: {transport: file}\n",
    "http": 'lineage: {transport: http, url: "${env:BENCH_LINEAGE_URL}"}\n',
}
ON_SETTINGS = """
hooks:
  - {use: "bench_hook.py:EveryEvent", options: {path: "events.jsonl"}}
alerts:
  - name: ops
    on: [run_failed, check_failed, schema_drift, source_down, sla_missed]
    to: ["json://${env:BENCH_WEBHOOK}/hook"]
"""
# the orders object's service levels: evaluated when the run ends
ON_OBJECT_SETTINGS = "    sla: {freshness: 2h, success_rate: 99%}\n"

# written into the project
ON_FILES = {
    "bench_hook.py": '''
import json
from pathlib import Path
from typing import Any

from penstock.observe import EVENT_KINDS, event_dict


class EveryEvent:
    """A hook that handles every kind of event: each as a JSON line in a file."""

    def __init__(self, *, path: str) -> None:
        self.out = Path(path).open("a")
        for kind in EVENT_KINDS:
            setattr(self, f"on_{kind}", self._write)

    def _write(self, *, event: Any, **fields: Any) -> None:
        self.out.write(json.dumps(event_dict(event), default=str) + "\\n")

    def close(self) -> None:
        self.out.close()
''',
}


# what the local receiver was sent, by sink (its URL path)
RECEIVED: dict[str, list[bytes]] = {"alerts": [], "lineage": [], "pushgateway": []}


@contextlib.contextmanager
def on_receivers(root: Path) -> Iterator[None]:
    """Local servers the "on" side's sinks send to, one HTTP server for all: the alerts'
    webhook (`/hook`), an OpenLineage backend (lineage over HTTP, `/api/v1/lineage`) and a
    Pushgateway (`/metrics/job/...`: the "on" child pushes its metrics when its run ends, as
    `penstock run --pushgateway` does); their addresses reach the children by environment."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    routes = {"/hook": "alerts", "/api/v1/lineage": "lineage", "/metrics/": "pushgateway"}

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            kind = next((k for p, k in routes.items() if self.path.startswith(p)), None)
            if kind is not None:
                RECEIVED[kind].append(body)
            self.send_response(404 if kind is None else 200)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    address = f"127.0.0.1:{server.server_address[1]}"
    os.environ["BENCH_LINEAGE_URL"] = os.environ["BENCH_PUSHGATEWAY"] = f"http://{address}"
    os.environ["BENCH_WEBHOOK"] = address
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def check_on(project: Path, child: dict[str, object]) -> None:
    """What the sinks of the "on" side recorded matches the run."""
    import sqlite3

    db = sqlite3.connect(project / ".penstock" / "metadata.db")
    status, rows_in = db.execute(
        "SELECT r.status, sum(s.rows_in) FROM job_runs r JOIN step_runs s USING (run_id) "
        "WHERE s.step = 'load' GROUP BY r.run_id"
    ).fetchone()
    (logs,) = db.execute("SELECT count(*) FROM logs").fetchone()
    loaded = db.execute(
        "SELECT value FROM metric_totals WHERE name = 'rows_processed_total' "
        'AND labels = \'{"outcome":"loaded"}\''
    ).fetchone()
    (lineage_rows,) = db.execute("SELECT count(*) FROM lineage").fetchone()
    db.close()
    assert (status, rows_in) == ("success", child["rows_in"]), (status, rows_in)
    assert logs > 0
    assert loaded is not None and loaded[0] == child["loaded"], loaded
    assert lineage_rows > 0
    kinds = [json.loads(x)["kind"] for x in (project / "events.jsonl").read_text().splitlines()]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished", kinds
    assert "batch_loaded" in kinds and "checks_evaluated" in kinds
    # the alert reached the webhook before the run's session closed, with its sample
    (post,) = [json.loads(b) for b in RECEIVED["alerts"]]
    RECEIVED["alerts"].clear()
    text = f"{post['title']}\n{post['message']}"
    assert "ERROR shop_demo/orders" in text and "broke the contract" in text, text
    assert "Sample of failing rows" in text and "penstock quarantine orders --batch" in text
    # this run's OpenLineage events: every START paired, then the push
    sent = project / ".penstock" / "openlineage.jsonl"
    lines = sent.read_bytes().splitlines() if sent.exists() else RECEIVED["lineage"]
    events = [json.loads(b) for b in lines]
    RECEIVED["lineage"].clear()
    starts = sum(e["eventType"] == "START" for e in events)
    assert events and starts * 2 == len(events), [e["eventType"] for e in events]
    pushed = RECEIVED["pushgateway"]
    assert pushed and b"penstock_rows_processed_total" in pushed[-1]
    pushed.clear()


# ---- the runs ---------------------------------------------------------------------------------

CHILD = """
import json, sys, time
from pathlib import Path
from penstock import load_project

side, root = sys.argv[1], Path(sys.argv[2])
project = load_project(root)
if side == "on":
    from penstock.engine import Session
    import os
    from penstock.observe import MetadataStore
    from penstock.observe.prometheus import push
    session = Session(project)
    started, cpu = time.perf_counter(), time.process_time()
    result = session.runner.run()
    ran = time.perf_counter()
    session.close()
    closed = time.perf_counter()
    with MetadataStore(project.metadata_url) as store:  # as `run --pushgateway` does
        push(store, project.name, os.environ["BENCH_PUSHGATEWAY"])
    parts = {"run": ran - started, "close": closed - ran, "push": time.perf_counter() - closed}
else:
    from penstock.engine.runner import Runner
    from penstock.lake import Lake
    from penstock.observe import EventBus
    from penstock.warehouse import connect_warehouse
    warehouse = connect_warehouse(project)
    lake = Lake(project.lake_path)
    runner = Runner(project, EventBus(), warehouse, lake)
    started, cpu = time.perf_counter(), time.process_time()
    result = runner.run()
    ran = time.perf_counter()
    warehouse.close()
    parts = {"run": ran - started, "close": time.perf_counter() - ran, "push": 0.0}
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
(load,) = result.loads()
print(json.dumps({"seconds": elapsed, "cpu": cpu, "parts": parts, "status": result.status,
                  "rows_in": load.rows_in,
                  "loaded": load.rows_loaded, "quarantined": load.rows_quarantined,
                  "duplicates": load.rows_duplicate}))
"""


def make_project(root: Path, csv: Path, side: str, lineage: str) -> None:
    if root.exists():
        shutil.rmtree(root)
    (root / "landing" / "orders").mkdir(parents=True)
    (root / "landing" / "orders" / csv.name).symlink_to(csv)
    yml = DEMO_PROJECT.replace("include: [objects/*.yml]\n", "")
    yml = yml.replace("path: ./landing,", "path: ./landing, settle: 0s,")
    if side == "on":
        yml = yml.replace("    columns:\n", ON_OBJECT_SETTINGS + "    columns:\n", 1)
        yml += ON_SETTINGS + LINEAGE[lineage]
        for name, text in ON_FILES.items():
            (root / name).write_text(text)
    (root / "penstock.yml").write_text(yml)


def run_child(side: str, root: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, side, str(root)],
        capture_output=True,
        text=True,
        cwd=root,  # the hook writes events.jsonl here
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    if done.returncode != 0:
        raise SystemExit(f"{side} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def check(child: dict[str, object], expected: FileExpectation) -> None:
    """The run did the whole job right, or its time means nothing."""
    assert child["status"] == "success", child
    assert child["rows_in"] == expected.rows_in, child
    assert child["quarantined"] == len(expected.quarantined), child
    assert child["duplicates"] == expected.duplicates, child
    assert child["loaded"] == expected.loaded, child


def main() -> None:
    allow_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of one run per side")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--lineage",
        choices=sorted(LINEAGE),
        default="file",
        help="OpenLineage transport of the on side: file (the default one) or http",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="penstock-observe-") as tmp:
        work = Path(tmp)
        csv = work / "orders.csv"
        started = time.perf_counter()
        expected = write_orders_csv(csv, args.rows, seed=args.seed)
        print(
            f"generated {args.rows:,} rows ({csv.stat().st_size / 1e6:,.0f} MB) in "
            f"{time.perf_counter() - started:.1f} s"
        )
        samples: dict[str, list[float]] = {"off": [], "on": []}
        cpu: dict[str, list[float]] = {"off": [], "on": []}
        parts: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        with on_receivers(work):
            for round_ in range(1, args.repeat + 1):
                sides = ("off", "on") if round_ % 2 else ("on", "off")
                for side in sides:
                    root = work / side
                    make_project(root, csv, side, args.lineage)
                    child = run_child(side, root)
                    check(child, expected)
                    if side == "on":
                        check_on(root, child)
                    samples[side].append(float(child["seconds"]))  # type: ignore[arg-type]
                    cpu[side].append(float(child["cpu"]))  # type: ignore[arg-type]
                    parts[side].append(child["parts"])  # type: ignore[arg-type]
                off, on = samples["off"][-1], samples["on"][-1]
                print(
                    f"  round {round_} ({' then '.join(sides)}): off {off:.2f} s, on {on:.2f} s"
                    f" ({on / off - 1:+.1%}); CPU off {cpu['off'][-1]:.2f} s, "
                    f"on {cpu['on'][-1]:.2f} s"
                )
    off_s, on_s = statistics.median(samples["off"]), statistics.median(samples["on"])
    pairs = statistics.median(
        on / off for on, off in zip(samples["on"], samples["off"], strict=True)
    )
    print(
        f"median of {args.repeat}: off {off_s:.2f} s ({args.rows / off_s:,.0f} rows/s), "
        f"on {on_s:.2f} s ({args.rows / on_s:,.0f} rows/s)"
    )
    cpu_off, cpu_on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
    print(
        f"CPU time (all threads) medians: off {cpu_off:.2f} s, on {cpu_on:.2f} s "
        f"({cpu_on / cpu_off - 1:+.1%}, {cpu_on - cpu_off:+.2f} s)"
    )
    for side in ("off", "on"):
        medians = {name: statistics.median(p[name] for p in parts[side]) for name in parts[side][0]}
        print(f"  {side}: " + ", ".join(f"{n} {v:.3f} s" for n, v in medians.items()))
    print(
        f"overhead of the sinks: {on_s / off_s - 1:+.1%} (medians), "
        f"{pairs - 1:+.1%} (median of the rounds' pairs); target at most +5%"
    )


if __name__ == "__main__":
    main()
