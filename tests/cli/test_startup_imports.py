"""The CLI starts fast: importing it, or asking it for --help, loads none of the heavy libraries.

Timing is the benchmark's job (bench/startup.py); these tests guard the property behind it,
which modules a fresh interpreter has loaded, so they are exact and not noisy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import write_project

HEAVY = (
    "duckdb",
    "pyarrow",
    "sqlalchemy",
    "pydantic",
    "sqlglot",
    "numpy",
    "yaml",
    "rich.table",
    # penstock's own heavy parts: the project models, the store's writer, the warehouse
    "penstock.catalog.models",
    "penstock.observe.store",
    "penstock.warehouse",
    # push alerts: apprise (~90 ms) loads only when a run or a command sends one
    "apprise",
    "penstock.observe.alerts",
    # the observe extra: serve, --pushgateway and the OpenLineage sink load them
    "prometheus_client",
    "openlineage",
)
COMMANDS = (
    "init",
    "check",
    "run",
    "rebuild",
    "status",
    "runs",
    "logs",
    "quarantine",
    "batches",
    "sql",
    "gc",
    "alerts",
    "slo",
    "serve",
    "lineage",
    "contract",
    "quality",
    "anomalies",
)


def loaded_after(code: str) -> tuple[list[str], str]:
    """Run `code` in a fresh interpreter; return which HEAVY modules it loaded and its stdout."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stderr.strip().splitlines()[-1]), done.stdout


def test_importing_the_cli_loads_no_heavy_library() -> None:
    loaded, _ = loaded_after("import penstock.cli.app")
    assert loaded == []


def test_importing_penstock_loads_no_heavy_library_until_an_attribute_needs_it() -> None:
    loaded, _ = loaded_after("import penstock\nfrom penstock import PenstockError, UsageError")
    assert loaded == []
    loaded, out = loaded_after("import penstock\nprint(penstock.run.__module__)")
    assert out.strip() == "penstock"
    assert "duckdb" not in loaded  # defined in penstock itself; the engine loads when it runs
    loaded, out = loaded_after("import penstock\nprint(penstock.Session.__module__)")
    assert out.strip() == "penstock.engine.session"
    assert "duckdb" in loaded


def test_help_lists_every_command_without_loading_the_engine() -> None:
    loaded, out = loaded_after(
        "from penstock.cli.app import main\ncode = main(['--help'])\nassert code == 0, code"
    )
    # rendering the help itself uses rich; the engine's libraries stay unloaded
    assert [m for m in loaded if m != "rich.table"] == []
    listed = {line.split()[1] for line in out.splitlines() if line.startswith("│ ")}
    assert listed >= set(COMMANDS), out


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"]])
def test_help_loads_neither_markdown_nor_rich_tracebacks(argv: list[str]) -> None:
    """typer's help renderer imports rich.markdown and rich.traceback (~0.055 s); penstock
    renders help in rich markup mode without either, so help imports them only as stand-ins
    (cli/typer_fixes.py), gone from sys.modules once the renderer has loaded."""
    code = (
        f"import sys\nfrom penstock.cli.app import main\nassert main({argv!r}) == 0\n"
        "print(sorted(m for m in ('rich.markdown', 'markdown_it', 'rich.traceback') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "Usage: penstock" in done.stdout


def test_the_stand_ins_make_the_real_rich_objects() -> None:
    """After help, `rich.markdown` imports for real, and typer's renderer, holding the
    stand-ins, still makes real Markdown and Traceback objects."""
    code = (
        "from penstock.cli.typer_fixes import light_rich_utils\n"
        "light_rich_utils()\n"
        "import typer.rich_utils as ru, rich.markdown, rich.traceback\n"
        "assert rich.markdown.__file__ and rich.traceback.__file__\n"
        "md = ru._make_rich_text(text='**bold**', markup_mode='markdown')\n"
        "assert isinstance(md, rich.markdown.Markdown), type(md)\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError as exc:\n"
        "    tb = ru.Traceback.from_exception(type(exc), exc, exc.__traceback__)\n"
        "assert isinstance(tb, rich.traceback.Traceback), type(tb)\n"
        "print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "ok"


PROJECT = """
name: quick
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    load: merge
    columns:
      id:  {type: bigint, required: true}
      qty: {type: integer, min: 0}
    checks:
      - {name: small, expression: "qty < 1000"}
"""


@pytest.mark.parametrize("as_json", [False, True])
def test_status_and_runs_read_the_store_without_the_engine(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]], as_json: bool
) -> None:
    """`penstock status` and `runs` read the project's outline and, on a SQLite store, the
    store through sqlite3: no project models (pydantic, sqlglot), no SQLAlchemy, no DuckDB
    (the counts status shows were recorded by the run). Not even typer's pydantic adapters."""
    project = write_project(tmp_path, PROJECT, {"landing/orders/a.csv": "id,qty\n1,1\n2,-1\n"})
    assert cli("run", "-p", project)[0] == 0
    flag = ", '--json'" if as_json else ""
    table = [] if as_json else ["rich.table"]
    for command in ("status", "runs"):
        loaded, out = loaded_after(
            f"from penstock.cli.app import main\n"
            f"code = main(['{command}', '-p', {str(project)!r}{flag}])\nassert code == 0, code"
        )
        assert loaded == [*table, "yaml"], (command, loaded)
        if as_json and command == "status":
            (orders,) = json.loads(out)["objects"]
            assert (orders["rows"], orders["rows_quarantined"], orders["last_status"]) == (
                1,
                1,
                "warning",
            )
        elif as_json:
            assert json.loads(out)[0]["status"] == "warning"
        else:
            assert "orders" in out if command == "status" else "warning" in out


def test_a_run_with_the_default_lineage_file_and_a_vetted_check_loads_neither_library(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    """OpenLineage events for the default file are written without openlineage-python (its
    import is ~0.3 s, most of a run with nothing new), and a check expression vetted by an
    earlier load is not parsed again by sqlglot; both are still used where needed (the HTTP
    transport, a changed expression)."""
    project = write_project(tmp_path, PROJECT, {"landing/orders/a.csv": "id,qty\n1,1\n"})
    assert cli("run", "-p", project)[0] == 0  # vets the expression, remembers it
    events = (project / ".penstock" / "openlineage.jsonl").read_text().splitlines()
    assert {json.loads(line)["eventType"] for line in events} == {"START", "COMPLETE"}
    loaded, _ = loaded_after(f"import penstock\npenstock.run({str(project)!r})")
    assert "openlineage" not in loaded and "sqlglot" not in loaded, loaded
    assert "duckdb" in loaded
    assert len((project / ".penstock" / "openlineage.jsonl").read_text().splitlines()) > len(events)
    changed = (project / "penstock.yml").read_text().replace("qty < 1000", "qty < 999")
    (project / "penstock.yml").write_text(changed)
    loaded, _ = loaded_after(f"import penstock\npenstock.load_project({str(project)!r})")
    assert "sqlglot" in loaded


def test_a_run_without_alerts_does_not_import_them(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    """The alerts sink attaches nothing without `alerts:`; its module (~7 ms to import) is
    not loaded by such a run (the run within the hour after the last collection of old
    metadata: a collection imports every sink module for its retention planners)."""
    project = write_project(tmp_path, PROJECT, {"landing/orders/a.csv": "id,qty\n1,1\n"})
    assert cli("run", "-p", project)[0] == 0
    (project / "landing" / "orders" / "b.csv").write_text("id,qty\n2,2\n")
    loaded, _ = loaded_after(
        f"import penstock\nassert penstock.run({str(project)!r}).status == 'success'"
    )
    assert "penstock.observe.alerts" not in loaded, loaded
    assert "duckdb" in loaded
