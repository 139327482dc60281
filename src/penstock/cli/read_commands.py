"""`penstock status` and `runs`: what ran and how it went (`logs`: cli/logs_command.py).

They read the project's outline (catalog/outline.py: no pydantic, sqlglot or DuckDB) and, on a
SQLite metadata store, the store through sqlite3 (observe/status_reads.py: no SQLAlchemy), so
`penstock status` and `penstock runs` start in well under 0.2 s."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from penstock.cli.render import (
    console,
    err_console,
    print_json,
    table,
)
from penstock.cli.shared import JsonOpt, ProjectOpt, app, example, when
from penstock.observe.source_health import WINDOW_DAYS


def source_cells(health: dict[str, Any]) -> tuple[Any, ...]:
    """A source's row: up or down at its last check, uptime, checks, when, latency."""
    uptime = health["uptime"]
    latency = health["last_latency_s"]
    return (
        health["source"],
        health["kind"],
        "up" if health["last_up"] else "down",
        f"{uptime:.1%}" if uptime is not None else None,
        health["checks"],
        when(health["last_checked_at"]),
        f"{latency * 1000:.0f} ms" if latency is not None else None,
    )


@app.command(epilog=example("penstock status --json"))
def status(project: ProjectOpt = Path(), as_json: JsonOpt = False) -> None:
    """Per object: last run and its outcome, rows in the warehouse and in quarantine.

    The outcome is success, warning (rows broke the contract, or files rejected earlier were
    met), failed, running or abandoned, as `penstock runs` says of runs; or upstream_failed:
    not run, because an object it depends on failed in that run. The rows, batches,
    quarantine and rejected figures are those counted when the object's last run ended;
    `rejected` (a column once an object has one) counts landing files that cannot be read at
    all (`penstock batches OBJECT` lists them)."""
    from penstock.catalog.outline import read_outline
    from penstock.engine.status import project_status

    proj = read_outline(project)
    report = project_status(proj)
    rows = [vars(state) for state in report.objects]
    sources = [s.to_dict() for s in report.sources]
    if as_json:
        print_json(
            {"project": report.project, "objects": rows, "sources": sources, "notes": report.notes}
        )
        return
    columns = ["object", "load", "last status", "last run", "last batch", "batches", "rows"]
    columns.append("quarantined")
    # landing files that cannot be read: a column of their own once an object has one
    rejected = any(r["batches_rejected"] for r in rows)
    cells = [
        (
            r["object"],
            r["load"],
            r["last_status"],
            when(r["last_run_at"]),
            when(r["last_batch_at"]),
            r["batches_loaded"],
            r["rows"],
            r["rows_quarantined"],
            *((r["batches_rejected"],) if rejected else ()),
        )
        for r in rows
    ]
    if rejected:
        columns.append("rejected")
    console.print(
        table(f"Project {proj.name}", columns, cells, text_columns=["load", "last status"])
    )
    checked = [s for s in sources if s["checks"]]
    if checked:
        console.print(
            table(
                f"Sources, as runs reached them (last {WINDOW_DAYS} days)",
                ["source", "kind", "now", "uptime", "checks", "last checked", "latency"],
                [source_cells(s) for s in checked],
                text_columns=["kind", "now"],
            )
        )
    for note in report.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}")


@app.command(epilog=example("penstock runs --limit 5"))
def runs(
    project: ProjectOpt = Path(),
    limit: Annotated[int, typer.Option(metavar="N", help="How many runs, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recent runs with their outcome and row totals.

    The outcome is success, warning (rows broke a contract), failed, running or abandoned."""
    from penstock.catalog.outline import read_outline
    from penstock.observe import status_reads

    proj = read_outline(project)
    with status_reads.reading(proj.metadata_url) as rows:
        found = status_reads.runs(rows, limit)
    if as_json:
        print_json(found)
        return
    console.print(
        table(
            "Runs",
            [
                "run",
                "command",
                "status",
                "started",
                "seconds",
                "steps",
                "failed",
                "rows in",
                "loaded",
                "quarantined",
                "duplicates",
            ],
            [
                (
                    r.run_id[:12],
                    r.command,
                    r.status,
                    when(r.started_at),
                    f"{r.duration_s:.2f}" if r.duration_s is not None else None,
                    r.steps,
                    r.failed_steps,
                    r.rows_in,
                    r.rows_loaded,
                    r.rows_quarantined,
                    r.rows_duplicate,
                )
                for r in found
            ],
            text_columns=["command", "status"],
        )
    )
