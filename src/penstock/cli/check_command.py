"""`penstock check`: the project files, the warehouse, the store and the sources."""

from __future__ import annotations

from pathlib import Path

import typer

from penstock.cli.render import (
    console,
    print_json,
)
from penstock.cli.shared import JsonOpt, ProjectOpt, app, example


@app.command(epilog=example("penstock check -p shop"))
def check(project: ProjectOpt = Path(), as_json: JsonOpt = False) -> None:
    """Validate the project files and reach its warehouse, metadata store and sources."""
    from penstock.engine.check import check_project

    report = check_project(project)
    if as_json:
        print_json(report)
    else:
        for item in report["checks"]:
            mark = "[green]ok[/]" if item["ok"] else "[red]error[/]"
            if item["ok"] and item.get("warning"):
                mark = "[yellow]warning[/]"
            console.print(f"{mark}  {item['what']}: {item['detail']}")
    if not report["ok"]:
        raise typer.Exit(2)
