"""`penstock gc`: delete the metadata older than the project's `retention:` now (runs do it
when they end, at most once an hour; observe/retention.py says what each kind covers)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from penstock.cli.render import console, print_json, table
from penstock.cli.shared import JsonOpt, ProjectOpt, app, example, load, when


@app.command(epilog=example("penstock gc --dry-run", "penstock gc --json"))
def gc(
    project: ProjectOpt = Path(),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete runs, steps, logs and other records older than the project's retention.

    Kinds and their defaults: runs, logs, metrics, dq_results, lineage, batch_decisions, each
    kept `retention_days` (90) unless `retention:` says otherwise. Only this project's records
    are touched."""
    from penstock.engine.session import retention_periods
    from penstock.observe.retention import collect
    from penstock.observe.store import MetadataStore

    proj = load(project)
    with MetadataStore(proj.metadata_url) as store:
        report = collect(
            store,
            retention_periods(proj),
            project=proj.name,
            project_hash=proj.project_hash,
            objects=list(proj.objects),
            dry_run=dry_run,
        )
    if as_json:
        print_json(
            {
                "project": report.project,
                "dry_run": report.dry_run,
                "retention_days": {k: p.total_seconds() / 86400 for k, p in report.periods.items()},
                "cutoffs": report.cutoffs,
                "rows": report.rows,
                "total": report.total,
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    console.print(
        table(
            f"Retention of {proj.name}: {report.total:,} row(s) {verb}",
            ["kind", "keep", "older than"],
            [
                (kind, _days(period.total_seconds()), when(report.cutoffs[kind]))
                for kind, period in report.periods.items()
            ],
            text_columns=["kind", "keep"],
        )
    )
    console.print(
        table(
            "Rows " + verb,
            ["table", "rows"],
            [(name, n) for name, n in report.rows.items()],
            text_columns=["table"],
        )
    )


def _days(seconds: float) -> str:
    days = seconds / 86400
    return f"{days:g}d" if days == int(days) else f"{seconds / 3600:g}h"
