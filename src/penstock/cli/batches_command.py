"""`penstock batches`: an object's batches; skip or unskip one; retry a rejected file."""

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
    "penstock batches unskip OBJECT BATCH | penstock batches retry OBJECT BATCH"
)


@app.command(
    epilog=example(
        "penstock batches orders",
        'penstock batches skip orders orders-354e --reason "resent as orders_0102b.csv"',
        "penstock batches retry orders orders-9f1c",
    )
)
def batches(
    words: Annotated[
        list[str],
        typer.Argument(
            metavar="OBJECT | skip OBJECT BATCH | unskip OBJECT BATCH | retry OBJECT BATCH",
            help="List an object's batches; skip / unskip a staged one, or retry a rejected "
            "one (id or unique prefix).",
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
    """An object's batches (loaded, pending, failed, skipped, rejected); retry a rejected file,
    or skip a batch that cannot load, so the later batches of its object go on.

    A rejected batch is a landing file that cannot be read at all (not the declared format or
    encoding, a damaged compressed file): never staged, not read again until its content or
    the object's read settings change, or until `retry` asks the next run to read it."""
    from penstock.engine.batches import list_batches, retry_batch, skip_batch, unskip_batch

    proj = load(project)
    if len(words) == 3 and words[0] == "retry":
        if reason is not None:
            raise UsageError("--reason goes with skip only")
        _, object_name, batch_id = words
        state = retry_batch(proj, object_name, batch_id, wait=wait)
        if as_json:
            print_json({"object": object_name, "action": "retry", "batch": state})
            return
        console.print(
            f"batch {state.batch_id} ({escape(state.source_file)}) is no longer rejected: the "
            f"next run reads it again (it was rejected for: {escape(state.reason or '')})",
            highlight=False,
        )
        return
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
    rejected = [b for b in listing.batches if b.status == "rejected" and not b.read_again]
    if rejected:
        err_console.print(
            f"a rejected file is not read again until its content changes (deliver a corrected "
            f"file) or the read settings of '{listing.object}' change; to read it again as it "
            f"is: [bold]penstock batches retry {listing.object} {rejected[0].batch_id}[/]",
            highlight=False,
        )
