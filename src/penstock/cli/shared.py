"""What the CLI's commands share: the Typer app, option types and small helpers.

Importing this module loads typer and rich's console only (see app.py on start-up time).

Help that reads right, for every command (`HelpCommand`, which `app.command` uses unless told
otherwise, and `HelpGroup` for `penstock --help`):

- a flag shows as a flag: typer 0.29 renders every boolean flag's type as `<bool>`
  (`--json  <bool>`, even `--help <bool>`): its `TyperOption.display_type_rich` shows the
  metavar when one is set, else the type. A flag takes no value, so its metavar is set empty;
- a docstring's paragraph is one paragraph: in rich markup mode typer keeps the single line
  breaks of a wrapped docstring, in the command list and in the later paragraphs of a
  command's help, so both broke mid-sentence. The help text's lines are joined per paragraph
  (a paragraph starting with `\\b`, or holding indented or `- ` lines, is kept as written);
- the example: `@app.command(epilog=example("penstock status --json"))`.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup, TyperOption

from penstock.cli.render import err_console

if TYPE_CHECKING:
    from collections.abc import Callable

    from penstock.catalog import Project


def one_paragraph_per_block(text: str | None) -> str | None:
    """Help text with the lines of each paragraph joined (paragraphs split on blank lines)."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(_joined(paragraph) for paragraph in paragraphs)


def _joined(paragraph: str) -> str:
    lines = paragraph.splitlines()
    if paragraph.startswith("\b") or any(
        line[:1].isspace() or line.lstrip().startswith("- ") for line in lines
    ):
        return paragraph
    return " ".join(line.strip() for line in lines)


def _flags_as_flags(params: list[Any]) -> list[Any]:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # shown instead of the type (`<bool>`); a flag takes no value
    return params


class HelpCommand(TyperCommand):
    """A command whose help shows flags as flags and docstring paragraphs as paragraphs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["help"] = one_paragraph_per_block(kwargs.get("help"))
        super().__init__(*args, **kwargs)

    def get_params(self, ctx: Any) -> list[Any]:  # typer's vendored click Context
        return _flags_as_flags(super().get_params(ctx))


class HelpGroup(TyperGroup):
    """`penstock` itself: its own options' help as `HelpCommand`'s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["help"] = one_paragraph_per_block(kwargs.get("help"))
        super().__init__(*args, **kwargs)

    def get_params(self, ctx: Any) -> list[Any]:  # typer's vendored click Context
        return _flags_as_flags(super().get_params(ctx))


class PenstockTyper(typer.Typer):
    """A Typer app whose commands are `HelpCommand`s unless a command names its own class."""

    def command(  # type: ignore[override]  # typer's keywords, passed through
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return super().command(name, cls=cls or HelpCommand, **kwargs)


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
        "--select", "-s", metavar="NAMES", help="Object name(s) or group:G, comma-separated."
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
