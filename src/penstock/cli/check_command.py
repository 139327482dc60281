"""`penstock check`: the project files, the warehouse, the store, the sources and their data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from penstock.cli.render import (
    console,
    print_json,
)
from penstock.cli.shared import JsonOpt, ProjectOpt, app, example
from penstock.defaults import CHECK_SAMPLE_ROWS

_MARKS = {"ok": "[green]ok[/]     ", "warning": "[yellow]warning[/]", "error": "[red]error[/]  "}


@app.command(epilog=example("penstock check --sample 10000"))
def check(
    project: ProjectOpt = Path(),
    sample: Annotated[
        int,
        typer.Option(
            "--sample",
            metavar="ROWS",
            min=1,
            help="Records to read from the first file of each object (only its head is read).",
        ),
    ] = CHECK_SAMPLE_ROWS,
    as_json: JsonOpt = False,
) -> None:
    """Validate the project, reach its stores and sources, sample each object's data.

    Each source is reached and timed: a files source's directory, a database's connection
    (`SELECT 1`), a REST API's base_url (one GET with its credentials, not retried).

    The head of each object's first file goes through staging and validation in a temporary
    directory; nothing is written to the project.

    Exits 2 when something is broken: the project, an unreachable store or source, a file
    that cannot be read, a required column missing from a header. Warnings (a glob matching
    no file, rows that would fail a rule, extra columns) keep exit code 0.
    """
    from penstock.engine.check import check_project

    report = check_project(project, sample_rows=sample)
    if as_json:
        print_json(report)
    else:
        for item in report["checks"]:
            mark = _MARKS[item["level"]]
            console.print(
                f"{mark}  {escape(item['what'])}: {escape(item['detail'])}", highlight=False
            )
            for line in item["details"]:
                console.print(f"           {escape(line)}", highlight=False)
    if not report["ok"]:
        raise typer.Exit(2)
