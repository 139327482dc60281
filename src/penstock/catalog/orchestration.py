"""Orchestration settings (issue 8): dependency groups, explicit dependencies, schedules.

```yaml
groups:
  raw: {schedule: "0 * * * *", catchup: latest}
  staging: {after: [raw]}
objects:
  orders: {group: raw, depends_on: [customers], schedule: "*/15 * * * *", trigger: on_arrival}
```

`after` orders whole groups, `depends_on` single objects; the plan (engine/plan.py) turns both
into a DAG and names any cycle. A schedule is a five-field cron expression (croniter), checked
here so that a typo fails at load time with the file and line; `catchup` says what a scheduler
does with the runs it missed while it was down: `all` of them, the `latest` only, or `none`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from penstock.catalog.alerting import Model

Catchup = Literal["all", "latest", "none"]
Trigger = Literal["schedule", "on_arrival"]
DEFAULT_CATCHUP: Catchup = "latest"


def _check_cron(value: str) -> str:
    from croniter import croniter  # only projects that schedule pay for the import

    text = value.strip()
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"schedule '{value}' must be a cron expression of five fields "
            "(minute hour day-of-month month day-of-week), e.g. '*/15 * * * *'"
        )
    if not croniter.is_valid(text):
        raise ValueError(f"schedule '{value}' is not a valid cron expression")
    return text


Cron = Annotated[str, AfterValidator(_check_cron)]


def _as_list(value: Any) -> Any:
    """`depends_on: customers` and `after: raw` are lists of one."""
    return [value] if isinstance(value, str) else value


NameList = Annotated[list[str], BeforeValidator(_as_list)]


class GroupSpec(Model):
    """One entry of `groups:`: which groups run before it, and when it runs on its own."""

    after: NameList = Field(default_factory=list)
    schedule: Cron | None = None
    catchup: Catchup | None = None
    description: str | None = None
