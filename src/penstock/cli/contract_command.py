"""`penstock contract`: compare two versions of the contracts (`diff`), write an object's
contract as ODCS (`export`), and turn an ODCS contract into penstock objects (`import`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

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
    old: Annotated[
        Path,
        typer.Argument(help="The old contracts: a project, an object file or an ODCS contract."),
    ],
    new: Annotated[
        Path,
        typer.Argument(help="The new contracts: a project, an object file or an ODCS contract."),
    ],
    only: Annotated[
        str | None, typer.Option("--object", metavar="NAME", help="Compare this object only.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every change between two versions of the contracts, object by object, and whether it
    breaks; exits 1 when a change is breaking.

    OLD and NEW are project files (penstock.yml, with their includes), project directories,
    object files (holding `objects:`) or ODCS contracts. Breaking: data the old contract
    accepted may fail, or readers of the table may break (a removed column, a narrower type,
    a new required column, a tighter check, another key)."""
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
    as_json: JsonOpt = False,
) -> None:
    """Write an object's contract as an Open Data Contract Standard v3.1.0 document (YAML;
    JSON with --json):
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
    contract = export_odcs(proj, spec)
    if as_json and output is None:
        print_json(contract)
        return
    text = (
        json.dumps(contract, indent=2, ensure_ascii=False) + "\n"
        if as_json
        else yaml.safe_dump(contract, sort_keys=False, allow_unicode=True, width=100)
    )
    if output is None:
        print(text, end="")
        return
    from penstock.lake.atomic import atomic_target

    with atomic_target(output) as tmp:
        tmp.write_text(text, encoding="utf-8")
    err_console.print(f"wrote {escape(str(output))}", highlight=False)


@contract_app.command(
    "import",
    epilog=example(
        "penstock contract import orders.odcs.yaml",
        "penstock contract import orders.odcs.yaml --output objects --source landing --json",
    ),
)
def import_(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="An ODCS contract (YAML).")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="DIR", help="Write the object files here."),
    ] = Path("objects"),
    source: Annotated[
        str,
        typer.Option("--source", metavar="NAME", help="The files source the objects read."),
    ] = "landing",
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Turn an ODCS contract into penstock object files, one per schema object
    (`DIR/<object>.yml`, for penstock.yml to `include:`).

    What penstock cannot map (servers, SLA properties, types it has no equivalent for,
    quality rules it cannot enforce row by row...) is listed as warnings naming the ODCS
    path, and as comments at the top of each file."""
    from penstock.catalog.columns import IDENTIFIER, IDENTIFIER_RULE
    from penstock.catalog.yaml_lines import load_yaml
    from penstock.contract.odcs_import import import_odcs
    from penstock.contract.yaml_out import object_file
    from penstock.lake.atomic import atomic_target

    if not IDENTIFIER.match(source):
        raise UsageError(f"source name '{source}' {IDENTIFIER_RULE}")
    document = load_yaml(file, str(file))
    result = import_odcs(document.data, source=source)
    targets = {o.name: output / f"{o.name}.yml" for o in result.objects}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not force:
        raise UsageError(f"would overwrite {', '.join(existing)} (--force overwrites)")
    contract = document.data.get("id", "?")
    for imported in result.objects:
        comments = [
            f"Imported from {file.name} (ODCS contract {contract}) by penstock contract import.",
        ]
        if imported.warnings:
            comments.append("Not mapped:")
            comments += [f"  {w.path}: {w.message}" for w in imported.warnings]
        text = object_file(imported.name, imported.spec, comments)
        with atomic_target(targets[imported.name]) as tmp:
            tmp.write_text(text, encoding="utf-8")
    rows: list[dict[str, Any]] = [
        {
            "object": o.name,
            "file": str(targets[o.name]),
            "columns": len(o.spec["columns"]),
            "key": list(o.spec.get("key", [])),
            "checks": len(o.spec.get("checks", [])),
        }
        for o in result.objects
    ]
    if as_json:
        print_json(
            {
                "objects": rows,
                "warnings": [{"path": w.path, "message": w.message} for w in result.warnings],
            }
        )
        return
    for w in result.warnings:
        err_console.print(
            f"[yellow]warning:[/] {escape(w.path)}: {escape(w.message)}", highlight=False
        )
    if not rows:
        console.print(f"{escape(str(file))} declares no schema objects: nothing written")
        return
    console.print(
        table(
            f"Imported {len(rows)} object(s) from {file.name}, {len(result.warnings)} warning(s)",
            ["object", "file", "columns", "key", "checks"],
            [
                (r["object"], r["file"], r["columns"], ", ".join(r["key"]), r["checks"])
                for r in rows
            ],
            text_columns=["file", "key"],
        )
    )
    console.print(
        escape(
            f"include them with `include: [{output}/*.yml]` and declare source '{source}' "
            "in penstock.yml"
        ),
        highlight=False,
    )
