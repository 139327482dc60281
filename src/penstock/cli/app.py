"""The `penstock` command line: thin commands over the engine, one error handler.

Every read command takes `--json`. Exit codes: 0 ok, 1 a run failed, 2 bad project or usage.

Start-up is kept fast: at import this module loads typer, rich's console and penstock's errors
only; each command imports the engine parts it needs (DuckDB, SQLAlchemy, pydantic, pyarrow),
so `penstock --help` never loads them. tests/cli/test_startup_imports.py guards this.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from typer.exceptions import TyperException

from penstock.cli.render import (
    batches_table,
    console,
    err_console,
    print_json,
    summary_table,
    table,
)
from penstock.defaults import DEFAULT_WAIT_SECONDS
from penstock.errors import PenstockError, RunFailed, UsageError, WarehouseError

if TYPE_CHECKING:
    from penstock.catalog import Project
    from penstock.engine import RunResult

app = typer.Typer(
    name="penstock",
    help="Metadata-driven DataOps pipelines: declared in YAML, validated, idempotent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ProjectOpt = Annotated[
    Path, typer.Option("--project", "-p", help="Project directory (holding penstock.yml).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        help="While another run holds the warehouse, wait up to this many seconds for it.",
        min=0,
    ),
]
SelectOpt = Annotated[
    str | None, typer.Option("--select", "-s", help="Object name(s) or group:G, comma-separated.")
]


class _State:
    debug = False


def _project(path: Path) -> Project:
    from penstock.catalog import load_project

    return load_project(path)


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _State.debug = debug


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Directory to create.")] = Path(),
    demo: Annotated[bool, typer.Option("--demo", help="Scaffold the demo shop with data.")] = False,
) -> None:
    """Create a new project (or the demo project with generated landing files)."""
    from penstock.demo import create_demo_project, create_empty_project

    if demo:
        expected = create_demo_project(directory)
        files = len(expected.files)
        console.print(
            f"Created the demo project in [bold]{directory}[/] with {files} landing files."
        )
    else:
        name = directory.resolve().name.replace(" ", "_") or "project"
        create_empty_project(directory, name)
        console.print(f"Created a project in [bold]{directory}[/]: edit penstock.yml.")
    console.print(f"Next: [bold]cd {directory} && penstock run[/]")


def _print_run(result: RunResult, project: Project, as_json: bool) -> None:
    names = [o.name for o in project.objects_in_order()]
    summaries = [s for s in result.summary(names) if s.object in names]
    if as_json:
        print_json(
            {
                "run_id": result.run_id,
                "command": result.command,
                "status": result.status,
                "objects": [{**vars(s), "dq_pass_rate": s.dq_pass_rate} for s in summaries],
                "failures": [vars(f) for f in result.failures],
            }
        )
        return
    console.print(summary_table(summaries))
    for failure in result.failures:
        where = failure.source_file or failure.batch_id or ""
        err_console.print(
            f"[red]failed[/] {failure.object} {failure.step} {escape(where)}: "
            f"{escape(failure.error or '')}"
        )
    wh = project.warehouse_path
    console.print(
        "Look further: [bold]penstock status[/] · [bold]penstock runs[/] · "
        + " · ".join(f"[bold]penstock quarantine {n}[/]" for n in names[:3])
        + (f" · [bold]duckdb {wh.name}[/]" if wh else "")
    )


def _waiting(message: str) -> None:
    err_console.print(f"[yellow]waiting:[/] {escape(message)}", highlight=False)


@app.command()
def run(
    project: ProjectOpt = Path(),
    select: SelectOpt = None,
    wait: WaitOpt = DEFAULT_WAIT_SECONDS,
    as_json: JsonOpt = False,
) -> None:
    """Extract, stage, validate and load the selected objects."""
    from penstock.cli.progress import ProgressSink
    from penstock.engine import Session

    proj = _project(project)
    progress = ProgressSink(enabled=not as_json and err_console.is_terminal)
    with Session(proj, wait=wait, on_wait=_waiting) as session, progress:
        session.bus.subscribe(progress.handle)
        result = session.runner.run(select)
        dropped = sum(session.bus.dropped.values())
        try:
            warnings = len(session.store.logs(result.run_id, "warning"))
        except PenstockError:
            warnings = 0  # the store is failing: already said on stderr
    _print_run(result, proj, as_json)
    if dropped:
        err_console.print(
            f"[yellow]note:[/] the metadata store missed {dropped} event(s) of this run; "
            "the next run reconciles its loads from the warehouse ledger"
        )
    if warnings and not as_json:
        err_console.print(
            f"{warnings} warning(s) and errors in the log: [bold]penstock logs --level warning[/]"
        )
    if result.status == "failed":
        raise RunFailed(f"run {result.run_id} failed: {len(result.failures)} step(s) failed")


@app.command()
def rebuild(
    project: ProjectOpt = Path(),
    select: SelectOpt = None,
    wait: WaitOpt = DEFAULT_WAIT_SECONDS,
    as_json: JsonOpt = False,
) -> None:
    """Empty the object tables and replay every staged batch from the stage zone."""
    from penstock.engine import Session

    proj = _project(project)
    with Session(proj, wait=wait, on_wait=_waiting) as session:
        result = session.runner.rebuild(select)
    _print_run(result, proj, as_json)
    if result.status == "failed":
        raise RunFailed(f"rebuild {result.run_id} failed: {len(result.failures)} step(s) failed")


@app.command()
def status(project: ProjectOpt = Path(), as_json: JsonOpt = False) -> None:
    """Per object: last run and its outcome, rows in the warehouse and in quarantine."""
    from penstock.engine.status import project_status

    proj = _project(project)
    report = project_status(proj)
    rows = [vars(state) for state in report.objects]
    if as_json:
        print_json({"project": report.project, "objects": rows, "notes": report.notes})
        return
    console.print(
        table(
            f"Project {proj.name}",
            [
                "object",
                "load",
                "last status",
                "last run",
                "last batch",
                "batches",
                "rows",
                "quarantined",
            ],
            [
                (
                    r["object"],
                    r["load"],
                    r["last_status"],
                    _when(r["last_run_at"]),
                    _when(r["last_batch_at"]),
                    r["batches_loaded"],
                    r["rows"],
                    r["rows_quarantined"],
                )
                for r in rows
            ],
        )
    )
    for note in report.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}")


def _when(value: Any) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


@app.command()
def runs(
    project: ProjectOpt = Path(),
    limit: Annotated[int, typer.Option(help="How many runs, newest first.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recent runs with their outcome and row totals."""
    from penstock.observe import MetadataStore

    proj = _project(project)
    with MetadataStore(proj.metadata_url) as store:
        found = store.runs(limit)
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
                    _when(r.started_at),
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
        )
    )


@app.command()
def quarantine(
    object_name: Annotated[str, typer.Argument(metavar="OBJECT", help="The object.")],
    project: ProjectOpt = Path(),
    limit: Annotated[int, typer.Option(help="How many rows at most (0: all).")] = 50,
    batch: Annotated[str | None, typer.Option(help="Only this batch id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Quarantined rows of an object with their reasons, batch and record number; "loaded"
    says yes for a row on_invalid warn loaded anyway, no for a row held back."""
    from penstock.engine.status import open_for_reading

    proj = _project(project)
    if object_name not in proj.objects:
        raise UsageError(
            f"unknown object '{object_name}' (objects: {', '.join(sorted(proj.objects))})"
        )
    obj = proj.objects[object_name]
    notes: list[str] = []
    warehouse = open_for_reading(proj, notes)
    if warehouse is None and notes and notes[0].startswith("warehouse figures unavailable"):
        raise WarehouseError(notes[0])
    total, rows = 0, []
    if warehouse is not None:
        try:
            total = warehouse.quarantine_count(obj)
            rows = warehouse.quarantine_rows(obj, limit or None, batch)
        finally:
            warehouse.close()
    if as_json:
        print_json({"object": object_name, "total": total, "rows": rows})
        return
    columns = ["batch", "row", "loaded", "reasons", *obj.columns]
    shown = [
        (
            r["_source_file"] or r["_batch_id"],
            r["_row_number"],
            "yes" if r["_loaded"] else "no",
            ", ".join(r["_reasons"]),
            *(
                (r["_raw_line"] if r["_raw_line"] is not None and i == 0 else r[c])
                for i, c in enumerate(obj.columns)
            ),
        )
        for r in rows
    ]
    console.print(
        table(
            f"quarantine.{object_name}: {len(rows)} of {total:,} row(s)",
            columns,
            shown,
            text_columns=["loaded"],
        )
    )


BATCHES_USAGE = (
    "penstock batches OBJECT | penstock batches skip OBJECT BATCH --reason TEXT | "
    "penstock batches unskip OBJECT BATCH"
)


@app.command()
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
        str | None, typer.Option("--reason", help="Why the batch is skipped (skip only).")
    ] = None,
    wait: WaitOpt = DEFAULT_WAIT_SECONDS,
    as_json: JsonOpt = False,
) -> None:
    """An object's staged batches (loaded, pending, failed, skipped); skip a batch that cannot
    load, so the later batches of its object go on."""
    from penstock.engine.batches import list_batches, skip_batch, unskip_batch

    proj = _project(project)
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


@app.command()
def logs(
    run_id: Annotated[
        str | None, typer.Argument(metavar="[RUN]", help="Run id or its prefix; default: last.")
    ] = None,
    project: ProjectOpt = Path(),
    level: Annotated[str, typer.Option(help="debug, info, warning or error (and above).")] = "info",
    as_json: JsonOpt = False,
) -> None:
    """The structured log of a run: what each step did, warnings and errors."""
    from penstock.observe import MetadataStore

    proj = _project(project)
    with MetadataStore(proj.metadata_url) as store:
        rid = store.resolve_run(run_id) if run_id else store.last_run_id()
        if rid is None:
            raise UsageError("no runs yet: `penstock run` first")
        records = store.logs(rid, level)
    if as_json:
        print_json({"run_id": rid, "logs": records})
        return
    console.print(
        table(
            f"Run {rid[:12]}: {len(records)} record(s) at {level} and above",
            ["time", "level", "object", "message"],
            [(r.at.strftime("%H:%M:%S"), r.level, r.object, r.message) for r in records],
        )
    )


@app.command()
def check(project: ProjectOpt = Path(), as_json: JsonOpt = False) -> None:
    """Validate the project files and reach its warehouse, metadata store and sources."""
    from penstock.engine.check import check_project

    report = check_project(project)
    if as_json:
        print_json(report)
    else:
        for item in report["checks"]:
            mark = "[green]ok[/]" if item["ok"] else "[red]error[/]"
            if item["ok"] and item.get("warning"):
                mark = "[yellow]warning[/]"
            console.print(f"{mark}  {item['what']}: {item['detail']}")
    if not report["ok"]:
        raise typer.Exit(2)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one clear red line on errors, the traceback with --debug."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        # without standalone mode, an Exit raised in a command comes back as the return value
        returned = command.main(args=args, prog_name="penstock", standalone_mode=False)
        if isinstance(returned, int):
            return returned
    except PenstockError as exc:
        if debug:
            traceback.print_exc()
        for line in exc.message.splitlines() or [type(exc).__name__]:
            err_console.print(f"[red]error:[/] {escape(line)}", highlight=False)
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except TyperException as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(f"[red]error:[/] {escape(exc.format_message())}")
        return int(exc.exit_code)
    except typer.Abort:
        err_console.print("[red]aborted[/]")
        return 1
    except Exception as exc:  # a bug or an unforeseen condition: still one line, exit 1
        if debug:
            traceback.print_exc()
        from penstock.engine.failures import describe  # imports only errors and secrets

        hint = "" if debug else " (--debug shows the traceback)"
        message, _ = describe(exc)  # "unexpected error: Type: first line", secrets redacted
        err_console.print(f"[red]error:[/] {escape(message)}{hint}", highlight=False)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
