"""`penstock contract`: compare two versions of the contracts (`diff`), write an object's
contract as ODCS (`export`), and turn an ODCS contract into penstock objects (`import`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from penstock.cli.render import console, err_console, print_json, table
from penstock.cli.shared import JsonOpt, ProjectOpt, app, example, load
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


@contract_app.command(
    epilog=example(
        "penstock contract export orders",
        "penstock contract export orders --format odcs --output orders.odcs.yaml",
    )
)
def export(
    name: Annotated[str, typer.Argument(metavar="OBJECT", help="The object to export.")],
    fmt: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="The contract standard: odcs.")
    ] = "odcs",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write here instead of stdout."),
    ] = None,
    project: ProjectOpt = Path(),
) -> None:
    """Write an object's contract as an Open Data Contract Standard v3.1.0 document (YAML):
    its columns with their types, required and key, its checks as quality rules named with
    penstock's reason names, its owner and the warehouse as the server."""
    import yaml

    from penstock.contract.odcs_export import export_odcs

    if fmt.lower() != "odcs":
        raise UsageError(f"unknown format '{fmt}' (available: odcs)")
    proj = load(project)
    spec = proj.objects.get(name)
    if spec is None:
        names = ", ".join(proj.objects) or "none"
        raise UsageError(f"unknown object '{name}' (objects: {names})")
    text = yaml.safe_dump(export_odcs(proj, spec), sort_keys=False, allow_unicode=True, width=100)
    if output is None:
        print(text, end="")
        return
    from penstock.lake.atomic import atomic_target

    with atomic_target(output) as tmp:
        tmp.write_text(text, encoding="utf-8")
    err_console.print(f"wrote {escape(str(output))}", highlight=False)
