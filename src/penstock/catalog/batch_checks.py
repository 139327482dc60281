"""Batch checks beyond `row_count`: freshness, duplicate rate and reconciliation.

```yaml
checks:
  - {freshness: {column: updated_at, max_age: 2h, severity: warn}}   # max_age: else sla.freshness
  - {duplicate_rate: {max: 1%}}                                       # needs a key
  - {reconcile: {severity: error}, dimension: completeness}           # a database object
```

- `freshness`: the batch's newest value of a date or timestamp column is at most `max_age`
  older than the batch's extraction time (`now`, as for `max: now`). Without `max_age`, the
  object's `sla: {freshness: …}` is the bound.
- `duplicate_rate`: the share of the batch's records that repeat a key already in the batch
  (they collapse to one, the later record winning) is at most `max`.

- `reconcile`: the batch holds as many records as the source counts in its window. At
  extraction, right after the window's rows are read, penstock runs `SELECT count(*)` over the
  same window (the same relation and cursor bounds) on the source and keeps the count in the
  batch's manifest; validation compares it with the batch's rows_in, so a rebuild judges the
  same two numbers. A row written inside the window while it was read (or a query that reads
  less than its relation holds) shows as a difference. Database objects only: a file has no
  count of its own to compare with (no trailer or manifest convention is read).
  Dimension: completeness unless `dimension:` says otherwise.

A failed batch check of severity `error` (the default) holds the whole batch back
(`check:freshness`, `check:duplicate_rate` on every record), as a failed row count does; of
severity `warn`, the batch loads and the check is reported failed (a warning).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from penstock.catalog.quality_settings import Dimension
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


class ReconcileBounds(_Model):
    severity: Severity = "error"


class ReconcileCheck(_Model):
    """A batch holds as many records as its source counted in the batch's window."""

    reconcile: ReconcileBounds
    dimension: Dimension | None = None  # the DQ dimension (default: completeness)

    @property
    def name(self) -> str:
        return "reconcile"

    @property
    def severity(self) -> Severity:
        return self.reconcile.severity


BatchCheck = FreshnessCheck | DuplicateRateCheck | ReconcileCheck
