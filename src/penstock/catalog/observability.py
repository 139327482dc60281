"""Project settings of what penstock records about itself: `retention:` and `hooks:`.

```yaml
retention_days: 90          # the default of every kind below (90 when not written)
retention:                  # how long the metadata store keeps each kind of record
  runs: 90d                 # job_runs and step_runs (a run's logs go with it), old catalog versions
  logs: 30d                 # log records
  metrics: 90d
  dq_results: 90d
  lineage: 90d
  batch_decisions: 365d     # the audit of `penstock batches skip/unskip`
hooks:
  - audit_hook.py:AuditTrail                       # a file of the project, or module:attribute
  - {use: "mypkg.hooks:Notify", options: {url: "${env:HOOK_URL}"}, events: [run_finished]}
```

A retention is a duration (`90d`, `36h`, `2w`) or a whole number of days; at least a day
(records of a run that never ended are deleted by when it started).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal, get_args

from pydantic import Field, field_validator

from penstock.catalog.base import Model

RetentionKind = Literal["runs", "logs", "metrics", "dq_results", "lineage", "batch_decisions"]
RETENTION_KINDS: tuple[RetentionKind, ...] = get_args(RetentionKind)

_RETENTION = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>h|d|w)\s*$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_HOOK_TARGET = re.compile(r"^[^:\s]+:[A-Za-z_][A-Za-z0-9_.]*$")


def retention_period(value: str | int) -> timedelta:
    """A retention as a timedelta: `90d`, `36h`, `2w`, or a number of days (at least 1d)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 90d, 36h or 2w, got {value!r}")
    if isinstance(value, int):
        period = timedelta(days=value)
    else:
        match = _RETENTION.match(value)
        if match is None:
            raise ValueError(f"expected a duration such as 90d, 36h or 2w, got '{value}'")
        period = float(match["amount"]) * _UNITS[match["unit"]]
    if period < timedelta(days=1):  # longer than a run: an unfinished run is a dead one
        raise ValueError(f"must be at least 1d (24h), got '{value}'")
    return period


class RetentionSettings(Model):
    """How long each kind of record is kept; unset kinds keep `retention_days`."""

    runs: str | int | None = None
    logs: str | int | None = None
    metrics: str | int | None = None
    dq_results: str | int | None = None
    lineage: str | int | None = None
    batch_decisions: str | int | None = None

    @field_validator(*RETENTION_KINDS)
    @classmethod
    def _check_period(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            retention_period(value)
        return value

    def period(self, kind: RetentionKind, default_days: int) -> timedelta:
        value = getattr(self, kind)
        return retention_period(default_days if value is None else value)


class HookSpec(Model):
    """One plugin hook: `use` names it (`file.py:Class` in the project, or `module:attr`);
    a class is built with `options` as keyword arguments; `events` limits it to some kinds."""

    use: str
    options: dict[str, Any] = Field(default_factory=dict)
    events: list[str] | None = None
    name: str | None = None

    @field_validator("use")
    @classmethod
    def _check_use(cls, value: str) -> str:
        if not _HOOK_TARGET.match(value):
            raise ValueError(
                f"expected 'file.py:Name' (a file of the project) or 'module:name', got '{value}'"
            )
        return value

    @property
    def label(self) -> str:
        return self.name or self.use


def hook_list(value: Any) -> Any:
    """`hooks:` items may be written as just the `use:` text."""
    if isinstance(value, list):
        return [{"use": item} if isinstance(item, str) else item for item in value]
    return value
