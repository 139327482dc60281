"""`penstock discover SOURCE [TABLE|GLOB...]`: read a database source's catalog, or a files
source's files, and print object YAML ready to paste into penstock.yml (or `--json`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from penstock.cli.shared import JsonOpt, ProjectOpt, app, example, load

EXAMPLES = example(
    "penstock discover shop_db",
    "penstock discover shop_db orders sales.customers > objects/shop.yml",
    "penstock discover shop_db orders --json",
    "penstock discover landing                      # a files source: one object per folder",
    "penstock discover landing 'penguins/*.csv'",
)


@app.command(epilog=EXAMPLES)
def discover(
    source: Annotated[str, typer.Argument(help="A database or files source of the project.")],
    tables: Annotated[
        list[str] | None,
        typer.Argument(
            help="Tables (name or schema.name; all of the database's by default), or for a "
            "files source globs under its path (by default one per kind of file in each "
            "folder: files named alike, or with the same columns)."
        ),
    ] = None,
    project: ProjectOpt = Path(),
    as_json: JsonOpt = False,
) -> None:
    """Print object YAML for a database's tables or a files source's files.

    A database's: columns with their contract types, required from NOT NULL, key from the
    primary key, a suggested cursor. Files: the types, missing-value tokens, date formats and
    number separators that read every value of a sample of each glob's files: up to 8 of them,
    the first, the last and others between. A glob whose files cannot be read is named on stderr
    (exit code 1); the objects of the others are printed all the same."""
    from penstock.catalog.files_source import FilesSource
    from penstock.errors import UsageError
    from penstock.sources.discover import discover_tables, to_yaml

    proj = load(project)
    if isinstance(proj.sources.get(source), FilesSource):
        from penstock.sources.file_discover import discover_files, files_yaml

        problems: list[UsageError] = []
        with _globs_progress(as_json) as progress:
            files = discover_files(proj, source, tables or [], problems, progress)
        if problems and not files:
            raise problems[0]
        if as_json:
            payload = {
                "objects": [f.to_dict(source) for f in files],
                "errors": [p.to_dict() for p in problems],
            }
            typer.echo(json.dumps(payload, indent=2, default=str))
        else:
            typer.echo(files_yaml(files, source), nl=False)
        for problem in problems:  # the objects of the other globs are printed all the same
            typer.echo(f"error: {problem.message}", err=True)
        if problems:
            raise typer.Exit(1)
        return
    found = discover_tables(proj, source, tables or [])
    if as_json:
        typer.echo(json.dumps({"objects": [t.to_dict(source) for t in found]}, indent=2))
    else:
        typer.echo(to_yaml(found, source), nl=False)


@contextmanager
def _globs_progress(as_json: bool) -> Iterator[Callable[[int, int, str], None]]:
    """A bar on stderr (a terminal only) counting the globs sampled, the current one named."""
    from penstock.cli.render import counting_bar

    bar = counting_bar("[bold]discover", shown=not as_json, transient=True)
    task = bar.add_task("", total=None, detail="")

    def advance(done: int, total: int, glob: str) -> None:
        bar.update(task, completed=done, total=total, detail=glob)

    with bar:
        yield advance
