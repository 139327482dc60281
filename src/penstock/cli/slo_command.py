"""`penstock slo`: each object against its `sla:`; `--check` alerts on misses (and
recoveries) and exits 1 when an SLO is missed, for cron or a scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from penstock.cli.render import console, err_console, print_json, table
from penstock.cli.shared import JsonOpt, ProjectOpt, app, example, load, when


@app.command(epilog=example("penstock slo", "penstock slo --check --json"))
def slo(
    project: ProjectOpt = Path(),
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Alert the `sla_missed` rules about misses (and recoveries); exit 1 when an "
            "SLO is missed.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Each object against its service levels: freshness (time since its last batch
    loaded) and success rate (its runs in the window that did not fail).

    Without --check this only reads. With it, a miss alerts even when no run happens (run it
    from cron, or let the scheduler do it); a miss already alerted is throttled by its rule."""
    from penstock.observe.slo import check_slos, evaluate_slos
    from penstock.observe.store import MetadataStore

    proj = load(project)
    with MetadataStore(proj.metadata_url) as store:
        if check:
            report = check_slos(proj, store=store)
            statuses, notices = report.statuses, report.notices
        else:
            statuses, notices = evaluate_slos(proj, store), []
    missed = [s for s in statuses if s.met is False]
    if as_json:
        print_json(
            {
                "project": proj.name,
                "evaluated_at": statuses[0].evaluated_at if statuses else None,
                "missed": len(missed),
                "slos": [
                    {
                        "object": s.object,
                        "sla": s.sla,
                        "expected": s.expected_text,
                        "expected_value": s.expected,
                        "measured": s.measured_text,
                        "measured_value": s.measured,
                        "unit": s.unit,
                        "status": _word(s.met),
                        "message": s.message,
                        "last_batch_at": s.last_batch_at,
                        "runs": s.runs,
                        "failed_runs": s.failed_runs,
                    }
                    for s in statuses
                ],
                "alerts": [
                    {
                        "rule": n.rule,
                        "key": n.key,
                        "action": n.action,
                        "delivered": list(n.delivered),
                        "failed": [{"destination": d, "error": e} for d, e in n.failed],
                    }
                    for n in notices
                ],
            }
        )
    elif not statuses:
        console.print("no object declares an `sla:` (e.g. sla: {freshness: 2h, success_rate: 99%})")
    else:
        console.print(
            table(
                f"Service levels of {proj.name} at {when(statuses[0].evaluated_at)} UTC",
                ["object", "slo", "expected", "measured", "status", "detail"],
                [
                    (
                        s.object,
                        s.sla,
                        s.expected_text,
                        s.measured_text,
                        _word(s.met),
                        escape(s.message),
                    )
                    for s in statuses
                ],
                text_columns=["slo", "expected", "measured", "status", "detail"],
            )
        )
        for n in notices:
            where = ", ".join(n.delivered) or "no destination"
            console.print(
                f"{escape(n.action)}: {escape(n.rule)} {escape(n.key)} → {escape(where)}",
                highlight=False,
            )
            for label, reason in n.failed:
                err_console.print(f"[red]failed[/] {escape(label)}: {escape(reason)}")
    if check and missed:
        raise typer.Exit(1)


def _word(met: bool | None) -> str:
    return "met" if met else "missed" if met is False else "no data"
