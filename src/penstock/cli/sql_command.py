"""`penstock sql "SELECT …"`: the metadata store as data (observe/sql.py): runs, steps, logs
and what sinks record, through a connection that cannot write."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from penstock.cli.query_command import print_result
from penstock.cli.shared import JsonOpt, ProjectOpt, app, example

EXAMPLES = example(
    'penstock sql "SELECT run_id, command, status, started_at FROM runs ORDER BY started_at DESC"',
    "penstock sql \"SELECT object, count(*) AS n FROM logs WHERE level = 'warning' "
    'GROUP BY object" --json',
)


@app.command(epilog=EXAMPLES)
def sql(
    statement: Annotated[str, typer.Argument(metavar="SQL", help="One statement that reads.")],
    project: ProjectOpt = Path(),
    limit: Annotated[int, typer.Option(help="How many rows at most (0: all).", min=0)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Run one read-only SQL statement against the metadata store.

    Tables: runs (job_runs), steps (step_runs), logs, object_counts, batch_decisions, the
    catalog_* tables, and metrics, dq_results, lineage where their sinks record. The store is
    opened read-only: a statement that writes is refused (exit 2)."""
    from penstock.catalog.outline import read_outline
    from penstock.observe.sql import run_sql

    proj = read_outline(project)
    result = run_sql(proj.metadata_url, statement, limit=limit or None)
    print_result(result, limit, as_json)
