"""What the CLI's commands share: the Typer app, option types and small helpers.

Importing this module loads typer and rich's console only (see app.py on start-up time).
The app is a `PenstockTyper` (cli/typer_fixes.py): flags show as flags in help, a wrapped
docstring paragraph stays one paragraph, plain values are coerced without pydantic. Each
command's help ends with one example: `@app.command(epilog=example("penstock status --json"))`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from penstock.cli.render import err_console
from penstock.cli.typer_fixes import HelpGroup, PenstockTyper

if TYPE_CHECKING:
    from penstock.catalog import Project


app = PenstockTyper(
    name="penstock",
    cls=HelpGroup,
    help="Metadata-driven DataOps pipelines: declared in YAML, validated, idempotent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ProjectOpt = Annotated[
    Path,
    typer.Option(
        "--project", "-p", metavar="DIR", help="Project directory (holding penstock.yml)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        help="While another run holds the warehouse, wait up to this many seconds for it.",
        min=0,
    ),
]
SelectOpt = Annotated[
    str | None,
    typer.Option(
        "--select",
        "-s",
        metavar="NAMES",
        help="Object name(s) or group:G, comma-separated; +NAME adds everything upstream of "
        "it, NAME+ everything downstream (`penstock plan` shows what that selects).",
    ),
]


class State:
    debug = False


def load(path: Path) -> Project:
    from penstock.catalog import load_project

    return load_project(path)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    State.debug = debug


def waiting(message: str) -> None:
    err_console.print(f"[yellow]waiting:[/] {escape(message)}", highlight=False)


def when(value: Any) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


def example(*commands: str) -> str:
    """The epilog of a command's help: one or more example invocations.

    Use as `@app.command(epilog=example("penstock status --json"))`. The commands are shown
    as written (rich markup such as `[...]` is escaped).
    """
    lines = "\n\n".join(f"  {escape(c)}" for c in commands)
    return f"Example{'s' if len(commands) > 1 else ''}:\n\n{lines}"
