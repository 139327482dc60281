"""`penstock batches`: an object's staged batches; skip or unskip one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from penstock.cli.render import (
    batches_table,
    console,
    err_console,
    print_json,
)
from penstock.cli.shared import JsonOpt, ProjectOpt, WaitOpt, app, example, load
from penstock.defaults import DEFAULT_WAIT_SECONDS
from penstock.errors import UsageError

if TYPE_CHECKING:
    pass

BATCHES_USAGE = (
    "penstock batches OBJECT | penstock batches skip OBJECT BATCH --reason TEXT | "
    "penstock batches unskip OBJECT BATCH"
)


@app.command(
    epilog=example(
        "penstock batches orders",
        'penstock batches skip orders orders-354e --reason "resent as orders_0102b.csv"',
    )
)
def batches(
    words: Annotated[
        list[str],
        typer.Argument(
            metavar="OBJECT | skip OBJECT BATCH | unskip OBJECT BATCH",
            help="List an object's staged batches, or skip / unskip one (id or unique prefix).",
        ),
    ],
    project: ProjectOpt = Path(),
    reason: Annotated[
        str | None,
        typer.Option("--reason", metavar="TEXT", help="Why the batch is skipped (skip only)."),
    ] = None,
    wait: WaitOpt = DEFAULT_WAIT_SECONDS,
    as_json: JsonOpt = False,
) -> None:
    """An object's staged batches (loaded, pending, failed, skipped); skip a batch that cannot
    load, so the later batches of its object go on."""
    from penstock.engine.batches import list_batches, skip_batch, unskip_batch

    proj = load(project)
    if len(words) == 3 and words[0] in ("skip", "unskip"):
        action, object_name, batch_id = words
        if action == "skip":
            if reason is None:
                raise UsageError(f"say why the batch is skipped: --reason TEXT ({BATCHES_USAGE})")
            state = skip_batch(proj, object_name, batch_id, reason, wait=wait)
        else:
            if reason is not None:
                raise UsageError("--reason goes with skip only")
            state = unskip_batch(proj, object_name, batch_id, wait=wait)
        if as_json:
            print_json({"object": object_name, "action": action, "batch": state})
            return
        what = (
            f"skipped: {state.skip_reason}; it will not load, the later batches of "
            f"'{object_name}' load on the next run"
            if action == "skip"
            else "no longer skipped: it loads in its place on the next run"
        )
        console.print(
            f"batch {state.batch_id} ({escape(state.source_file)}) {escape(what)}",
            highlight=False,
        )
        return
    if len(words) != 1 or reason is not None:
        raise UsageError(f"usage: {BATCHES_USAGE}")
    listing = list_batches(proj, words[0])
    if as_json:
        print_json(listing)
        return
    console.print(batches_table(listing.object, listing.batches))
    for note in listing.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}")
    failed = [b for b in listing.batches if b.status == "failed"]
    if failed:
        err_console.print(
            f"the batches after a failed one wait: fix it, or "
            f"[bold]penstock batches skip {listing.object} {failed[0].batch_id} "
            f"--reason TEXT[/]",
            highlight=False,
        )
