"""`penstock logs`: a run's structured log, and `--follow`, the live tail of a run in progress.

Reads the metadata store like `status` (observe/log_reads.py: sqlite3 on a SQLite store), so
it starts fast and never waits for a run: a run writes its log records as it goes (through
the bus's queue, within milliseconds), and `--follow` prints them as they arrive, from
another terminal, until the run ends (exit 0, or 1 if the run failed or its process died).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from penstock.cli.render import console, err_console, print_json, table
from penstock.cli.shared import JsonOpt, ProjectOpt, app, example
from penstock.errors import UsageError

if TYPE_CHECKING:
    from penstock.observe.log_reads import Ended
    from penstock.observe.records import LogRow
    from penstock.observe.status_reads import Rows

_LEVEL_STYLE = {"debug": "dim", "info": "", "warning": "yellow", "error": "red"}


@app.command(
    epilog=example(
        "penstock logs --level warning",
        "penstock logs --follow",
        "penstock logs 3f2a --object orders --json",
    )
)
def logs(
    run_id: Annotated[
        str | None, typer.Argument(metavar="[RUN]", help="Run id or its prefix; default: last.")
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", metavar="ID", help="Run id or its prefix (as RUN).")
    ] = None,
    project: ProjectOpt = Path(),
    object_name: Annotated[
        str | None, typer.Option("--object", metavar="NAME", help="Only this object's records.")
    ] = None,
    level: Annotated[
        str, typer.Option(metavar="LEVEL", help="debug, info, warning or error (and above).")
    ] = "info",
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Print records as the run writes them, until it ends (another terminal may "
            "run it). Exit 1 if it failed or its process died.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The structured log of a run: what each step did, warnings and errors.

    Each record carries its run, step, object and batch ids (--json). With --json and
    --follow, one JSON object per line: `"kind": "log"` records, then one `"kind":
    "run_ended"` with the run's status."""
    from penstock.catalog.outline import read_outline
    from penstock.observe import log_reads, status_reads

    if run_id and run and run_id != run:
        raise UsageError("give the run once: as RUN or as --run")
    wanted = run_id or run
    proj = read_outline(project)
    log_reads.levels_from(level)  # an unknown level is a usage error before anything is read
    with status_reads.reading(proj.metadata_url) as rows:
        if rows is None:
            raise UsageError("no runs yet: `penstock run` first")
        rid = log_reads.resolve_run(rows, wanted) if wanted else log_reads.last_run_id(rows)
        if rid is None:
            raise UsageError("no runs yet: `penstock run` first")
        if follow:
            _follow(rows, rid, level, object_name, as_json)
            return
        records = log_reads.read_logs(rows, rid, level=level, object=object_name)
    if as_json:
        print_json({"run_id": rid, "logs": records})
        return
    what = f" of {object_name}" if object_name else ""
    console.print(
        table(
            f"Run {rid[:12]}: {len(records)} record(s){what} at {level} and above",
            ["time", "level", "object", "message"],
            [(r.at.strftime("%H:%M:%S"), r.level, r.object, r.message) for r in records],
            text_columns=["level", "object", "message"],
        )
    )


def _follow(rows: Rows, run_id: str, level: str, object_name: str | None, as_json: bool) -> None:
    from penstock.observe.jsonable import to_jsonable
    from penstock.observe.log_reads import Ended, follow

    if not as_json:
        err_console.print(f"following run {run_id[:12]} (Ctrl-C stops)", highlight=False)
    for item in follow(rows, run_id, level=level, object=object_name):
        if isinstance(item, Ended):
            _ended(item, as_json)
            return
        if as_json:
            line = {"kind": "log", **to_jsonable(item)}
            print(json.dumps(line, default=str), flush=True)
        else:
            _print_line(item)


def _print_line(row: LogRow) -> None:
    style = _LEVEL_STYLE.get(row.level, "")
    level = f"[{style}]{row.level:<7}[/]" if style else f"{row.level:<7}"
    where = escape(row.object or "-")
    console.print(
        f"{row.at:%H:%M:%S} {level} {where:<14} {escape(row.message)}",
        highlight=False,
        soft_wrap=True,
    )
    sys.stdout.flush()


def _ended(ended: Ended, as_json: bool) -> None:
    from penstock.outcomes import as_outcome

    state = ended.state
    status = "abandoned" if ended.gone else as_outcome(state.status)
    failed = status in ("failed", "abandoned")
    if as_json:
        line = {
            "kind": "run_ended",
            "run_id": state.run_id,
            "status": status,
            "ended_at": state.ended_at.isoformat() if state.ended_at else None,
        }
        print(json.dumps(line), flush=True)
    elif ended.gone:
        err_console.print(
            f"[red]run {state.run_id[:12]}'s process (PID {state.pid}) ended without "
            f"recording its end:[/] abandoned; the next run marks it so and repairs what it "
            f"left",
            highlight=False,
        )
    else:
        seconds = (state.ended_at - state.started_at).total_seconds() if state.ended_at else 0
        colour = "red" if failed else "green"
        err_console.print(
            f"run {state.run_id[:12]} ended: [{colour}]{status}[/] after {seconds:.1f} s",
            highlight=False,
        )
    if failed:
        raise typer.Exit(1)
