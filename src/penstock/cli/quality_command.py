"""`penstock quality`: each object's DQ scorecard by dimension and its trend over recent
runs; `penstock anomalies`: the checkpoint metrics found outside their control limits."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from penstock.cli.render import console, pass_rate, print_json, table
from penstock.cli.shared import JsonOpt, ProjectOpt, app, example, when
from penstock.errors import UsageError

if TYPE_CHECKING:
    from penstock.catalog import Project
    from penstock.observe.dq_reads import Scorecard
    from penstock.observe.events import DimensionScore

ObjectArg = Annotated[
    str | None, typer.Argument(help="Only this object (default: every object).", show_default=False)
]
SPARKS = "▁▂▃▄▅▆▇█"


def _project(project: Path, object_name: str | None) -> Project:
    from penstock.cli.shared import load

    proj = load(project)
    if object_name is not None and object_name not in proj.objects:
        names = ", ".join(proj.objects) or "none"
        raise UsageError(f"unknown object '{object_name}' (objects: {names})")
    return proj


@app.command(epilog=example("penstock quality", "penstock quality orders --runs 30 --json"))
def quality(
    object_name: ObjectArg = None,
    project: ProjectOpt = Path(),
    runs: Annotated[
        int, typer.Option("--runs", min=1, help="How many recent runs the trend covers.")
    ] = 10,
    as_json: JsonOpt = False,
) -> None:
    """The data quality scorecard by dimension: each object's latest run, and the trend.

    Per object and dimension (completeness, validity, uniqueness, consistency, accuracy,
    timeliness) the score of its latest run (1 − rows failing / rows checked over the batches
    it loaded) and the weighted total, with the trend over its last --runs runs."""
    from penstock.observe.dq_reads import scorecards
    from penstock.observe.store import MetadataStore

    proj = _project(project, object_name)
    wanted = [object_name] if object_name else list(proj.objects)
    with MetadataStore(proj.metadata_url) as store:
        cards = scorecards(store, proj.name, proj.quality, objects=wanted, runs=runs)
    if as_json:
        print_json({"project": proj.name, "objects": [_card_json(c) for c in cards]})
        return
    if not cards:
        console.print("no batch has been scored yet: `penstock run` loads and scores them")
        return
    rows = []
    for card in cards:
        latest = card.latest
        for n, s in enumerate(latest.scores):
            trend = [r.score(s.dimension) for r in card.runs]
            rows.append(
                (
                    card.object if n == 0 else "",
                    s.dimension,
                    _percent(s),
                    f"{s.rows_failed:,} / {s.rows_checked:,}",
                    _spark([t.score if t else None for t in trend]),
                    _change(trend),
                )
            )
    console.print(
        table(
            f"Data quality of {proj.name}: each object's latest run, trend over its last "
            f"{runs} run(s) (oldest → newest)",
            ["object", "dimension", "score", "failing / checked", "trend", "vs previous"],
            rows,
            text_columns=["dimension", "trend"],
        )
    )
    console.print(
        "score = 1 − rows failing a rule of the dimension / rows checked; total: the weighted\n"
        "mean of the dimensions. Rows: penstock quarantine OBJECT · penstock anomalies",
        highlight=False,
    )


@app.command(epilog=example("penstock anomalies", "penstock anomalies orders --json"))
def anomalies(
    object_name: ObjectArg = None,
    project: ProjectOpt = Path(),
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Checkpoint metrics of loaded batches found outside their control limits.

    Rows in, quarantine rates (overall and per rule), null rates, duplicate rate, duration and
    freshness lag, judged against the object's earlier batches; the latest batches first."""
    from penstock.observe.dq_reads import anomalies as read_anomalies
    from penstock.observe.store import MetadataStore

    proj = _project(project, object_name)
    with MetadataStore(proj.metadata_url) as store:
        found = read_anomalies(store, proj.name, object=object_name, limit=limit)
    if as_json:
        print_json(
            {
                "project": proj.name,
                "anomalies": [
                    {
                        "object": a.object,
                        "metric": a.metric,
                        "value": a.value,
                        "expected": a.expected,
                        "lower": a.lower,
                        "upper": a.upper,
                        "points": a.points,
                        "direction": a.direction,
                        "batch_id": a.batch_id,
                        "source_file": a.source_file,
                        "batch_time": a.batch_time,
                        "run_id": a.run_id,
                        "detected_at": a.detected_at,
                    }
                    for a in found
                ],
            }
        )
        return
    if not found:
        console.print("no anomaly found: every checkpoint metric is within its control limits")
        return
    console.print(
        table(
            f"Anomalies of {proj.name} (latest batches first)",
            ["batch time", "object", "metric", "value", "expected", "limits", "side", "file"],
            [
                (
                    when(a.batch_time),
                    a.object,
                    escape(a.metric),
                    f"{a.value:.4g}",
                    f"{a.expected:.4g}",
                    f"[{a.lower:.4g}, {a.upper:.4g}]",
                    a.direction,
                    escape(a.source_file),
                )
                for a in found
            ],
            text_columns=["object", "metric", "limits", "side", "file"],
        )
    )


def _percent(s: DimensionScore) -> str:
    if s.score is None:
        return "–"
    if s.dimension != "total":  # exact, never rounded to a bound it did not reach
        return pass_rate(s.rows_checked - s.rows_failed, s.rows_checked) or "–"
    if s.score >= 1.0:
        return "100%"
    return f"{min(s.score * 100, 99.99):.2f}%"


def _spark(values: list[float | None]) -> str:
    """One character per run, scaled between the lowest and highest score shown."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        elif high - low < 1e-12:
            out.append(SPARKS[-1] if v >= 1.0 else SPARKS[-2])
        else:
            out.append(SPARKS[round((v - low) / (high - low) * (len(SPARKS) - 1))])
    return "".join(out)


def _change(trend: list[DimensionScore | None]) -> str:
    """The latest score against the run before: ▲ / ▼ and the change in points, or =."""
    scored = [t.score for t in trend if t is not None and t.score is not None]
    if len(scored) < 2:
        return ""
    delta = (scored[-1] - scored[-2]) * 100
    if abs(delta) < 0.005:
        return "="
    return f"{'▲' if delta > 0 else '▼'} {delta:+.2f} pt"


def _card_json(card: Scorecard) -> dict[str, Any]:
    def scores(run: Any) -> dict[str, Any]:
        return {
            "run_id": run.run_id,
            "at": run.at,
            "batches": run.batches,
            "scores": {
                s.dimension: {
                    "score": s.score,
                    "rows_failed": s.rows_failed,
                    "rows_checked": s.rows_checked,
                }
                for s in run.scores
            },
        }

    return {
        "object": card.object,
        "latest": scores(card.latest),
        "trend": [scores(r) for r in card.runs],
    }
