"""`penstock init`, `run` and `rebuild`, and the run summary they print."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from penstock.cli.render import (
    console,
    err_console,
    print_json,
    summary_table,
)
from penstock.cli.shared import (
    JsonOpt,
    ProjectOpt,
    SelectOpt,
    WaitOpt,
    app,
    example,
    load,
    waiting,
)
from penstock.defaults import DEFAULT_WAIT_SECONDS
from penstock.errors import LeaseHeld, PenstockError, RunFailed, UsageError

if TYPE_CHECKING:
    from penstock.catalog import Project
    from penstock.engine import ObjectSummary, RunResult
    from penstock.engine.resume import Resumption


@app.command(epilog=example("penstock init shop --demo"))
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


def print_run(
    result: RunResult, project: Project, as_json: bool, *, selector: str | None = None
) -> None:
    """The run summary: one row per object the run selected, with its outcome and first error;
    under it the run's notes (`result.notes`), each failure in full (stderr), and where to look
    further. `--json` carries the same: `status` (the run's outcome), `objects`, `notes`,
    `failures`, `rejected` (the landing files met that cannot be read at all)."""
    names = result.selected
    if not names:  # a result the runner did not make: select as it would
        from penstock.engine.plan import build_plan

        names = build_plan(project).select(selector)
    summaries = result.summary(names)
    if as_json:
        print_json(
            {
                "run_id": result.run_id,
                "command": result.command,
                "status": result.outcome,
                "objects": [{**vars(s), "dq_pass_rate": s.dq_pass_rate} for s in summaries],
                "notes": result.notes,
                "failures": [vars(f) for f in result.failures],
                "rejected": [vars(r) for r in result.rejected],
                **(
                    {"restage": [vars(r) for r in result.restage]}
                    if result.restage is not None
                    else {}
                ),
                "no_match": [{**vars(m), "message": m.message} for m in result.no_match],
                "nothing_matched": result.nothing_matched,
            }
        )
        return
    console.print(summary_table(summaries))
    for miss in result.no_match:
        console.print(f"[yellow]warning[/] {escape(miss.message)}", highlight=False)
    if result.nothing_matched:
        console.print("Nothing was staged: no file matched the glob of any selected object.")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    for failure in result.failures:
        where = failure.source_file or failure.batch_id
        err_console.print(
            f"[red]failed[/] {failure.object} {failure.step}"
            + (f" {escape(where)}" if where else "")
            + ": "
            + escape(failure.error or ""),
            highlight=False,
        )
    console.print(look_further(summaries, project), highlight=False)


def look_further(summaries: list[ObjectSummary], project: Project) -> str:
    """The commands to look further after a run (rich markup)."""
    quarantined = [s.object for s in summaries if s.rows_quarantined or s.rows_warned]
    loaded = [s.object for s in summaries if s.rows_loaded]
    first = project.objects[loaded[0]].table_name if loaded else None
    return (
        "Look further: [bold]penstock status[/] · [bold]penstock runs[/]"
        + "".join(f" · [bold]penstock quarantine {escape(n)}[/]" for n in quarantined[:3])
        + (f' · [bold]penstock query "FROM {escape(first)} LIMIT 5"[/]' if first else "")
    )


def defer(command: str, held: LeaseHeld, as_json: bool) -> None:
    """Another run held the project for the whole wait: say so in one line (exit 0: the
    other run does the work; run again later for anything it did not select)."""
    if as_json:
        print_json(
            {"status": "deferred", "command": command, "message": held.message, **held.fields}
        )
        return
    console.print(
        f"[yellow]deferred:[/] {escape(held.message)}; nothing was done "
        f"(run again later, or wait longer with --wait SECONDS)",
        highlight=False,
        soft_wrap=True,
    )


PushgatewayOpt = Annotated[
    str | None,
    typer.Option(
        "--pushgateway",
        metavar="URL",
        envvar="PENSTOCK_PUSHGATEWAY",
        help="When the run ends, push the project's metrics to this Prometheus Pushgateway "
        "(push-add: job penstock, project NAME). A failed push is reported, never fails the run.",
    ),
]


def push_metrics(project: Project, gateway: str) -> None:
    """Push the metrics the store holds after a run; a failure is one line on stderr."""
    from penstock.observe.prometheus import push
    from penstock.observe.store import MetadataStore

    try:
        with MetadataStore(project.metadata_url) as store:
            push(store, project.name, gateway)
    except PenstockError as exc:
        err_console.print(f"[yellow]warning:[/] {escape(exc.message)}", highlight=False)


@app.command(epilog=example("penstock run --select orders,group:raw", "penstock run --resume 3f2a"))
def run(
    project: ProjectOpt = Path(),
    select: SelectOpt = None,
    wait: WaitOpt = DEFAULT_WAIT_SECONDS,
    as_json: JsonOpt = False,
    pushgateway: PushgatewayOpt = None,
    resume: ResumeOpt = None,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = None,
) -> None:
    """Extract, stage, validate and load the selected objects.

    The summary lists each selected object with its outcome (success; warning: rows broke the
    contract; failed, with its error) and its rows. DQ pass rate: the share of rows read that
    broke no rule of the contract (a malformed row, or every row of a batch failing a batch
    check, broke one; a duplicate did not). It shows 100% only when no row broke a rule and
    0% only when all did; otherwise one decimal, or as many as keep it off those bounds
    (99.9999% for 1 bad row in 1,000,000).
    """
    from penstock.cli.progress import ProgressSink
    from penstock.engine import Session
    from penstock.engine.dask_executor import executor_for
    from penstock.engine.plan import build_plan
    from penstock.engine.resume import resumption

    if pushgateway:
        from penstock.observe.prometheus import require_prometheus

        require_prometheus("--pushgateway")  # before the run, not after it
    proj = load(project)
    if resume is not None and select is not None:
        raise UsageError("--resume redoes the objects that run left: do not give --select too")
    build_plan(proj).select(select)  # a cycle or an unknown name: before anything opens
    progress = ProgressSink(enabled=not as_json and err_console.is_terminal)
    stager = executor_for(proj, executor)
    try:
        with Session(proj, wait=wait, on_wait=waiting) as session, progress:
            session.bus.subscribe(progress.handle)
            session.runner.stager = stager
            if resume is not None:
                resuming = resumption(proj, session.store, resume)
                if not resuming.todo:
                    nothing_to_resume(resuming, as_json)
                    return
                say_resuming(resuming, as_json)
                select = resuming.select
                result = session.runner.run(select, command="resume", workers=workers)
            else:
                result = session.runner.run(select, workers=workers)
            dropped = sum(session.bus.dropped.values())
            try:
                warnings = len(session.store.logs(result.run_id, "warning"))
            except PenstockError:
                warnings = 0  # the store is failing: already said on stderr
    except LeaseHeld as held:
        defer("run", held, as_json)
        return
    finally:
        if stager is not None:
            stager.close()
    print_run(result, proj, as_json, selector=select)
    if pushgateway:
        push_metrics(proj, pushgateway)
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


WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        metavar="N",
        min=1,
        help="Objects worked on at once, each as soon as its upstream is done (default: the "
        "core count; 1: one after the other). A source's max_connections caps its own; loads "
        "into the warehouse go one at a time.",
    ),
]

ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor",
        metavar="WHERE",
        help="Where new files are staged: local (this process), dask (a Dask cluster of "
        "worker processes on this machine) or a running cluster (tcp://HOST:8786; the lake "
        "must be on storage its workers share). Validation and loading stay here.",
    ),
]

ResumeOpt = Annotated[
    str | None,
    typer.Option(
        "--resume",
        metavar="RUN",
        help="Redo only the objects run RUN (an id or its prefix, see `penstock runs`) did not "
        "complete: failed, waiting on a failed upstream, or never reached (a killed run). "
        "Staged files are not read again, loaded batches not loaded again.",
    ),
]


def nothing_to_resume(resuming: Resumption, as_json: bool) -> None:
    if as_json:
        print_json({"resumed": resuming.run_id, "redone": [], "completed": resuming.done})
        return
    done = ", ".join(resuming.done) or "no object"
    console.print(
        f"run {resuming.run_id} completed every object it selected ({done}): nothing to resume"
    )


def say_resuming(resuming: Resumption, as_json: bool) -> None:
    if as_json:
        return
    done = f"; completed then: {', '.join(resuming.done)}" if resuming.done else ""
    err_console.print(f"resuming run {resuming.run_id}: redoing {', '.join(resuming.todo)}{done}")


RestageOpt = Annotated[
    bool,
    typer.Option(
        "--restage",
        help="First parse each staged batch's landing file again with the current settings "
        "(after fixing `csv:`, say); the new parse replaces the old, same batch id. Batches "
        "whose file is gone or changed replay as staged, and are listed. If a file cannot be "
        "read, its object is left as it was.",
    ),
]


@app.command(
    epilog=example(
        "penstock rebuild orders    # orders and everything downstream of it",
        "penstock rebuild --restage --select orders",
    )
)
def rebuild(
    object_name: Annotated[
        str | None,
        typer.Argument(
            metavar="[OBJECT]",
            help="Rebuild this object or model and everything downstream of it (its "
            "dependent objects and the models reading it): the same as --select OBJECT+.",
        ),
    ] = None,
    project: ProjectOpt = Path(),
    select: SelectOpt = None,
    restage: RestageOpt = False,
    wait: WaitOpt = DEFAULT_WAIT_SECONDS,
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
) -> None:
    """Empty the object tables, replay every staged batch and build the models again.

    Models are built after their inputs (an incremental one from every batch); views over
    the replayed objects are always built again.

    The summary is `penstock run`'s: the selected objects, their outcome, rows and DQ pass rate.
    """
    from penstock.engine import Session
    from penstock.engine.plan import build_plan

    if object_name is not None:
        if select:
            raise UsageError("give OBJECT or --select, not both (OBJECT is --select OBJECT+)")
        select = f"{object_name}+"
    proj = load(project)
    build_plan(proj).select(select)  # a cycle or an unknown name: before anything opens
    try:
        with Session(proj, wait=wait, on_wait=waiting, command="rebuild") as session:
            result = session.runner.rebuild(select, restage=restage, workers=workers)
    except LeaseHeld as held:
        defer("rebuild", held, as_json)
        return
    print_run(result, proj, as_json, selector=select)
    if result.restage is not None and not as_json:
        print_restage(result)
    if result.status == "failed":
        raise RunFailed(f"rebuild {result.run_id} failed: {len(result.failures)} step(s) failed")


def print_restage(result: RunResult) -> None:
    """What `rebuild --restage` did: how many batches were parsed again, which replayed as
    staged and why, which objects a file that cannot be read left as they were (the files
    are printed with the run's failures)."""
    from penstock.engine.restage import AS_STAGED

    report = result.restage or []
    restaged = [r for r in report if r.status == "restaged"]
    objects = sorted({r.object for r in restaged})
    console.print(
        f"Restaged {len(restaged)} of {len(report)} batch(es) with the current settings"
        + (f" ({', '.join(objects)})" if objects else "")
        + "."
    )
    held = sorted({f.object for f in result.failures if f.step == "restage"})
    for r in report:
        if r.replayed_as_staged and r.object not in held:
            console.print(
                f"[yellow]replayed as staged[/] {r.object} {escape(r.source_file)} "
                f"(batch {r.batch_id}): {AS_STAGED[r.status]}",
                highlight=False,
            )
    for name in held:
        err_console.print(
            f"[red]not rebuilt[/] {name}: a file cannot be read with the current settings; "
            "its stage zone and table are as they were",
            highlight=False,
        )
