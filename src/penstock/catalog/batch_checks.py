"""Batch checks beyond `row_count`: freshness and duplicate rate.

```yaml
checks:
  - {freshness: {column: updated_at, max_age: 2h, severity: warn}}   # max_age: else sla.freshness
  - {duplicate_rate: {max: 1%}}                                       # needs a key
```

- `freshness`: the batch's newest value of a date or timestamp column is at most `max_age`
  older than the batch's extraction time (`now`, as for `max: now`). Without `max_age`, the
  object's `sla: {freshness: …}` is the bound.
- `duplicate_rate`: the share of the batch's records that repeat a key already in the batch
  (they collapse to one, the later record winning) is at most `max`.

A failed batch check of severity `error` (the default) holds the whole batch back
(`check:freshness`, `check:duplicate_rate` on every record), as a failed row count does; of
severity `warn`, the batch loads and the check is reported failed (a warning).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from penstock.catalog.rules import Severity, failure_rate


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _period(value: Any) -> Any:
    from penstock.catalog.alerting import period_seconds

    if isinstance(value, str):
        period_seconds(value)
        return value
    raise ValueError(f"expected a period such as '90m', '2h' or '1d', got {value!r}")


class FreshnessBounds(_Model):
    column: str
    max_age: str | None = None
    severity: Severity = "error"

    @field_validator("max_age", mode="before")
    @classmethod
    def _check_age(cls, value: Any) -> Any:
        return None if value is None else _period(value)


class FreshnessCheck(_Model):
    """The newest value of `column` in a batch is recent enough."""

    freshness: FreshnessBounds

    @property
    def name(self) -> str:
        return "freshness"

    @property
    def severity(self) -> Severity:
        return self.freshness.severity


class DuplicateRateBounds(_Model):
    max: float
    severity: Severity = "error"

    @field_validator("max", mode="before")
    @classmethod
    def _check_max(cls, value: Any) -> Any:
        return failure_rate(value)


class DuplicateRateCheck(_Model):
    """At most this share of a batch's records repeat a key of the batch."""

    duplicate_rate: DuplicateRateBounds

    @property
    def name(self) -> str:
        return "duplicate_rate"

    @property
    def severity(self) -> Severity:
        return self.duplicate_rate.severity


BatchCheck = FreshnessCheck | DuplicateRateCheck
