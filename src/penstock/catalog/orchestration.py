"""Orchestration settings (issue 8): dependency groups, explicit dependencies, schedules.

```yaml
groups:
  raw: {schedule: "0 * * * *", catchup: latest}
  staging: {after: [raw]}
objects:
  orders: {group: raw, depends_on: [customers], schedule: "*/15 * * * *", trigger: on_arrival}
```

`retry:` and `timeout:` on a source or an object (the object's win) say how often an object's
work is tried when it fails with a transient error (a connection refused, a locked file, a
timeout) and how long one try may take:

```yaml
sources:
  landing: {kind: files, path: ./landing, retry: {attempts: 3, backoff: 2s, max_delay: 1m}}
objects:
  orders: {source: landing, retry: 5, timeout: 10m}     # retry: N is {attempts: N}
```

`after` orders whole groups, `depends_on` single objects; the plan (engine/plan.py) turns both
into a DAG and names any cycle. A schedule is a five-field cron expression (croniter), checked
here so that a typo fails at load time with the file and line; `catchup` says what a scheduler
does with the runs it missed while it was down: `all` of them, the `latest` only, or `none`.
"""

from __future__ import annotations

import random
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StrictInt

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


_DURATION = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(text: str) -> float:
    """Seconds in a duration such as `2s`, `500ms`, `1.5m` or `1h`."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"expected a duration such as 500ms, 2s, 1m or 1h, got '{text}'")
    return float(match["amount"]) * _UNITS[match["unit"]]


def _check_duration(value: Any) -> Any:
    if isinstance(value, str) and seconds(value) <= 0:
        raise ValueError(f"expected a duration above zero, got '{value}'")
    return value


Duration = Annotated[str, AfterValidator(_check_duration)]


def _attempts_alone(value: Any) -> Any:
    """`retry: 3` is `retry: {attempts: 3}`."""
    return {"attempts": value} if isinstance(value, int) and not isinstance(value, bool) else value


class RetryPolicy(Model):
    """How often an object's work is tried when it fails with a transient error: `attempts`
    in all (1: no retry), waiting a random time up to `backoff` × 2^(try − 1) between tries
    (full jitter), at most `max_delay`."""

    attempts: Annotated[StrictInt, Field(ge=1, le=100)] = 1
    backoff: Duration = "1s"
    max_delay: Duration = "60s"

    def delay(self, failed_attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after try number `failed_attempt` failed."""
        cap = min(seconds(self.max_delay), seconds(self.backoff) * 2 ** (failed_attempt - 1))
        return (rng or random).uniform(0.0, cap)


Retry = Annotated[RetryPolicy, BeforeValidator(_attempts_alone)]
