"""`penstock plan`: what a run would do, in which order and why, without doing any of it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape

from penstock.cli.render import console, err_console, print_json, table
from penstock.cli.shared import JsonOpt, ProjectOpt, SelectOpt, app, example, load
from penstock.errors import UsageError

if TYPE_CHECKING:
    from penstock.engine.plan import Plan, Unit
    from penstock.engine.plan_work import ModelWork, ObjectWork

PlanFormat = Literal["text", "mermaid", "dot"]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        metavar="text|mermaid|dot",
        help="text: a table per object; mermaid: a Mermaid flowchart; dot: a Graphviz digraph "
        "(e.g. `penstock plan -f dot | dot -Tsvg > plan.svg`).",
    ),
]
_FORMATS = ("text", "mermaid", "dot")


@app.command(
    epilog=example(
        "penstock plan --select +orders", "penstock plan --format mermaid", "penstock plan --json"
    )
)
def plan(
    project: ProjectOpt = Path(),
    select: SelectOpt = None,
    output: FormatOpt = "text",
    as_json: JsonOpt = False,
) -> None:
    """What `penstock run` would do, in its order, and why; nothing is changed.

    The catalog is a DAG with one node per object and step: `extract` (find and stage new
    landing files) and `load` (validate and load the staged batches). An object's load waits
    for its extract; its extract waits for the load of every object it `depends_on` and of
    every object in a group its group runs `after` (`groups:`). A cycle is an error naming it.

    Per object the plan says what a run would do now: stage N new or changed files, load M
    staged batches, blocked by a failed batch (tried again first), or nothing new; and its
    upstream. --json lists the nodes (id, object, step, depends_on, reason) and the objects
    with their work; --format mermaid or dot draws the DAG.
    """
    if output not in _FORMATS:
        raise UsageError(f"unknown --format '{output}' (formats: {', '.join(_FORMATS)})")
    if as_json and output != "text":
        raise UsageError("--json and --format draw the plan two ways: give one of them")
    from penstock.engine.plan import build_plan

    proj = load(project)
    dag = build_plan(proj)
    names = dag.select(select)
    if output != "text":
        from penstock.engine.plan_draw import to_dot, to_mermaid

        drawn = to_mermaid(dag, names) if output == "mermaid" else to_dot(dag, names)
        print(drawn, end="")
        return
    from penstock.engine.plan_work import ModelWork, plan_work

    notes: list[str] = []
    work: list[ObjectWork | ModelWork] = list(
        plan_work(proj, [proj.objects[n] for n in dag.objects_of(names)], notes)
    )
    if dag.models_of(names):
        from penstock.transform.model_set import load_models

        models = load_models(proj)
        work += [
            ModelWork(n, models[n].materialized, models[n].upstream) for n in dag.models_of(names)
        ]
    if as_json:
        print_json(_as_json(dag, names, work, select, notes))
        return
    _print_text(dag, names, work, notes)


def _upstream(unit: Unit, selected: set[str]) -> list[dict[str, Any]]:
    return [
        {"object": up.unit, "why": up.why, "detail": up.detail, "selected": up.unit in selected}
        for up in unit.upstream
    ]


def _as_json(
    dag: Plan,
    names: list[str],
    work: list[ObjectWork | ModelWork],
    select: str | None,
    notes: list[str],
) -> dict[str, Any]:
    selected = set(names)
    by_name = {w.object: w for w in work}
    return {
        "project": dag.project.name,
        "selector": select,
        "nodes": [
            {
                "id": node.id,
                "object": node.unit,
                "kind": node.kind,
                "step": node.step,
                "group": node.group,
                "depends_on": node.depends_on,
                "reason": node.reason,
                "dependencies": [vars(d) for d in node.dependencies],
            }
            for node in dag.nodes_of(names)
        ],
        "objects": [
            {
                "object": name,
                "kind": dag.units[name].kind,
                "group": dag.units[name].group,
                "state": by_name[name].state,
                "would": by_name[name].summary,
                "work": vars(by_name[name]),
                "upstream": _upstream(dag.units[name], selected),
            }
            for name in names
        ],
        "notes": notes,
    }


def _print_text(
    dag: Plan, names: list[str], work: list[ObjectWork | ModelWork], notes: list[str]
) -> None:
    selected = set(names)
    by_name = {w.object: w for w in work}
    rows = []
    for index, name in enumerate(names, start=1):
        unit = dag.units[name]
        ups: dict[str, list[str]] = {}
        for up in unit.upstream:
            shown = up.unit if up.unit in selected else f"{up.unit} (not selected)"
            why = "depends_on" if up.why == "depends_on" else up.detail
            ups.setdefault(why, []).append(shown)
        upstream = "; ".join(f"{', '.join(u)} ({why})" for why, u in ups.items())
        rows.append((index, name, unit.group, by_name[name].summary, upstream or None))
    console.print(
        table(
            f"Plan for {dag.project.name}: {len(dag.objects_of(names))} object(s), steps "
            "extract → load each"
            + (
                f"; {len(dag.models_of(names))} model(s), built after their inputs"
                if dag.models_of(names)
                else ""
            ),
            ["#", "object", "group", "would", "upstream"],
            rows,
            text_columns=["object", "group", "would", "upstream"],
        )
    )
    if not names:
        console.print("Nothing selected.")
    for note in notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    console.print(
        "Nothing was changed. Run it: [bold]penstock run[/]"
        + (" [bold]--select …[/]" if len(names) < len(dag.units) else ""),
        highlight=False,
    )
