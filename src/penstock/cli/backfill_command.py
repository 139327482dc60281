"""`penstock backfill OBJECT` (engine/backfill.py) and `penstock partitions OBJECT`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from penstock.cli.render import console, err_console, print_json
from penstock.cli.shared import JsonOpt, ProjectOpt, WaitOpt, app, example, load, waiting
from penstock.defaults import DEFAULT_WAIT_SECONDS
from penstock.errors import LeaseHeld, RunFailed, UsageError

if TYPE_CHECKING:
    from penstock.engine.backfill import BackfillResult

_COLOURS = {"success": "green", "warning": "yellow", "failed": "red", "unchanged": "dim"}


def _instant(text: str | None, option: str) -> datetime | None:
    from penstock.catalog.partitioning import parse_instant

    if text is None:
        return None
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}", option=option) from None


@app.command(
    epilog=example(
        "penstock backfill orders --from 2026-01-01 --to 2026-01-31",
        "penstock backfill orders --partition 2026-01-03",
    )
)
def backfill(
    object_name: Annotated[str, typer.Argument(metavar="OBJECT", help="The object to backfill.")],
    first: Annotated[
        str | None,
        typer.Option("--from", metavar="DATE", help="First partition (2026-01-01, 2026-01-01T05)."),
    ] = None,
    last: Annotated[
        str | None, typer.Option("--to", metavar="DATE", help="Last partition (included).")
    ] = None,
    partition: Annotated[
        list[str] | None,
        typer.Option(
            "--partition",
            metavar="KEY",
            help="Only this partition (repeatable), e.g. to retry one that failed.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            metavar="N",
            min=1,
            help="Partitions extracted and validated at once (default: the core count); loads "
            "into the warehouse go one at a time.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace partitions whose data did not change too."),
    ] = False,
    project: ProjectOpt = Path(),
    wait: WaitOpt = DEFAULT_WAIT_SECONDS,
    as_json: JsonOpt = False,
) -> None:
    """Replace the partitions of an object from its source, each as its own unit.

    Each partition's rows in the warehouse are deleted and its source data loaded in one
    transaction, so a backfill run again yields the same table (no duplicates, no gaps). A
    partition whose data did not change since it was loaded is left as it is (`unchanged`);
    one that fails leaves the table as it was: back-fill it again alone with --partition.
    """
    from penstock.cli.render import counting_bar
    from penstock.engine import Session
    from penstock.engine.backfill import Backfill
    from penstock.engine.partition_plan import partition_spec, requested_starts

    proj = load(project)
    obj, spec = partition_spec(proj, object_name)
    keys = [k for k in (_instant(p, "--partition") for p in partition or []) if k is not None]
    if keys and (first or last):
        raise UsageError("give --partition KEY or --from/--to, not both")
    starts = requested_starts(spec, _instant(first, "--from"), _instant(last, "--to"), keys)
    progress = counting_bar("[bold]{task.description}", shown=not as_json)
    task = progress.add_task(f"{obj.name} partitions", total=len(starts), detail="")

    def advanced(outcome: Any) -> None:
        progress.update(task, advance=1, detail=f"{outcome.key} {outcome.status}")

    try:
        with Session(proj, wait=wait, on_wait=waiting, command="backfill") as session, progress:
            filling = Backfill(session.runner, obj, workers=workers, force=force)
            filling.on_partition = advanced
            result = filling.run(starts)
    except LeaseHeld as held:
        from penstock.cli.run_commands import defer

        defer("backfill", held, as_json)
        return
    print_backfill(result, as_json)
    if result.run.status == "failed":
        raise RunFailed(
            f"backfill {result.run.run_id} failed: {len(result.failed)} partition(s) failed"
            + (
                f"; retry with: penstock backfill {obj.name} "
                + " ".join(f"--partition {p.key}" for p in result.failed[:5])
                if result.failed
                else ""
            )
        )


def print_backfill(result: BackfillResult, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "run_id": result.run.run_id,
                "command": "backfill",
                "object": result.object,
                "grain": result.grain,
                "workers": result.workers,
                "status": result.run.outcome,
                "partitions": [vars(p) for p in result.partitions],
                "unmatched_files": result.unmatched,
                "failures": [vars(f) for f in result.run.failures],
            }
        )
        return
    counts: dict[str, int] = {}
    for p in result.partitions:
        counts[p.status] = counts.get(p.status, 0) + 1
    for p in result.partitions:
        colour = _COLOURS.get(p.status, "white")
        console.print(
            f"{p.key}  [{colour}]{p.status:<9}[/]  {len(p.batches):>3} batch(es)  "
            f"{p.rows_loaded:>8} row(s) loaded  {p.rows_quarantined:>6} quarantined"
            + (f"  replaced {p.replaced} older batch(es)" if p.replaced else "")
            + (f"  [red]{escape(p.error)}[/]" if p.error else ""),
            highlight=False,
        )
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    console.print(
        f"backfill {result.run.run_id} of {result.object}: {len(result.partitions)} "
        f"{result.grain} partition(s) on {result.workers} worker(s): {summary or 'none'}",
        highlight=False,
    )
    if result.unmatched:
        err_console.print(
            f"[yellow]note:[/] {len(result.unmatched)} file(s) belong to no partition "
            f"(their path does not match partition_by): {escape(', '.join(result.unmatched[:3]))}",
            highlight=False,
        )


@app.command(epilog=example("penstock partitions orders --json"))
def partitions(
    object_name: Annotated[str, typer.Argument(metavar="OBJECT", help="A partitioned object.")],
    project: ProjectOpt = Path(),
    as_json: JsonOpt = False,
) -> None:
    """The object's partitions: what the warehouse holds for each (batches, rows, the run that
    loaded it) and the last backfill's status of each, failed ones included."""
    from penstock.engine.partition_status import partition_status

    proj = load(project)
    rows, notes = partition_status(proj, object_name)
    if as_json:
        print_json({"object": object_name, "partitions": rows, "notes": notes})
        return
    if not rows:
        console.print(f"{object_name}: no partition back-filled yet")
    for row in rows:
        colour = _COLOURS.get(str(row["status"]), "white")
        console.print(
            f"{row['partition']}  [{colour}]{row['status'] or '–':<9}[/]  "
            f"{row['rows_loaded'] if row['rows_loaded'] is not None else '–':>8} row(s)  "
            f"run {row['run_id'] or '–'}"
            + (f"  [red]{escape(str(row['error']))}[/]" if row["error"] else ""),
            highlight=False,
        )
    for note in notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
