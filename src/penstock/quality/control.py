"""Control limits over a metric's history, and the points that leave them.

A point is judged against the points before it (in batch time): the last `window` of them
that were not anomalies themselves and, with seasonality, fall in its season (the same
weekday, or the same hour of the day). With fewer than `min_points` such points there are no
limits yet. The limits are mean ± k·σ (`stddev`, σ the sample standard deviation) or
median ± k·1.4826·MAD (`mad`, robust to outliers in the window). `direction` says which side
counts: `spike` (above the upper limit), `drop` (below the lower), or `both`.

Everything here works on a metric's points (one per batch), never on rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Literal

import numpy as np

from penstock.catalog.quality_settings import AnomalySettings, Seasonality

__all__ = [
    "Finding",
    "Limits",
    "control_limits",
    "detect_series",
    "evaluate",
    "season",
    "watched",
]

MAD_SCALE = 1.4826  # MAD × this estimates σ for normally distributed values
_EPSILON = 1e-9  # float noise: a value equal to a limit (σ = 0) is not outside it


@dataclass(frozen=True)
class Limits:
    center: float
    lower: float
    upper: float
    points: int


@dataclass(frozen=True)
class Finding:
    """A point outside its limits: `index` in the series judged (detect_series)."""

    index: int
    value: float
    limits: Limits
    direction: Literal["spike", "drop"]


def watched(metric: str, settings: AnomalySettings) -> bool:
    """Does `settings.metrics` (globs) cover this metric?"""
    return any(fnmatchcase(metric, pattern) for pattern in settings.metrics)


def season(at: datetime, seasonality: Seasonality) -> int | None:
    """The season of a batch time: its weekday (0 Monday), its hour, or None."""
    if seasonality == "day_of_week":
        return at.weekday()
    if seasonality == "hour_of_day":
        return at.hour
    return None


def control_limits(values: Sequence[float], settings: AnomalySettings) -> Limits | None:
    """Limits over a training window, or None with fewer than `min_points` values."""
    if len(values) < settings.min_points:
        return None
    x = np.asarray(values, dtype=np.float64)
    if settings.method == "mad":
        center = float(np.median(x))
        spread = MAD_SCALE * float(np.median(np.abs(x - center)))
    else:
        center = float(np.mean(x))
        spread = float(np.std(x, ddof=1))
    width = settings.k * spread
    return Limits(center, center - width, center + width, len(x))


def _outside(
    value: float, limits: Limits, settings: AnomalySettings
) -> Literal["spike", "drop"] | None:
    slack = _EPSILON * max(1.0, abs(limits.center))
    if settings.direction in ("spike", "both") and value > limits.upper + slack:
        return "spike"
    if settings.direction in ("drop", "both") and value < limits.lower - slack:
        return "drop"
    return None


def evaluate(
    value: float,
    at: datetime,
    history: Sequence[tuple[datetime, float]],
    settings: AnomalySettings,
    index: int = 0,
) -> Finding | None:
    """Judge one point against `history`: the earlier points that were not anomalies, oldest
    first. The training window is the last `window` of them in the point's season."""
    wanted = season(at, settings.seasonality)
    if wanted is None:
        train = [v for _, v in history[-settings.window :]]
    else:
        train = [v for t, v in history if season(t, settings.seasonality) == wanted]
        train = train[-settings.window :]
    limits = control_limits(train, settings)
    if limits is None:
        return None
    direction = _outside(value, limits, settings)
    if direction is None:
        return None
    return Finding(index, value, limits, direction)


def detect_series(
    times: Sequence[datetime], values: Sequence[float], settings: AnomalySettings
) -> list[Finding]:
    """Every point of a whole series (in time order) outside the limits of the points before
    it, each judged as it would have been when it arrived (anomalies stay out of later
    training windows)."""
    history: list[tuple[datetime, float]] = []
    found: list[Finding] = []
    for i, (at, value) in enumerate(zip(times, values, strict=True)):
        finding = evaluate(float(value), at, history, settings, i)
        if finding is None:
            history.append((at, float(value)))
        else:
            found.append(finding)
    return found
