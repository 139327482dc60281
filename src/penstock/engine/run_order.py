"""Objects in the plan's order (engine/plan.py), and what a failure holds back.

The sequential runner takes the selected objects one after the other in the plan's
topological order. When an object fails, the objects downstream of it (directly or not) in the
same run are not run: each is recorded as an `object` step with status `upstream_failed` and a
message naming the failed ones; the objects not downstream of a failure go on. An executor
that runs independent objects at once (issue 8, part 2) keeps the same rule: an object starts
when its upstream has finished, and not at all when part of it failed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from penstock.catalog import ObjectSpec, Project
from penstock.engine.plan import Plan, build_plan
from penstock.engine.results import BatchOutcome, RunResult
from penstock.observe import OBJECT_STEP

if TYPE_CHECKING:
    from penstock.engine.runner import Runner


def planned(project: Project, selector: str | None) -> tuple[Plan, list[ObjectSpec], list[str]]:
    """The project's plan, and the objects and the models `selector` picks, in its order (a
    cycle is a ProjectError, an unknown name a UsageError)."""
    plan = build_plan(project)
    names = plan.select(selector)
    return plan, [project.objects[n] for n in plan.objects_of(names)], plan.models_of(names)


def run_in_order(
    runner: Runner,
    result: RunResult,
    plan: Plan,
    objects: list[ObjectSpec],
    work: Callable[[Runner, RunResult, ObjectSpec], None],
) -> None:
    """Each object's `work` (guarded: an error fails that object only), in `objects`' order;
    an object downstream of one that failed in this run is held back instead."""
    failed: list[str] = []
    for obj in objects:
        blocked = [name for name in failed if plan.depends(obj.name, name)]
        if blocked:
            hold_back(runner, result, obj, blocked)
        elif runner._guard(result, obj, partial(work, runner, result, obj)) == "failed":
            failed.append(obj.name)


def hold_back(runner: Runner, result: RunResult, obj: ObjectSpec, failed: list[str]) -> None:
    """Record an object not run because objects upstream of it failed in this run."""
    message = (
        f"not run: upstream {', '.join(failed)} failed in this run "
        f"(`penstock plan --select +{obj.name}` shows its upstream)"
    )
    step_id = runner._step_started(result, obj, None, OBJECT_STEP, object_step=True)
    runner._log(result, "warning", message, obj, event="upstream_failed", upstream=failed)
    runner._step_finished(result, step_id, obj, None, OBJECT_STEP, "upstream_failed", message)
    result.outcomes.append(
        BatchOutcome(obj.name, None, None, OBJECT_STEP, "upstream_failed", error=message)
    )
