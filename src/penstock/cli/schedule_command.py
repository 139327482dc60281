"""`penstock schedule`: the foreground scheduler daemon (engine/scheduler.py)."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from penstock.cli.render import console, err_console
from penstock.cli.shared import ProjectOpt, SelectOpt, WaitOpt, app, example, load, waiting
from penstock.defaults import DEFAULT_WAIT_SECONDS
from penstock.errors import UsageError

if TYPE_CHECKING:
    from penstock.engine.scheduler import Scheduler

PollOpt = Annotated[
    str,
    typer.Option(
        "--poll",
        metavar="DURATION",
        help="How often to look for new settled files of `trigger: on_arrival` objects "
        "(and to try deferred work again): 30s, 500ms, 1m (a bare number is seconds).",
    ),
]
OnceOpt = Annotated[
    bool,
    typer.Option(
        "--once",
        help="Do what is due now, then exit (for cron and tests); exit 1 if a run failed.",
    ),
]

_COLORS = {"info": "cyan", "warning": "yellow", "error": "red"}


def _say(level: str, message: str) -> None:
    color = _COLORS.get(level, "cyan")
    out = err_console if level == "error" else console
    out.print(f"[{color}]schedule:[/] {escape(message)}", highlight=False, soft_wrap=True)


@app.command(epilog=example("penstock schedule", "penstock schedule --once --select group:raw"))
def schedule(
    project: ProjectOpt = Path(),
    select: SelectOpt = None,
    poll: PollOpt = "30s",
    once: OnceOpt = False,
    wait: WaitOpt = DEFAULT_WAIT_SECONDS,
) -> None:
    """The scheduler: start due work on `schedule:` (cron, UTC) and when files arrive.

    Each object's `schedule:` (its own or its group's, a cron expression in UTC) with its
    `catchup:` after downtime, and `trigger: on_arrival` objects when new settled files land.
    Runs are ordinary runs (`penstock runs` lists them).

    One scheduler is active per project (a lease in the metadata store); another stands by
    and takes over if it stops. SIGINT or SIGTERM: the run in progress finishes, nothing new
    starts, exit 0; a second signal interrupts the run (recorded as failed)."""
    from penstock.catalog.files_source import duration_seconds
    from penstock.engine.scheduler import Scheduler, run_in_session
    from penstock.observe.store import MetadataStore

    try:
        poll_s = (
            float(poll) if poll.strip().replace(".", "", 1).isdigit() else duration_seconds(poll)
        )
    except ValueError as exc:
        raise UsageError(f"--poll: {exc}") from None
    if poll_s <= 0:
        raise UsageError("--poll: must be more than 0s")
    proj = load(project)
    with MetadataStore(proj.metadata_url) as store:
        scheduler = Scheduler(
            proj,
            store,
            selector=select,
            poll=poll_s,
            run_work=run_in_session(proj, wait=wait, on_wait=waiting),
            say=_say,
        )
        code = 0
        with _signals(scheduler):
            code = scheduler.serve(once=once)
    if code:
        raise typer.Exit(code)


class _signals:
    """The first SIGINT/SIGTERM asks the scheduler to stop after the run in progress; the
    next one interrupts that run (KeyboardInterrupt: it ends recorded as failed). Either way
    the scheduler releases its lease and the command exits 0."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.previous: dict[int, object] = {}
        self.interrupted = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if not self.scheduler.stopping.is_set():
            _say("info", f"{name}: stopping after the run in progress ({name} again interrupts it)")
            self.scheduler.request_stop()
            return
        _say("warning", f"{name} again: interrupting the run in progress")
        raise KeyboardInterrupt(name)

    def __enter__(self) -> _signals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        if exc_type is KeyboardInterrupt:
            _say("info", "stopped after an interrupt")
            return True  # a requested shutdown: exit 0
        return False
