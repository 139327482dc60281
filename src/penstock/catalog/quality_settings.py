"""Project settings of data quality scoring and anomaly detection: `quality:` in penstock.yml,
`anomalies:` on an object, `dimension(s):` on checks.

```yaml
quality:
  weights: {completeness: 2, validity: 1}   # the weighted whole; unset dimensions weigh 1
  anomalies:                                # the project's default for every object
    min_points: 10          # history points needed before limits are computed
    window: 30              # the training window: this many earlier points (of the season)
    method: stddev          # stddev: mean ± k·σ | mad: median ± k·1.4826·MAD
    k: 3                    # the limits' width in σ; default 3 (stddev), 3.5 (mad)
    seasonality: none       # none | day_of_week | hour_of_day: compare with the same weekday/hour
    direction: both         # spike | drop | both
    metrics: ["*"]          # which metrics to watch (globs: "quarantine_rate*", "null_rate:*")
objects:
  orders:
    anomalies: {seasonality: day_of_week, metrics: ["rows_in", "quarantine_rate*"]}
    columns:
      amount: {type: "decimal(12,2)", min: 0, dimensions: {min: accuracy}}
    checks:
      - {name: matches_invoice, expression: "amount = invoiced", dimension: accuracy}
      - {row_count: {min: 1}, dimension: completeness}
```

An object's `anomalies:` is merged over the project's key by key (a key written on the object
wins). `enabled: false` turns detection off.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

Dimension = Literal[
    "completeness", "validity", "uniqueness", "consistency", "accuracy", "timeliness"
]
DIMENSIONS: tuple[Dimension, ...] = get_args(Dimension)
TOTAL = "total"  # the weighted whole, stored beside the dimensions

Method = Literal["stddev", "mad"]
Seasonality = Literal["none", "day_of_week", "hour_of_day"]
Direction = Literal["spike", "drop", "both"]

PositiveFloat = Annotated[float, Field(gt=0)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnomalySettings(_Settings):
    """How control limits are computed for an object's checkpoint metrics."""

    enabled: StrictBool = True
    min_points: Annotated[StrictInt, Field(ge=3)] = 10
    window: Annotated[StrictInt, Field(ge=3)] = 30
    method: Method = "stddev"
    k: PositiveFloat | None = None  # 3 for stddev, 3.5 for mad (quality/control.py)
    seasonality: Seasonality = "none"
    direction: Direction = "both"
    metrics: tuple[str, ...] = ("*",)

    @field_validator("metrics")
    @classmethod
    def _check_metrics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError('list at least one metric or pattern ("*" watches them all)')
        for pattern in value:
            if not pattern.strip():
                raise ValueError("a metric pattern must not be blank")
        return value

    def merged_over(self, defaults: AnomalySettings) -> AnomalySettings:
        """These settings over the project's defaults, key by key: a key set here wins."""
        given = self.model_dump(exclude_unset=True)
        return AnomalySettings.model_validate({**defaults.model_dump(exclude_unset=True), **given})


class QualitySettings(_Settings):
    """`quality:`: the weights of the dimensions in the whole score, and the default
    anomaly settings of every object."""

    weights: dict[Dimension, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    anomalies: AnomalySettings = Field(default_factory=AnomalySettings)

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, value: dict[Dimension, float]) -> dict[Dimension, float]:
        if value and not any(value.get(d, 1.0) > 0 for d in DIMENSIONS):
            raise ValueError("at least one dimension must weigh more than 0")
        return value

    def weight(self, dimension: str) -> float:
        """A dimension's weight in the whole score (1 unless `weights:` says otherwise)."""
        return float(self.weights.get(dimension, 1.0))  # type: ignore[call-overload]
