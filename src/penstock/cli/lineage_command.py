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
    from penstock.observe.column_trace import ColumnNode
    from penstock.observe.lineage_graph import LineageGraph

Format = Literal["table", "mermaid", "dot"]
HOW = {"TRANSFORMATION": "typed", "IDENTITY": "as is"}
MODEL_HOW = {"IDENTITY": "as is", "TRANSFORMATION": "computed", "AGGREGATION": "aggregated"}


@app.command(
    epilog=example(
        "penstock lineage orders --upstream",
        "penstock lineage orders --format mermaid",
        "penstock lineage orders --format dot | dot -Tsvg > orders.svg",
        "penstock lineage revenue.total    # where a model's column comes from",
    )
)
def lineage(
    object_name: Annotated[
        str,
        typer.Argument(
            metavar="OBJECT",
            help="The object or model; MODEL.COLUMN (or OBJECT.COLUMN): where that column's "
            "values come from.",
        ),
    ],
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

    For MODEL.COLUMN: the columns that feed it, through models of models, down to the
    objects' columns and their landing files or source tables.

    Recorded by every run in the metadata store (kept `retention: lineage`); landing files and
    staged batches of one directory show as one node. Both directions unless --upstream or
    --downstream."""
    from penstock.catalog.outline import read_outline
    from penstock.observe import lineage_graph
    from penstock.observe.column_trace import trace_column
    from penstock.observe.store import MetadataStore

    if fmt not in ("table", "mermaid", "dot"):
        raise UsageError(f"--format must be table, mermaid or dot, got '{fmt}'")
    if upstream and downstream:
        raise UsageError("give --upstream or --downstream, not both (neither: both directions)")
    from penstock.transform.files import model_files

    proj = read_outline(project)
    names = [o.name for o in proj.objects]
    models = [p.stem for p in model_files(proj.root)]
    unit, _, column = object_name.partition(".")
    if column and unit in names + models and fmt == "table":
        kinds = dict.fromkeys(names, "object") | dict.fromkeys(models, "model")
        tables = {o.table_name: o.name for o in proj.objects} | {m: m for m in models}
        with MetadataStore(proj.metadata_url) as store:
            node = trace_column(store.engine, proj.name, unit, column, kinds, tables)
        if as_json:
            print_json(node.as_dict())
        else:
            print_trace(node, proj.root)
        return
    if object_name not in names + models:
        raise UsageError(
            f"unknown object '{object_name}' (objects: {', '.join(names) or 'none'}"
            + (f"; models: {', '.join(models)}" if models else "")
            + ")"
        )
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
        print_table(graph, model=object_name in models)


def print_table(graph: LineageGraph, *, model: bool = False) -> None:
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
                f"Columns of {graph.object}'s table, "
                + ("from its SQL" if model else "read from the staged batches"),
                ["column", "source column", "how"],
                [
                    (
                        name,
                        ", ".join(
                            f"{i['dataset'].split('.', 1)[-1]}.{i['field']}"
                            if model
                            else i["field"]
                            for i in inputs
                        ),
                        ", ".join(
                            (MODEL_HOW if model else HOW).get(
                                i["transformation"], i["transformation"]
                            )
                            for i in inputs
                        ),
                    )
                    for name, inputs in graph.columns.items()
                ],
                text_columns=["column", "source column", "how"],
            )
        )


def print_trace(node: ColumnNode, root: Path) -> None:
    """The column and what feeds it, one line per column, indented by depth."""
    for depth, line in _trace_lines(node, root, 0):
        console.print(escape("  " * depth + line), highlight=False, soft_wrap=True)


def _trace_lines(node: ColumnNode, root: Path, depth: int) -> list[tuple[int, str]]:
    how = f"{MODEL_HOW.get(node.how, node.how)} from " if node.how else ""
    lines = [
        (
            depth,
            f"{'└ ' if depth else ''}{how}{node.unit}.{node.column} ({node.kind}, {node.dataset})",
        )
    ]
    if node.kind == "model" and not node.sources:
        lines.append((depth + 1, "(made of no column: a constant or count(*))"))
    for source in node.sources:
        lines += _trace_lines(source, root, depth + 1)
    if node.kind == "object":
        if node.stage_column:
            lines.append(
                (depth + 1, f"typed from column {node.stage_column} of its staged batches")
            )
        if node.origins:
            shown = [_relative(o, root) for o in node.origins]
            more = f" … ({node.origins_total} in all)" if node.origins_total > len(shown) else ""
            lines.append((depth + 1, f"read from: {', '.join(shown)}{more}"))
    return lines


def _relative(name: str, root: Path) -> str:
    try:
        return str(Path(name).relative_to(root.resolve()))
    except ValueError:
        return name
