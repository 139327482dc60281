"""`penstock lineage OBJECT`: where an object's data came from and where it goes, as the
metadata store recorded it (observe/lineage_graph.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.markup import escape

from penstock.cli.render import console, print_json, table
from penstock.cli.shared import JsonOpt, ProjectOpt, app, example
from penstock.errors import UsageError

if TYPE_CHECKING:
    from penstock.observe.lineage_graph import LineageGraph

Format = Literal["table", "mermaid", "dot"]
HOW = {"TRANSFORMATION": "typed", "IDENTITY": "as is"}


@app.command(
    epilog=example(
        "penstock lineage orders --upstream",
        "penstock lineage orders --format mermaid",
        "penstock lineage orders --format dot | dot -Tsvg > orders.svg",
    )
)
def lineage(
    object_name: Annotated[str, typer.Argument(metavar="OBJECT", help="The object.")],
    project: ProjectOpt = Path(),
    upstream: Annotated[
        bool, typer.Option("--upstream", help="Only what feeds the object's table.")
    ] = False,
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Only what reads the object's table.")
    ] = False,
    fmt: Annotated[
        str,
        typer.Option("--format", metavar="FORMAT", help="table (default), mermaid or dot."),
    ] = "table",
    as_json: JsonOpt = False,
) -> None:
    """The object's lineage: datasets (landing files, the stage zone, its table, its
    quarantine) joined by the jobs that read and wrote them, and where each column of its
    table comes from.

    Recorded by every run in the metadata store (kept `retention: lineage`); landing files and
    staged batches of one directory show as one node. Both directions unless --upstream or
    --downstream."""
    from penstock.catalog.outline import read_outline
    from penstock.observe import lineage_graph
    from penstock.observe.store import MetadataStore

    if fmt not in ("table", "mermaid", "dot"):
        raise UsageError(f"--format must be table, mermaid or dot, got '{fmt}'")
    if upstream and downstream:
        raise UsageError("give --upstream or --downstream, not both (neither: both directions)")
    proj = read_outline(project)
    names = [o.name for o in proj.objects]
    if object_name not in names:
        raise UsageError(f"unknown object '{object_name}' (objects: {', '.join(names) or 'none'})")
    direction: lineage_graph.Direction = (
        "upstream" if upstream else "downstream" if downstream else "both"
    )
    with MetadataStore(proj.metadata_url) as store:
        graph = lineage_graph.read_graph(store.engine, proj.name, object_name, proj.root, direction)
    if as_json:
        print_json(graph.as_dict())
    elif fmt == "mermaid":
        print(lineage_graph.mermaid(graph))
    elif fmt == "dot":
        print(lineage_graph.dot(graph))
    else:
        print_table(graph)


def print_table(graph: LineageGraph) -> None:
    labels = {n.id: n.label for n in graph.nodes}
    if graph.edges:
        console.print(
            table(
                f"Lineage of {graph.object} ({graph.direction})",
                ["from", "job", "to", "steps", "last"],
                [
                    (
                        labels[e.source],
                        e.job,
                        labels[e.target],
                        e.steps,
                        e.last_at.strftime("%Y-%m-%d %H:%M:%S") if e.last_at else None,
                    )
                    for e in graph.edges
                ],
                text_columns=["from", "job", "to", "last"],
            )
        )
    else:
        console.print(
            escape(f"{graph.object}: nothing {graph.direction} of its table is recorded"),
            highlight=False,
        )
    if graph.columns:
        console.print(
            table(
                f"Columns of {graph.object}'s table, read from the staged batches",
                ["column", "source column", "how"],
                [
                    (
                        name,
                        ", ".join(i["field"] for i in inputs),
                        ", ".join(
                            HOW.get(i["transformation"], i["transformation"]) for i in inputs
                        ),
                    )
                    for name, inputs in graph.columns.items()
                ],
                text_columns=["column", "source column", "how"],
            )
        )
