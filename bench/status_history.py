"""Benchmark `penstock status --json` (and `runs`, `logs`) against a metadata store with a long
history: by default 100,000 step_runs.

    python bench/status_history.py --steps 100000 --repeat 10

Creates the demo project in a temp dir and runs it once, then copies that run's job_runs,
step_runs and logs back in time until the store holds `--steps` step_runs (each copy a run one
hour older than the one before, with fresh ids: the shape of a project run hourly for years,
with nothing pruned). The real run stays the latest, so `status` must answer the same before
and after the history is added (the script checks it). Then it times each command in a fresh
process, on that store and on a copy of the project made before the history was added (the
baseline: the same command's start-up and one run), alternating, and prints the median wall
time (min-max) of each, and of `python -c pass` for scale. The target: status under 200 ms.

With `--explain` it prints SQLite's query plan of each statement `status` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytecode import allow_bytecode

ENTRY = "import sys; from penstock.cli.app import main; sys.exit(main())"


def _sources() -> str:
    import penstock

    return str(Path(penstock.__file__).resolve().parent.parent)


def fill_history(db: Path, steps: int) -> tuple[int, int, int]:
    """Copy the store's one run back in time until it holds `steps` step_runs; return the
    counts of job_runs, step_runs and logs."""
    conn = sqlite3.connect(db)
    try:
        (run_id,) = conn.execute("SELECT run_id FROM job_runs").fetchone()
        (per_run,) = conn.execute("SELECT count(*) FROM step_runs").fetchone()
        copies = max(0, -(-(steps - per_run) // per_run))
        conn.execute("CREATE TEMP TABLE n(i INTEGER PRIMARY KEY)")
        conn.executemany("INSERT INTO n VALUES (?)", [(i,) for i in range(1, copies + 1)])
        # an hour per copy, older than the real run; ids made unique by the copy number
        shift = "'-' || n.i || ' hours'"
        run_columns = [r[1] for r in conn.execute("PRAGMA table_info(job_runs)")]
        shifted_runs = {
            "run_id": "run_id || '-' || n.i",
            "started_at": f"datetime(started_at, {shift})",
            "ended_at": f"datetime(ended_at, {shift})",
        }
        select = ", ".join(shifted_runs.get(c, c) for c in run_columns)
        conn.execute(
            f"INSERT INTO job_runs ({', '.join(run_columns)}) "
            f"SELECT {select} FROM job_runs, n WHERE run_id = ?",
            (run_id,),
        )
        columns = [r[1] for r in conn.execute("PRAGMA table_info(step_runs)")]
        shifted = {
            "step_id": "step_id || '-' || n.i",
            "run_id": "run_id || '-' || n.i",
            "started_at": f"datetime(started_at, {shift})",
            "ended_at": f"datetime(ended_at, {shift})",
        }
        select = ", ".join(shifted.get(c, c) for c in columns)
        conn.execute(
            f"INSERT INTO step_runs ({', '.join(columns)}) "
            f"SELECT {select} FROM step_runs, n WHERE run_id = ?",
            (run_id,),
        )
        log_columns = [r[1] for r in conn.execute("PRAGMA table_info(logs)") if r[1] != "id"]
        shifted_logs = {
            "run_id": "run_id || '-' || n.i",
            "at": f"datetime(at, {shift})",
            "step_id": "step_id || '-' || n.i",
        }
        select = ", ".join(shifted_logs.get(c, c) for c in log_columns)
        conn.execute(
            f"INSERT INTO logs ({', '.join(log_columns)}) "
            f"SELECT {select} FROM logs, n WHERE run_id = ? ORDER BY n.i, id",
            (run_id,),
        )
        conn.commit()
        conn.execute("ANALYZE")
        return tuple(  # type: ignore[return-value]
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("job_runs", "step_runs", "logs")
        )
    finally:
        conn.close()


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[3:]} exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed, done.stdout


def explain(db: Path, project: Path, env: dict[str, str]) -> None:
    """Print the query plan of every statement `penstock status` runs (traced in-process)."""
    code = f"""
import sqlite3, sys
from penstock.observe import status_reads
seen = []
real = sqlite3.connect
def connect(*a, **k):
    conn = real(*a, **k)
    conn.set_trace_callback(seen.append)
    return conn
sqlite3.connect = connect
from penstock.cli.app import main
main(['status', '-p', {str(project)!r}, '--json'])
import json; print(json.dumps(seen), file=sys.stderr)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    statements = json.loads(done.stderr.strip().splitlines()[-1])
    conn = sqlite3.connect(db)
    for sql in statements:
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        print(" ".join(sql.split())[:200])
        for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"):
            print("    ", row[-1])
    conn.close()


def main() -> None:
    allow_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--steps", type=int, default=100_000, help="step_runs to hold")
    parser.add_argument("--repeat", type=int, default=10, help="rounds (default 10)")
    parser.add_argument("--explain", action="store_true", help="print status's query plans")
    args = parser.parse_args()

    py = sys.executable
    env = dict(os.environ, PYTHONPATH=_sources(), COLUMNS="120")
    workdir = Path(tempfile.mkdtemp(prefix="penstock-status-history-"))
    try:
        project = workdir / "demo"
        for step in (["init", "--demo", str(project)], ["run", "-p", str(project)]):
            subprocess.run([py, "-c", ENTRY, *step], env=env, check=True, capture_output=True)
        fresh = workdir / "fresh"  # the same project with only its one run: the baseline
        shutil.copytree(project, fresh)
        status = [py, "-c", ENTRY, "status", "-p", str(project), "--json"]
        before = json.loads(_timed(status, env)[1])
        db = project / ".penstock" / "metadata.db"
        started = time.perf_counter()
        runs, steps, logs = fill_history(db, args.steps)
        filled = time.perf_counter() - started
        print(
            f"store: {runs:,} job_runs, {steps:,} step_runs, {logs:,} logs "
            f"({db.stat().st_size / 1e6:.0f} MB; filled in {filled:.1f} s); "
            f"baseline: the same project with its 1 run"
        )
        after = json.loads(_timed(status, env)[1])
        if after != before:
            raise SystemExit(f"status changed with the history:\n{before}\n{after}")
        if args.explain:
            explain(db, project, env)
        commands = {"python -c pass": ([py, "-c", "pass"], None)}
        for name, argv in (
            ("penstock status --json", ["status", "--json"]),
            ("penstock status", ["status"]),
            ("penstock runs --json", ["runs", "--json"]),
            ("penstock logs --json", ["logs", "--json"]),
        ):
            commands[name] = (
                [py, "-c", ENTRY, *argv, "-p", str(project)],
                [py, "-c", ENTRY, *argv, "-p", str(fresh)],
            )
        samples: dict[str, tuple[list[float], list[float]]] = {n: ([], []) for n in commands}
        for history, baseline in commands.values():  # warm the page cache and .pyc files
            _timed(history, env)
            if baseline:
                _timed(baseline, env)
        for round_ in range(args.repeat):
            for name, (history, baseline) in commands.items():
                sides = [(0, history), (1, baseline)] if baseline else [(0, history)]
                for side, argv in sides if round_ % 2 else reversed(sides):
                    samples[name][side].append(_timed(argv, env)[0])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{args.repeat} rounds, alternating; wall time in ms: median (min-max)")
    print(f"{'command':<26}{'history':>8}{'(min-max)':>12}{'baseline':>10}{'(min-max)':>12}")
    for name, (history, baseline) in samples.items():
        line = f"{name:<26}{_ms(history)}"
        if baseline:
            line += f"  {_ms(baseline)}"
        print(line)


def _ms(times: list[float]) -> str:
    spread = f"({min(times) * 1000:.0f}-{max(times) * 1000:.0f})"
    return f"{statistics.median(times) * 1000:>8.0f}{spread:>12}"


if __name__ == "__main__":
    main()
