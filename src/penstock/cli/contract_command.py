"""`penstock contract`: compare two versions of the contracts (`diff`), write an object's
contract as ODCS (`export`), and turn an ODCS contract into penstock objects (`import`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from penstock.cli.render import console, print_json, table
from penstock.cli.shared import JsonOpt, app, example
from penstock.cli.typer_fixes import HelpGroup, PenstockTyper
from penstock.errors import UsageError

contract_app = PenstockTyper(
    name="contract",
    cls=HelpGroup,
    help="Data contracts: diff two versions, export to ODCS, import from ODCS.",
    no_args_is_help=True,
)
app.add_typer(
    contract_app,
    epilog=example(
        "penstock contract diff old/penstock.yml penstock.yml",
        "penstock contract export orders --output orders.odcs.yaml",
        "penstock contract import orders.odcs.yaml --output objects",
    ),
)


@contract_app.command(
    epilog=example(
        "penstock contract diff main/penstock.yml penstock.yml",
        "penstock contract diff objects/orders.yml new/orders.yml --object orders --json",
    )
)
def diff(
    old: Annotated[Path, typer.Argument(help="The old contracts: a project or an object file.")],
    new: Annotated[Path, typer.Argument(help="The new contracts: a project or an object file.")],
    only: Annotated[
        str | None, typer.Option("--object", metavar="NAME", help="Compare this object only.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every change between two versions of the contracts, object by object, and whether it
    breaks; exits 1 when a change is breaking.

    OLD and NEW are project files (penstock.yml, with their includes), project directories or
    object files (holding `objects:`). Breaking: data the old contract accepted may fail, or
    readers of the table may break (a removed column, a narrower type, a new required column,
    a tighter check, another key)."""
    from penstock.contract.diff import diff_contracts
    from penstock.contract.read import read_contracts

    before, after = read_contracts(old), read_contracts(new)
    if only is not None and only not in before and only not in after:
        names = ", ".join(dict.fromkeys([*before, *after])) or "none"
        raise UsageError(f"unknown object '{only}' (objects: {names})")
    changes = diff_contracts(before, after, only=only)
    breaking = [c for c in changes if c.breaking]
    if as_json:
        print_json([c.to_dict() for c in changes])
    elif not changes:
        console.print("no contract changes")
    else:
        console.print(
            table(
                f"Contract changes: {len(changes)}, {len(breaking)} breaking",
                ["change", "object", "column", "breaking", "detail"],
                [
                    (
                        c.kind,
                        c.object,
                        c.column,
                        "[red]yes[/]" if c.breaking else "no",
                        escape(c.detail),
                    )
                    for c in changes
                ],
                text_columns=["object", "column", "breaking", "detail"],
            )
        )
    if breaking:
        raise typer.Exit(1)
