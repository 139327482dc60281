"""Benchmark CLI start-up: wall time of `penstock --help`, `status` and `runs` against the floor.

    python bench/startup.py --repeat 10
    python bench/startup.py --repeat 10 --baseline-src /tmp/penstock-before/src

Creates the demo project in a temp dir and runs it once (so `status` and `runs` have a
warehouse and a metadata store to read), then times each command in a fresh process, the
commands alternating round by round (this machine is a VM with noisy neighbours). Floors:
`python -c pass` is the interpreter's own start-up; `bare typer app --help` (a two-command
typer app) that of any typer CLI whose help rich renders; `import status's libraries` that of
`penstock status` (the third-party libraries it needs, imported, nothing done). It prints the
median, min and max of each command and its ratio to `python -c pass`. With
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
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
# The libraries `penstock status` cannot do without: the project's contract is pydantic models
# whose check expressions sqlglot and DuckDB vet at load; the store is read through SQLAlchemy,
# the warehouse through DuckDB; the output is a rich table.
STATUS_LIBRARIES = "import typer, rich.table, yaml, pydantic, sqlglot, duckdb, sqlalchemy"


def _sources() -> str:
    """The directory holding the `penstock` package this script would import."""
    import penstock

    return str(Path(penstock.__file__).resolve().parent.parent)


def _timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[2:]} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed


def _env(src: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = src
    env["COLUMNS"] = "120"
    return env


def main() -> None:
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
        samples: dict[tuple[str, str], list[float]] = {
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

    floor = statistics.median(samples["python -c pass", "current"])
    header = f"{'command':<26}{'median':>9}{'min':>9}{'max':>9}{'x floor':>9}"
    if "baseline" in sides:
        header += f"{'baseline':>10}{'x floor':>9}{'cur/base':>10}"
    print(f"{args.repeat} rounds, alternating; python {sys.version.split()[0]}")
    print(header)
    for name in commands:
        cur = samples[name, "current"]
        med = statistics.median(cur)
        line = (
            f"{name:<26}{med * 1000:>7.0f}ms{min(cur) * 1000:>7.0f}ms"
            f"{max(cur) * 1000:>7.0f}ms{med / floor:>8.1f}x"
        )
        if "baseline" in sides:
            base = statistics.median(samples[name, "baseline"])
            line += f"{base * 1000:>8.0f}ms{base / floor:>8.1f}x{med / base:>9.0%}"
        print(line)


if __name__ == "__main__":
    main()
