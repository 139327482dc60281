"""Benchmark CLI start-up: wall time of `penstock --help`, `status` and `runs` against the floor.

    python bench/startup.py --repeat 10
    python bench/startup.py --repeat 10 --baseline-src /tmp/penstock-before/src

Creates the demo project in a temp dir and runs it once (so `status` and `runs` have a
warehouse and a metadata store to read), then times each command in a fresh process, the
commands alternating round by round (this machine is a VM with noisy neighbours). Floors:
`python -c pass` is the interpreter's own start-up; `bare typer app --help` (a two-command
typer app) that of any typer CLI whose help rich renders; `import status's libraries` that of
`penstock status` (the third-party libraries it needs, imported, nothing done). It prints the
median wall time of each command (and min-max), its ratio to `python -c pass`, and the median
CPU time (user + system, less disturbed by neighbours than wall time). With
`--baseline-src DIR` every command also runs with `PYTHONPATH=DIR` (another checkout's
sources, e.g. the code before a change), alternating with the current sources, and the table
gains the baseline's median and the ratio current/baseline.

The commands run as `python -c "from penstock.cli.app import main; ..."`, exactly what the
`penstock` console script does, with the sources on PYTHONPATH that this script was given
(by default the ones `import penstock` finds from here).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bytecode import allow_bytecode

ENTRY = "import sys; from penstock.cli.app import main; sys.exit(main())"
# The floor of any typer CLI with rich help: an app with one command and no imports of its own.
BARE_TYPER = (
    "import typer\n"
    "app = typer.Typer(add_completion=False)\n"
    "@app.command()\n"
    "def hello(name: str = 'x') -> None:\n"
    "    print(name)\n"
    "@app.command()\n"
    "def bye() -> None: ...\n"
    "app()\n"
)
# The libraries `penstock status` cannot do without: typer, the YAML reader for the project's
# outline, sqlite3 for the metadata store (it holds the counts each run recorded), and a rich
# table for the output. (Before issue 6 it loaded pydantic models, sqlglot, DuckDB and
# SQLAlchemy as well: ~0.46 s of imports.)
STATUS_LIBRARIES = "import typer, rich.table, yaml, sqlite3"


def _sources() -> str:
    """The directory holding the `penstock` package this script would import."""
    import penstock

    return str(Path(penstock.__file__).resolve().parent.parent)


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run of `argv`."""
    cpu, started = _cpu(), time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{argv[2:]} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed, cpu


def _env(src: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = src
    env["COLUMNS"] = "120"
    return env


def main() -> None:
    allow_bytecode()
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=10, help="rounds (default 10)")
    parser.add_argument("--baseline-src", help="sources to compare with (a src/ directory)")
    args = parser.parse_args()

    py = sys.executable
    current = _env(_sources())
    sides = {"current": current}
    if args.baseline_src:
        sides["baseline"] = _env(str(Path(args.baseline_src).resolve()))

    workdir = Path(tempfile.mkdtemp(prefix="penstock-startup-"))
    try:
        project = workdir / "demo"
        for step in (["init", "--demo", str(project)], ["run", "-p", str(project)]):
            subprocess.run([py, "-c", ENTRY, *step], env=current, check=True, capture_output=True)
        commands = {
            "python -c pass": [py, "-c", "pass"],
            "bare typer app --help": [py, "-c", BARE_TYPER, "--help"],
            "import penstock.cli.app": [py, "-c", "import penstock.cli.app"],
            "penstock --help": [py, "-c", ENTRY, "--help"],
            "import status's libraries": [py, "-c", STATUS_LIBRARIES],
            "penstock status": [py, "-c", ENTRY, "status", "-p", str(project)],
            "penstock runs": [py, "-c", ENTRY, "runs", "-p", str(project)],
        }
        samples: dict[tuple[str, str], list[tuple[float, float]]] = {
            (name, side): [] for name in commands for side in sides
        }
        for _warm in range(2):  # page cache, .pyc files
            for argv in commands.values():
                for env in sides.values():
                    _timed(argv, env)
        for round_ in range(args.repeat):
            order = list(sides.items())
            if round_ % 2:
                order.reverse()
            for name, argv in commands.items():
                for side, env in order:
                    samples[name, side].append(_timed(argv, env))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def median(name: str, side: str, which: int) -> float:
        return statistics.median(sample[which] for sample in samples[name, side])

    floor = median("python -c pass", "current", 0)
    print(f"{args.repeat} rounds, alternating; python {sys.version.split()[0]}; times in ms")
    print("wall: median (min-max), and x the median of python -c pass; cpu: median user+system")
    header = f"{'command':<26}{'wall':>6}{'(min-max)':>12}{'x floor':>9}{'cpu':>6}"
    if "baseline" in sides:
        header += f"{'| baseline wall':>16}{'cpu':>6}{'wall cur/base':>15}{'cpu cur/base':>14}"
    print(header)
    for name in commands:
        walls = [wall for wall, _ in samples[name, "current"]]
        wall, cpu = median(name, "current", 0), median(name, "current", 1)
        spread = f"({min(walls) * 1000:.0f}-{max(walls) * 1000:.0f})"
        line = f"{name:<26}{wall * 1000:>6.0f}{spread:>12}{wall / floor:>8.1f}x{cpu * 1000:>6.0f}"
        if "baseline" in sides:
            base_wall, base_cpu = median(name, "baseline", 0), median(name, "baseline", 1)
            line += (
                f"{'|':>2}{base_wall * 1000:>14.0f}{base_cpu * 1000:>6.0f}"
                f"{wall / base_wall:>15.0%}{cpu / base_cpu:>14.0%}"
            )
        print(line)


if __name__ == "__main__":
    main()
