"""The `penstock` command line: thin commands over the engine, one error handler.

Every read command takes `--json`. Exit codes: 0 ok, 1 a run failed, 2 bad project or usage.

Start-up is kept fast: at import this module loads typer, rich's console and penstock's errors
only; each command imports the engine parts it needs (DuckDB, SQLAlchemy, pydantic, pyarrow),
so `penstock --help` never loads them. tests/cli/test_startup_imports.py guards this.
"""

from __future__ import annotations

import importlib
import sys
import traceback

import typer
from rich.markup import escape
from typer.exceptions import TyperException

from penstock.cli.render import err_console
from penstock.cli.shared import app
from penstock.errors import PenstockError

# Each module registers its commands on `app` when imported; `--help` lists them in this order.
COMMAND_MODULES = (
    "run_commands",
    "backfill_command",
    "plan_command",
    "schedule_command",
    "read_commands",
    "logs_command",
    "quarantine_command",
    "query_command",
    "sql_command",
    "batches_command",
    "discover_command",
    "check_command",
    "gc_command",
    "alerts_command",
    "slo_command",
    "serve_command",
    "lineage_command",
    "contract_command",
    "quality_command",
    "schema_command",
)
for _module in COMMAND_MODULES:
    importlib.import_module(f"penstock.cli.{_module}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear red line on errors, the traceback with --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        # without standalone mode, an Exit raised in a command comes back as the return value
        returned = command.main(args=args, prog_name="penstock", standalone_mode=False)
        if isinstance(returned, int):
            return returned
    except PenstockError as exc:
        if debug:
            traceback.print_exc()
        for line in exc.message.splitlines() or [type(exc).__name__]:
            err_console.print(f"[red]error:[/] {escape(line)}", highlight=False)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except TyperException as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(f"[red]error:[/] {escape(exc.format_message())}")
        return int(exc.exit_code)
    except typer.Abort:
        err_console.print("[red]aborted[/]")
        return 1
    except Exception as exc:  # a bug or an unforeseen condition: still one line, exit 1
        if debug:
            traceback.print_exc()
        from penstock.engine.failures import describe  # imports only errors and secrets

        hint = "" if debug else " (--debug shows the traceback)"
        message, _ = describe(exc)  # "unexpected error: Type: first line", secrets redacted
        err_console.print(f"[red]error:[/] {escape(message)}{hint}", highlight=False)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
