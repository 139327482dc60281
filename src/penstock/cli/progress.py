"""A rich progress bar per object, fed by the event bus."""

from __future__ import annotations

from rich.progress import TaskID

from penstock.cli.render import counting_bar
from penstock.observe import OBJECT_STEP, Event, LogRecord, StepFinished


class ProgressSink:
    """Subscribe `handle` to the bus; use as a context manager around the run."""

    def __init__(self, enabled: bool) -> None:
        self.progress = counting_bar("[bold]{task.description:<16}", shown=enabled)
        self.tasks: dict[str, TaskID] = {}

    def _task(self, name: str) -> TaskID:
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=0, detail="")
        return self.tasks[name]

    def handle(self, event: Event) -> None:
        if isinstance(event, LogRecord) and event.object:
            kind = event.fields.get("event")
            if kind == "plan":
                task = self._task(event.object)
                self.progress.update(task, total=int(event.fields.get("new", 0)), detail="staging")
            elif kind == "load_plan":
                task = self._task(event.object)
                total = self.progress.tasks[task].total or 0
                pending = int(event.fields.get("pending", 0))
                self.progress.update(task, total=total + pending, detail="loading")
        elif isinstance(event, StepFinished) and event.object in self.tasks:
            if event.step == OBJECT_STEP:  # the object's outcome, not one more step done
                return
            detail = "failed" if event.status == "failed" else event.step
            self.progress.update(self.tasks[event.object], advance=1, detail=detail)

    def __enter__(self) -> ProgressSink:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for task in self.progress.tasks:
            if task.total is not None and task.completed >= task.total:
                self.progress.update(task.id, detail="done")
        self.progress.stop()
