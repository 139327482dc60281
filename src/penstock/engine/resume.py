"""Resuming a run (`penstock run --resume RUN`): redo only the objects it did not complete.

A run's objects are those its selector picks (read again from the project as it is now). An
object completed when its last try's `object` step ended `success` or `warning`; any other
end (failed, upstream_failed, still `running` because the process was killed, abandoned) or
no object step at all (the run never reached it) means it is redone. The resumed run selects
exactly those objects, in plan order; inside each, the work is idempotent as always: staged
batches are not extracted again, loaded batches are not loaded again. A plain `penstock run`
does the same for every object, so it completes a failed run too; `--resume` limits the work
to what that run left and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from penstock.catalog import Project
from penstock.engine.plan import build_plan
from penstock.errors import UsageError
from penstock.observe.store import MetadataStore

COMPLETED = ("success", "warning")
RESUMABLE = ("run", "resume")


@dataclass(frozen=True)
class Resumption:
    """What resuming `run_id` redoes (`todo`, in plan order) and what it had completed."""

    run_id: str
    selector: str | None
    todo: list[str]
    done: list[str]

    @property
    def select(self) -> str:
        return ",".join(self.todo)


def resumption(project: Project, store: MetadataStore, prefix: str) -> Resumption:
    """What resuming the run whose id starts with `prefix` redoes."""
    run_id = store.resolve_run(prefix)
    found = store.run_selector(run_id)
    assert found is not None  # resolve_run found it
    command, selector = found
    if command not in RESUMABLE:
        raise UsageError(
            f"run {run_id} was a `{command}`: only a `run` can be resumed "
            f"(a rebuild is repeated with `penstock {command}`)",
            run_id=run_id,
        )
    objects = build_plan(project).select(selector)
    last: dict[str, tuple[int, str]] = {}
    for step in store.steps(run_id):
        if step.step == "object":
            known = last.get(step.object)
            if known is None or step.attempt >= known[0]:
                last[step.object] = (step.attempt, step.status)
    done = [name for name in objects if last.get(name, (0, ""))[1] in COMPLETED]
    todo = [name for name in objects if name not in done]
    return Resumption(run_id, selector, todo, done)
