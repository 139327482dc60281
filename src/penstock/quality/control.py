"""Control limits over a metric's history, and the points that leave them.

A point is judged against the points before it (in batch time): the last `window` of them
that were not anomalies themselves and, with seasonality, fall in its season (the same
weekday, or the same hour of the day). With fewer than `min_points` such points there are no
limits yet. The limits are mean ± k·σ (`stddev`, σ the sample standard deviation; k 3 by default) or
median ± k·1.4826·MAD (`mad`; k 3.5 by default). `direction` says which side is reported:
`spike` (above the upper limit), `drop` (below the lower), or `both`.

A rate of rows (`rows` given: the batch's row count) has limits no narrower than its sampling
noise: a count a binomial draw of that many rows at the window's rate reaches by chance is not
an anomaly (quality/sampling.py, `sampling_floor`; on 100-row files the σ limits alone flagged
a third of them).

A point outside its limits, on either side, stays out of the later `stddev` windows (an
outlier would widen them), unless it is the third or later of a run of points outside (the
two batches before it were outside too): such a run is a new level, and its points train the
windows from the third on, so the limits follow it (`trains_windows`). Without that, a lasting
shift (a feed whose rows per batch doubled) was an anomaly in every batch after it, for good:
the new level never entered a window. `mad` windows keep every point: the median and MAD ignore a
few outliers by themselves, and leaving the tails out would narrow them batch after batch.
Measured on the seeded series of tests/quality/test_control_limits.py, the MAD's σ is the
noisier estimate from a window of 10 to 30 points: at k = 3 it flags about one ordinary point
in 60, hence its wider default.

Everything here works on a metric's points (one per batch), never on rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Literal

from penstock.catalog.quality_settings import AnomalySettings, Seasonality
from penstock.quality.sampling import count_bounds

__all__ = [
    "Finding",
    "Limits",
    "control_limits",
    "detect_series",
    "evaluate",
    "judge",
    "k_of",
    "keeps_outliers",
    "sampling_floor",
    "season",
    "trains_windows",
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
    """A point outside its limits: `index` in the series judged (detect_series); `reported`
    when `direction` reports its side."""

    index: int
    value: float
    limits: Limits
    direction: Literal["spike", "drop"]
    reported: bool = True


def keeps_outliers(settings: AnomalySettings) -> bool:
    """Do training windows keep the points found outside their limits? (`mad`: yes)"""
    return settings.method == "mad"


# the points outside their limits in a row (this one included) from which they train windows
RUN_TRAINS = 3


def trains_windows(outside: bool, before: Sequence[bool]) -> bool:
    """Does a point train later (`stddev`) windows? `outside`: it left its limits; `before`:
    whether each earlier batch of the series left them, oldest first (the last two count).
    Yes when inside, or when it extends a run of points outside to RUN_TRAINS (a new level)."""
    return not outside or (len(before) >= RUN_TRAINS - 1 and all(before[1 - RUN_TRAINS :]))


def k_of(settings: AnomalySettings) -> float:
    """The width of the limits in σ: `k`, else 3 (stddev) or 3.5 (mad)."""
    if settings.k is not None:
        return settings.k
    return 3.5 if settings.method == "mad" else 3.0


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
    """Limits over a training window, or None with fewer than `min_points` values.

    Plain Python, not numpy: a window holds tens of points, where numpy's per-call overhead
    was most of the time (the quality sink judged a batch of 51 metrics in about 35 ms with
    numpy, 3 ms without; tests/quality/test_control_limits.py checks the two agree)."""
    n = len(values)
    if n < settings.min_points:
        return None
    if settings.method == "mad":
        center = _median(values)
        spread = MAD_SCALE * _median([abs(v - center) for v in values])
    else:
        center = math.fsum(values) / n
        spread = math.sqrt(math.fsum([(v - center) ** 2 for v in values]) / (n - 1))
    width = k_of(settings) * spread
    return Limits(center, center - width, center + width, n)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    half = len(ordered) // 2
    return ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2


def _outside(value: float, limits: Limits) -> Literal["spike", "drop"] | None:
    slack = _EPSILON * max(1.0, abs(limits.center))
    if value > limits.upper + slack:
        return "spike"
    if value < limits.lower - slack:
        return "drop"
    return None


def sampling_floor(limits: Limits, train: Sequence[float], rows: int, k: float) -> Limits:
    """`limits` of a rate widened to what sampling `rows` rows at the window's rate explains:
    a count is outside only where a binomial draw reaches it with a probability below a
    normal's tail at `k` σ. The window's rate counts its points as `rows` rows each (their
    own counts are not kept) and half a row more that has the trait (Jeffreys' prior): a
    window of zeros makes a single row unlikely, not impossible. Without it, a trait rare
    enough to miss most windows (12 missing cities in 3,376 airports, 40 to a file) was an
    anomaly every time it came back, since each one found stayed out of later windows."""
    seen = len(train) * rows
    rate = (math.fsum(train) * rows + 0.5) / (seen + 1)
    lo, hi = count_bounds(rows, rate, k)
    lower = min(limits.lower, (lo + 1) / rows)
    upper = max(limits.upper, (hi - 1) / rows)
    return Limits(limits.center, lower, upper, limits.points)


def evaluate(
    value: float,
    at: datetime,
    history: Sequence[tuple[datetime, float]],
    settings: AnomalySettings,
    index: int = 0,
    *,
    rows: int | None = None,
) -> Finding | None:
    """Judge one point against `history` (the earlier points, oldest first; see the module
    docstring for which): the training window is the last `window` of them in the point's
    season. None when it is inside its limits or there are none yet. `rows`: the value is a
    rate of that many rows (its limits then cover its sampling noise)."""
    wanted = season(at, settings.seasonality)
    if wanted is None:
        train = [v for _, v in history[-settings.window :]]
    else:
        train = [v for t, v in history if season(t, settings.seasonality) == wanted]
        train = train[-settings.window :]
    return judge(value, train, settings, index, rows=rows)


def judge(
    value: float,
    train: Sequence[float],
    settings: AnomalySettings,
    index: int = 0,
    *,
    rows: int | None = None,
) -> Finding | None:
    """Judge one point against its training window `train` (as `evaluate` picks it); `rows`
    as for `evaluate`."""
    if len(train) >= settings.min_points and train.count(value) == len(train):
        return None  # a window of this very value: limits [value, value], and it is inside
    limits = control_limits(train, settings)
    if limits is None:
        return None
    direction = _outside(value, limits)
    if direction is not None and rows:  # the floor only widens: needed for a point outside
        limits = sampling_floor(limits, train, rows, k_of(settings))
        direction = _outside(value, limits)
    if direction is None:
        return None
    return Finding(index, value, limits, direction, settings.direction in (direction, "both"))


def detect_series(
    times: Sequence[datetime],
    values: Sequence[float],
    settings: AnomalySettings,
    rows: Sequence[int] | None = None,
) -> list[Finding]:
    """The points of a whole series (in time order) outside the limits of the points before
    it, each judged as it would have been when it arrived; those `direction` reports.
    `rows`: the values are rates of that many rows each."""
    history: list[tuple[datetime, float]] = []
    found: list[Finding] = []
    outside: list[bool] = []  # each point's: did it leave its limits?
    keep_all = keeps_outliers(settings)
    for i, (at, value) in enumerate(zip(times, values, strict=True)):
        n = None if rows is None else rows[i]
        finding = evaluate(float(value), at, history, settings, i, rows=n)
        if keep_all or trains_windows(finding is not None, outside):
            history.append((at, float(value)))
        outside.append(finding is not None)
        if finding is not None and finding.reported:
            found.append(finding)
    return found
