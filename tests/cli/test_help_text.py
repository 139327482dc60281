"""Help that reads right: flags show as flags, every command has an example, a docstring's
paragraph stays one paragraph (in `penstock --help`'s command list and in a command's help)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import typer

from penstock.cli.shared import app, example
from penstock.cli.typer_fixes import one_paragraph_per_block

Cli = Callable[..., tuple[int, str, str]]


# Commands whose example another change adds (issue 6: the quarantine engineer owns
# cli/quarantine_command.py and the new `query` command). Empty this once they land.
def commands() -> dict[str, typer.core.TyperCommand]:
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    return dict(group.commands)  # type: ignore[arg-type]


def help_of(cli: Cli, *words: str) -> str:
    code, out, err = cli(*words, "--help")
    assert code == 0, err
    return out


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render help 200 columns wide: each command's summary then fits one line."""
    monkeypatch.setenv("COLUMNS", "200")


def test_no_help_shows_a_type_for_a_flag(cli: Cli) -> None:
    pages = {"penstock": help_of(cli)} | {name: help_of(cli, name) for name in commands()}
    assert len(pages) >= 10, sorted(pages)
    for name, page in pages.items():
        assert "<bool>" not in page, (name, page)
        # the flags are listed, with their help on the same line and no type between
        flag_lines = [line for line in page.splitlines() if line.startswith("│ --help")]
        assert flag_lines, (name, page)
        (help_line,) = flag_lines
        words = help_line.strip("│ ").split()
        assert words[:2] == ["--help", "Show"], (name, help_line)
    status = pages["status"]
    (json_line,) = [line for line in status.splitlines() if line.startswith("│ --json")]
    assert json_line.strip("│ ").split()[:2] == ["--json", "Print"]
    assert "--debug" in pages["penstock"] and "--debug  <" not in pages["penstock"]


def test_every_command_has_an_example(cli: Cli) -> None:
    found = commands()
    assert {"init", "run", "rebuild", "status", "runs", "logs", "batches", "check"} <= set(found)
    for name, command in found.items():
        assert command.epilog and command.epilog.startswith("Example"), name
        page = help_of(cli, name)
        lines = [line.strip() for line in page.splitlines()]
        at = lines.index("Example:") if "Example:" in lines else lines.index("Examples:")
        shown = [line for line in lines[at + 1 :] if line]
        assert shown and all(line.startswith("penstock ") for line in shown), (name, shown)
        # the example is a command that penstock knows
        assert shown[0].split()[1] == name, (name, shown)


def test_an_example_is_shown_as_written(cli: Cli) -> None:
    assert example("penstock run --select orders") == ("Example:\n\n  penstock run --select orders")
    # rich markup in an example is escaped, so what looks like a tag is shown
    assert example("penstock logs [bold]") == "Example:\n\n  penstock logs \\[bold]"
    page = help_of(cli, "batches")
    assert 'penstock batches skip orders orders-354e --reason "resent as orders_0102b.csv"' in page


def test_a_wrapped_docstring_is_one_paragraph() -> None:
    text = """An object's staged batches (loaded, pending, failed, skipped); skip a batch that
    cannot load, so the later batches of its object go on.

    A second paragraph, also
    wrapped.

    - a list
    - stays a list
    """
    assert one_paragraph_per_block(text) == (
        "An object's staged batches (loaded, pending, failed, skipped); skip a batch that "
        "cannot load, so the later batches of its object go on.\n\n"
        "A second paragraph, also wrapped.\n\n"
        "- a list\n- stays a list"
    )
    assert one_paragraph_per_block("\b\nkept\nas is") == "\b\nkept\nas is"
    assert one_paragraph_per_block(None) is None


def test_the_command_list_shows_each_summary_on_one_line(cli: Cli) -> None:
    """`batches` and `quarantine` have two-line docstrings: at 200 columns each of them (and
    every other summary) is one line of the command list, not broken where the source is."""
    page = help_of(cli)
    listed = {}
    for line in page.splitlines():
        cells = line.strip("│ ").split(maxsplit=1)
        if line.startswith("│ ") and cells and cells[0] in commands():
            listed[cells[0]] = cells[1] if len(cells) > 1 else ""
    assert set(listed) == set(commands())
    rows = [line for line in page.splitlines() if line.startswith("│ ")]
    # no continuation rows: every row in the list starts with a command name
    commands_panel = rows[rows.index(next(r for r in rows if r.split()[1] == "init")) :]
    assert all(row.split()[1] in commands() for row in commands_panel), commands_panel
    assert listed["batches"].rstrip(" │").endswith("so the later batches of its object go on.")
