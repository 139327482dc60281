"""`penstock discover SOURCE [TABLE...]`: read a database source's catalog and print object
YAML ready to paste into penstock.yml (or `--json`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from penstock.cli.shared import JsonOpt, ProjectOpt, app, example, load

EXAMPLES = example(
    "penstock discover shop_db",
    "penstock discover shop_db orders sales.customers > objects/shop.yml",
    "penstock discover shop_db orders --json",
)


@app.command(epilog=EXAMPLES)
def discover(
    source: Annotated[str, typer.Argument(help="A database source of the project.")],
    tables: Annotated[
        list[str] | None,
        typer.Argument(help="Tables (name or schema.name); all of the database's by default."),
    ] = None,
    project: ProjectOpt = Path(),
    as_json: JsonOpt = False,
) -> None:
    """Print object YAML for a database's tables: columns with their contract types,
    required from NOT NULL, key from the primary key, a suggested cursor."""
    from penstock.sources.discover import discover_tables, to_yaml

    proj = load(project)
    found = discover_tables(proj, source, tables or [])
    if as_json:
        typer.echo(json.dumps({"objects": [t.to_dict(source) for t in found]}, indent=2))
    else:
        typer.echo(to_yaml(found, source), nl=False)
