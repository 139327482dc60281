"""`penstock quarantine OBJECT`: the rows held back, with their reasons, batch and file.

Filtering, counting and the limit run in the warehouse (one SQL query); the table is laid out
by `text_table` (one line per row, cut to the terminal width), so showing 10,000 rows costs
about what printing their JSON does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from penstock.cli.render import console, err_console, print_json
from penstock.cli.shared import JsonOpt, ProjectOpt, WaitOpt, app, example, load, waiting
from penstock.defaults import DEFAULT_WAIT_SECONDS
from penstock.errors import UsageError

if TYPE_CHECKING:
    from penstock.catalog import ObjectSpec, Project
    from penstock.engine.quarantine_view import QuarantineView

EXAMPLES = example(
    "penstock quarantine orders --reason type: --hide-superseded",
    "penstock quarantine orders --batch drop_002.csv --columns order_id,amount --limit 0",
    "penstock quarantine purge orders --before 2026-01-01 --dry-run",
    "penstock quarantine release orders --where \"list_contains(_reasons, 'in:status')\" --dry-run",
    'penstock quarantine release orders --set "country=upper(country)" --where "len(country) = 2"',
)
PURGE = "purge"
RELEASE = "release"
# short batch ids in the table: the hash after "<object>-", as long as git's short hashes
SHORT_ID = 10
# a value column narrows to this before columns are left out for the width
DATA_MIN_WIDTH = 12
FILE_MIN_WIDTH = 30
REASONS_MIN_WIDTH = 20


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(v.strip() for value in values or [] for v in value.split(",") if v.strip())


@app.command(epilog=EXAMPLES)
def quarantine(
    object_name: Annotated[
        str,
        typer.Argument(
            metavar="OBJECT", help="The object (or `purge` / `release`, then the object)."
        ),
    ],
    purged_object: Annotated[
        str | None,
        typer.Argument(metavar="[OBJECT]", help="After `purge` or `release`: the object."),
    ] = None,
    project: ProjectOpt = Path(),
    reason: Annotated[
        list[str] | None,
        typer.Option(
            "--reason",
            "-r",
            metavar="REASON",
            help="Only rows with this reason: a name (type:amount) or a kind (type: or type, "
            "malformed, encoding). Repeat it or separate with commas: a row with any of them "
            "matches.",
        ),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            metavar="BATCH",
            help="Only this batch: its id, a unique prefix of it, or the source file it came "
            "from (as shown, a path to it, or its name).",
        ),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            metavar="PATH",
            help="Only rows from source files matching this path or glob (whole path relative "
            "to the project, or its end: 'drop_00*.csv').",
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            metavar="A,B",
            help="The contract columns to show, comma-separated (default: as many as fit).",
        ),
    ] = None,
    hide_superseded: Annotated[
        bool,
        typer.Option(
            "--hide-superseded",
            help="Leave out rows whose key a later batch has since loaded.",
        ),
    ] = False,
    limit: Annotated[int, typer.Option(help="How many rows at most (0: all).", min=0)] = 50,
    before: Annotated[
        str | None,
        typer.Option(
            metavar="DATE",
            help="purge: the rows of batches loaded before this date or time (UTC unless it "
            "has an offset).",
        ),
    ] = None,
    where: Annotated[
        str | None,
        typer.Option(
            metavar="SQL",
            help="release: only the rows this DuckDB condition picks (over the contract "
            "columns as text, _reasons, _batch_id, _row_number, _source_file, _superseded).",
        ),
    ] = None,
    set_values: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="COLUMN=EXPR",
            help="release: correct a column of the released rows first (EXPR: DuckDB SQL over "
            "the same fields, taken as the column's raw text); repeat for more columns.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="purge / release: count what would change; change nothing."),
    ] = False,
    wait: WaitOpt = DEFAULT_WAIT_SECONDS,
    as_json: JsonOpt = False,
) -> None:
    """An object's quarantined rows with their reasons, batch and source file.

    Per row: batch and source file, record number, whether it was loaded anyway (on_invalid:
    warn), whether a later batch superseded it, the reasons and the raw values. Oldest batch
    first, then by record number.

    `penstock quarantine purge OBJECT --before DATE` deletes, for good, the quarantined rows of
    the batches loaded before DATE, from the warehouse and the lake; the purge is recorded in
    the lake, so a rebuild does not bring them back.

    `penstock quarantine release OBJECT [--where SQL] [--set COLUMN=EXPR]` validates the
    held-back rows again against the current contract (corrected by --set) and loads those
    that pass, by the object's load mode; the release is recorded in the lake, so a rebuild
    releases the same rows again."""
    from penstock.engine.quarantine_view import QuarantineRequest, read_quarantine_view

    proj = load(project)
    if object_name == PURGE and purged_object is not None:
        if where is not None or set_values:
            raise UsageError("--where and --set belong to `penstock quarantine release OBJECT`")
        _purge(proj, purged_object, before, dry_run, wait, as_json)
        return
    if object_name == RELEASE and purged_object is not None:
        if before is not None:
            raise UsageError("--before belongs to `penstock quarantine purge OBJECT`")
        if reason or batch or file or columns or hide_superseded:
            raise UsageError(
                "`penstock quarantine release` picks rows with --where SQL, e.g. "
                "--where \"list_contains(_reasons, 'type:amount') AND NOT _superseded\""
            )
        _release(proj, purged_object, where, set_values or [], dry_run, wait, as_json)
        return
    if purged_object is not None:
        raise UsageError(
            f"unexpected argument '{purged_object}': `penstock quarantine OBJECT` shows an "
            "object's rows; `penstock quarantine purge OBJECT --before DATE` deletes old ones, "
            "`penstock quarantine release OBJECT` loads those that pass the contract now"
        )
    if before is not None or dry_run:
        raise UsageError("--before and --dry-run belong to `penstock quarantine purge OBJECT`")
    if where is not None or set_values:
        raise UsageError("--where and --set belong to `penstock quarantine release OBJECT`")
    request = QuarantineRequest(
        reasons=_split(reason),
        batch=batch,
        file=file,
        columns=_split([columns]) if columns is not None else None,
        hide_superseded=hide_superseded,
        limit=limit or None,
    )
    view = read_quarantine_view(proj, object_name, request, wait=wait, on_wait=waiting)
    for note in view.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}")
    if as_json:
        print_json(_payload(view, proj.objects[view.object]))
        return
    _print_table(view, limit)


def _purge(
    proj: Project, name: str, before: str | None, dry_run: bool, wait: float, as_json: bool
) -> None:
    from penstock.engine.quarantine_purge import parse_before, purge_quarantine

    if before is None:
        raise UsageError("`penstock quarantine purge OBJECT` needs --before DATE")
    result = purge_quarantine(
        proj, name, parse_before(before), dry_run=dry_run, wait=wait, on_wait=waiting
    )
    if as_json:
        print_json(
            {
                "object": result.object,
                "before": result.before.isoformat(),
                "dry_run": result.dry_run,
                "rows": result.rows,
                "batches": [{"batch_id": b, "rows": n} for b, n in result.batches.items()],
            }
        )
        return
    verb = "would delete" if dry_run else "deleted"
    when = f"{result.before:%Y-%m-%d %H:%M} UTC"
    if not result.batches:
        console.print(
            f"{escape(result.object)}: no quarantined rows of batches loaded before {when}"
        )
        return
    console.print(
        f"{escape(result.object)}: {verb} {result.rows:,} quarantined row(s) of "
        f"{len(result.batches):,} batch(es) loaded before {when}"
    )


def _release(
    proj: Project,
    name: str,
    where: str | None,
    sets: list[str],
    dry_run: bool,
    wait: float,
    as_json: bool,
) -> None:
    from penstock.engine.quarantine_release import release_quarantine

    result = release_quarantine(
        proj, name, where=where, sets=sets, dry_run=dry_run, wait=wait, on_wait=waiting
    )
    if as_json:
        print_json(
            {
                "object": result.object,
                "dry_run": result.dry_run,
                "examined": result.examined,
                "replayed": result.replayed,
                "released": result.released,
                "loaded": result.loaded,
                "duplicate": result.released - result.loaded,
                "still_failing": result.failing,
                "reasons": result.still_failing,
                "batches": [
                    {
                        "batch_id": b,
                        "loaded": c.loaded,
                        "duplicate": c.duplicate,
                        "stale": c.stale,
                    }
                    for b, c in result.batches.items()
                ],
            }
        )
        return
    obj = escape(result.object)
    if result.replayed:
        console.print(
            f"{obj}: released {result.replayed:,} row(s) of earlier releases first, as recorded "
            f"in the lake (releases/{escape(result.object)}.json)",
            highlight=False,
        )
    if not result.examined:
        console.print(f"{obj}: no held-back quarantined rows match; nothing to release")
        return
    verb = "would release" if dry_run else "released"
    line = (
        f"{obj}: {verb} {result.released:,} of {result.examined:,} quarantined row(s) "
        f"({result.loaded:,} loaded, {result.released - result.loaded:,} duplicate) "
        f"from {len(result.batches):,} batch(es)"
    )
    console.print(line, highlight=False)
    if result.still_failing:
        held = ", ".join(f"{r} ({n:,})" for r, n in list(result.still_failing.items())[:8])
        console.print(
            escape(f"{result.failing:,} still fail and stay quarantined: {held}"),
            highlight=False,
        )


def _payload(view: QuarantineView, obj: ObjectSpec) -> dict[str, Any]:
    """The rows, each with the DQ dimensions its reasons failed (`_dimensions`)."""
    from penstock.quality.dimensions import reason_dimensions, row_dimensions
    from penstock.warehouse.quarantine import page_row_dicts

    dimensions = reason_dimensions(obj)
    rows = page_row_dicts(view.page)
    for row in rows:
        row["_dimensions"] = row_dimensions(dimensions, row.get("_reasons") or ())
    return {
        "object": view.object,
        "total": view.page.total,
        "superseded": view.page.superseded,
        "rows": rows,
    }


def _print_table(view: QuarantineView, limit: int) -> None:
    from penstock.cli.text_table import Column, render

    page = view.page
    if not page.rows:
        _print_nothing(view)
        return
    at = {name: i for i, name in enumerate(page.fields)}
    values = [at[c] for c in view.columns]
    prefix = f"{view.object}-"
    # when the width runs out, the values the rows failed on stay longest, then the key
    named = {r.split(":", 1)[-1] for row in page.rows for r in row[at["_reasons"]]}
    fixed = [
        Column("batch"),
        Column("file", min_width=FILE_MIN_WIDTH, keep_tail=True),
        Column("row", right=True),
        Column("loaded"),
        Column("superseded"),
        Column("reasons", min_width=REASONS_MIN_WIDTH),
    ]
    data = [
        Column(
            c, min_width=DATA_MIN_WIDTH, drop_rank=0 if c in named else 1 if c in view.key else 2
        )
        for c in view.columns
    ]
    batch, file, number, loaded, superseded, reasons, raw = (
        at[f]
        for f in (
            "_batch_id",
            "_source_file",
            "_row_number",
            "_loaded",
            "_superseded",
            "_reasons",
            "_raw_line",
        )
    )
    rows: list[tuple[str, ...]] = []
    for row in page.rows:
        head = (
            (row[batch] or "").removeprefix(prefix)[:SHORT_ID],
            row[file] or "–",
            str(row[number]),
            "yes" if row[loaded] else "no",
            "yes" if row[superseded] else "no",
            ", ".join(row[reasons]),
        )
        if row[raw] is not None:  # malformed or encoding: its raw text in place of values
            rows.append((*head, f"raw: {row[raw]}"))
        else:
            rows.append((*head, *("–" if row[i] is None else row[i] for i in values)))
    out = render([*fixed, *data], rows, console.width)
    console.print(
        f"[bold]quarantine.{escape(view.object)}[/] ({view.load}"
        + (f" on {', '.join(view.key)}" if view.key else "")
        + ")",
        highlight=False,
    )
    console.file.write(out.text)
    shown = len(page.rows)
    rows_word = "row" if page.total == 1 else "rows"
    counted = (
        f"{shown:,} of {page.total:,} {rows_word}"
        if shown < page.total
        else f"{shown:,} {rows_word}"
    )
    if shown < page.total:
        counted += "; --limit 0 for all" if limit else ""
    if page.superseded:
        counted += (
            f"; {page.superseded:,} superseded by a later batch: --hide-superseded leaves them out"
        )
    console.print(escape(counted), highlight=False)
    if out.dropped:
        console.print(
            escape(
                f"not shown for the width: {', '.join(out.dropped)} "
                "(--columns picks columns, --json shows every value whole)"
            ),
            highlight=False,
        )


def _print_nothing(view: QuarantineView) -> None:
    if not view.reasons_present:
        if not view.notes:
            console.print(f"quarantine.{escape(view.object)} is empty", highlight=False)
        return
    held = ", ".join(f"{reason} ({count:,})" for reason, count in view.reasons_present[:12])
    more = " …" if len(view.reasons_present) > 12 else ""
    console.print(
        escape(f"no rows of quarantine.{view.object} match; reasons there: {held}{more}"),
        highlight=False,
    )
