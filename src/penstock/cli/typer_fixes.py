"""Where penstock's CLI works around typer 0.29: help that reads right, and a fast start.

`PenstockTyper` makes every command a `HelpCommand` (unless a command names its own class);
`penstock` itself is a `HelpGroup`. They change three things, each tested
(tests/cli/test_help_text.py, tests/cli/test_startup_imports.py):

- **A flag shows as a flag.** typer 0.29 renders every boolean flag's type, `--json <bool>`,
  even `--help <bool>`: `TyperOption.display_type_rich` shows the metavar when one is set,
  else the type. A flag takes no value, so its metavar is set empty.
- **A docstring's paragraph is one paragraph.** In rich markup mode typer keeps the single
  line breaks of a wrapped docstring, in `penstock --help`'s command list and in the later
  paragraphs of a command's help, so both broke mid-sentence. Each paragraph's lines are
  joined (a paragraph starting with `\\b`, or holding indented or `- ` lines, is kept).
- **No pydantic for plain values.** typer 0.29 coerces every parameter value through a
  pydantic `TypeAdapter`, which imports pydantic (~0.07 s, a third of `penstock status`). A
  parameter typed `str`, `int`, `bool` or `pathlib.Path` with no constraint (no parser, range,
  choice or path option) is coerced directly: `str` as is, `int` by `int()`, `bool` from
  pydantic's words (true/false, 1/0, yes/no, on/off, t/f, y/n), a `Path` by typer's own
  `coerce_cli_path` (the same existence and permission checks). This uses typer's private
  `typer._coercion.RuntimeParam`; on a typer without it nothing is changed.
- **Help without markdown.** typer's help renderer (`typer.rich_utils`) imports
  `rich.markdown` (and through it markdown-it) and `rich.traceback` at its top, ~0.055 s of
  the 0.16 s `penstock --help` took, for markdown help and pretty tracebacks, neither of which
  penstock uses (rich markup mode, `pretty_exceptions_enable=False`). Help imports it with
  stand-ins for those two names (`light_rich_utils`), which load the real classes on first use.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

_PLAIN = (str, int, bool, Path)
# pydantic's lax booleans, which typer's adapter accepts (an empty value is false)
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"", "0", "f", "false", "n", "no", "off"})


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


def _fixed(params: list[Any]) -> list[Any]:
    plain = _plain_value_class()
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""  # shown instead of the type (`<bool>`); a flag takes no value
        if plain is not None and getattr(param, "_runtime_param", False) is None:
            descriptor = getattr(param, "type_descriptor", None)
            if descriptor is not None and _is_plain(descriptor):
                param._runtime_param = plain(
                    parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
                )
    return params


def _is_plain(descriptor: Any) -> bool:
    info = descriptor.parameter_info
    if descriptor.annotation not in _PLAIN or descriptor.file_annotation is not None:
        return False
    if info.parser is not None or info.min is not None or info.max is not None:
        return False
    if getattr(descriptor, "is_choice", True):
        return False
    path_options = (info.exists, info.resolve_path, info.allow_dash, info.path_type)
    return descriptor.annotation is not Path or not any(path_options)


@functools.cache
def _plain_value_class() -> Any:
    """A typer runtime coercion for plain values without pydantic; None on another typer."""
    try:
        base = importlib.import_module("typer._coercion").RuntimeParam
        coerce_cli_path = importlib.import_module("typer._param_types").coerce_cli_path
    except (ImportError, AttributeError):
        return None

    class PlainValue(base):  # type: ignore[misc, valid-type]  # typer's (private) base class
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if self.annotation is str:
                return value if isinstance(value, str) else str(value)
            if self.annotation is bool:
                if isinstance(value, bool):
                    return value
                word = str(value).strip().lower()
                if word in _TRUE or word in _FALSE:
                    return word in _TRUE
                raise typer.BadParameter(f"{value!r} is not a boolean", ctx=ctx, param=param)
            if self.annotation is int:
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
                try:
                    return int(str(value).strip())
                except ValueError:
                    raise typer.BadParameter(
                        f"{value!r} is not a whole number", ctx=ctx, param=param
                    ) from None
            path = value if isinstance(value, Path) else Path(value)
            return coerce_cli_path(path, self.parameter_info, path_type=Path, param=param, ctx=ctx)

    return PlainValue


class _Markdown:
    """Stands in for `rich.markdown.Markdown` in typer's help renderer: the real one, made on
    first use."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from rich.markdown import Markdown

        return Markdown(*args, **kwargs)


class _Traceback:
    """Stands in for `rich.traceback.Traceback` in typer's help renderer (see _Markdown)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from rich.traceback import Traceback

        return Traceback(*args, **kwargs)

    @classmethod
    def from_exception(cls, *args: Any, **kwargs: Any) -> Any:
        from rich.traceback import Traceback

        return Traceback.from_exception(*args, **kwargs)


_STAND_INS = (("rich.markdown", "Markdown", _Markdown), ("rich.traceback", "Traceback", _Traceback))


def light_rich_utils() -> None:
    """Import typer's help renderer with stand-ins for rich.markdown and rich.traceback.

    The stand-in modules are in `sys.modules` only while `typer.rich_utils` imports, so any
    later `import rich.markdown` gets the real module. Nothing changes when the renderer, or
    either real module, is already loaded.
    """
    if "typer.rich_utils" in sys.modules:
        return
    placed: dict[str, types.ModuleType] = {}
    for name, attribute, stand_in in _STAND_INS:
        if name not in sys.modules:
            module = types.ModuleType(name, "penstock's stand-in while typer.rich_utils imports")
            setattr(module, attribute, stand_in)
            placed[name] = sys.modules[name] = module
    try:
        importlib.import_module("typer.rich_utils")
    finally:
        for name, module in placed.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


class HelpCommand(TyperCommand):
    """A command whose help shows flags as flags and docstring paragraphs as paragraphs, and
    whose plain values are coerced without pydantic."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["help"] = one_paragraph_per_block(kwargs.get("help"))
        super().__init__(*args, **kwargs)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        light_rich_utils()
        super().format_help(ctx, formatter)

    def get_params(self, ctx: Any) -> list[Any]:  # ctx: typer's vendored click Context
        return _fixed(super().get_params(ctx))


class HelpGroup(TyperGroup):
    """`penstock` itself, fixed as `HelpCommand`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["help"] = one_paragraph_per_block(kwargs.get("help"))
        super().__init__(*args, **kwargs)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        light_rich_utils()
        super().format_help(ctx, formatter)

    def get_params(self, ctx: Any) -> list[Any]:
        return _fixed(super().get_params(ctx))


class PenstockTyper(typer.Typer):
    """A Typer app whose commands are `HelpCommand`s unless a command names its own class."""

    def command(  # type: ignore[override]  # typer's keywords, passed through
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return super().command(name, cls=cls or HelpCommand, **kwargs)
