"""Control limits find planted spikes and drops in synthetic daily series (seeded, so
deterministic): precision and recall at least 0.9 each, with and without weekly seasonality,
with the mean/σ and the median/MAD limits, at their default settings, on each of ten seeds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from penstock.catalog.quality_settings import AnomalySettings
from penstock.quality.control import control_limits, detect_series, evaluate, trains_windows

START = datetime(2026, 1, 5, 6, tzinfo=UTC)  # a Monday
DAYS = 420
WEEKLY = np.array([1000.0, 1040.0, 1060.0, 1020.0, 980.0, 420.0, 380.0])  # Mon..Sun


def planted_series(
    seed: int, *, weekly: bool, first: int
) -> tuple[list[datetime], np.ndarray, set[int], set[int]]:
    """A daily series (noise σ = 20 around a level, or a weekly profile), with spikes and
    drops of 6-10 σ planted at random days from `first` on: (times, values, spikes, drops)."""
    rng = np.random.default_rng(seed)
    times = [START + timedelta(days=i) for i in range(DAYS)]
    base = np.array([WEEKLY[t.weekday()] for t in times]) if weekly else np.full(DAYS, 1000.0)
    values = base + rng.normal(0.0, 20.0, DAYS)
    planted = rng.choice(np.arange(first, DAYS), size=40, replace=False)
    spikes, drops = set(), set()
    for n, i in enumerate(sorted(int(p) for p in planted)):
        size = rng.uniform(6.0, 10.0) * 20.0
        if n % 2 == 0:
            values[i] += size
            spikes.add(i)
        else:
            values[i] -= size
            drops.add(i)
    return times, values, spikes, drops


def precision_recall(found: set[int], planted: set[int]) -> tuple[float, float]:
    hits = len(found & planted)
    return hits / max(len(found), 1), hits / len(planted)


@pytest.mark.parametrize("method", ["stddev", "mad"])
@pytest.mark.parametrize("seed", range(1, 11))
def test_spikes_and_drops_without_seasonality(method: str, seed: int) -> None:
    times, values, spikes, drops = planted_series(seed, weekly=False, first=15)
    settings = AnomalySettings(method=method)  # type: ignore[arg-type]
    findings = detect_series(times, list(values), settings)
    precision, recall = precision_recall({f.index for f in findings}, spikes | drops)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    # each planted point is found on its side
    for f in findings:
        if f.index in spikes:
            assert f.direction == "spike"
        if f.index in drops:
            assert f.direction == "drop"


@pytest.mark.parametrize("method", ["stddev", "mad"])
@pytest.mark.parametrize("seed", range(1, 11))
def test_spikes_and_drops_with_weekly_seasonality(method: str, seed: int) -> None:
    # ten weeks of history before the first plant: every weekday has its min_points
    times, values, spikes, drops = planted_series(seed, weekly=True, first=75)
    settings = AnomalySettings(method=method, seasonality="day_of_week")  # type: ignore[arg-type]
    findings = detect_series(times, list(values), settings)
    precision, recall = precision_recall({f.index for f in findings}, spikes | drops)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)


def test_a_weekly_series_needs_seasonality() -> None:
    """Without it, the weekend's ordinary dip is what stands out: precision collapses."""
    times, values, spikes, drops = planted_series(4, weekly=True, first=75)
    findings = detect_series(times, list(values), AnomalySettings())
    precision, _ = precision_recall({f.index for f in findings}, spikes | drops)
    assert precision < 0.9


def test_direction_limits_which_side_counts() -> None:
    times, values, spikes, drops = planted_series(1, weekly=False, first=15)
    only_spikes = detect_series(times, list(values), AnomalySettings(direction="spike"))
    only_drops = detect_series(times, list(values), AnomalySettings(direction="drop"))
    assert {f.direction for f in only_spikes} == {"spike"}
    assert {f.direction for f in only_drops} == {"drop"}
    assert precision_recall({f.index for f in only_spikes}, spikes)[1] >= 0.9
    assert precision_recall({f.index for f in only_drops}, drops)[1] >= 0.9


def test_limits_by_hand() -> None:
    settings = AnomalySettings(min_points=3, k=2.0)
    limits = control_limits([1.0, 2.0, 3.0, 4.0], settings)
    assert limits is not None
    sd = float(np.std([1.0, 2.0, 3.0, 4.0], ddof=1))
    assert limits.center == 2.5 and limits.points == 4
    assert limits.lower == pytest.approx(2.5 - 2 * sd)
    assert limits.upper == pytest.approx(2.5 + 2 * sd)
    mad = control_limits([1.0, 2.0, 3.0, 4.0, 100.0], AnomalySettings(min_points=3, method="mad"))
    assert mad is not None  # median 3, MAD 1: the outlier does not widen the limits
    assert mad.center == 3.0 and mad.upper == pytest.approx(3.0 + 3.5 * 1.4826)  # k 3.5
    assert control_limits([1.0, 2.0], settings) is None  # fewer than min_points


def test_no_limits_before_min_points_and_a_flat_series() -> None:
    at = START
    history = [(at + timedelta(days=i), 0.0) for i in range(9)]
    settings = AnomalySettings()
    assert evaluate(0.5, at + timedelta(days=9), history, settings) is None  # 9 < 10 points
    history.append((at + timedelta(days=9), 0.0))
    found = evaluate(0.5, at + timedelta(days=10), history, settings)
    assert found is not None and found.direction == "spike"
    assert evaluate(0.0, at + timedelta(days=10), history, settings) is None  # equal: inside


def test_the_window_keeps_the_latest_points() -> None:
    history = [(START + timedelta(days=i), 100.0 if i < 50 else 0.0) for i in range(80)]
    # the last 30 points are all 0: a level of 100 long ago does not count
    found = evaluate(5.0, START + timedelta(days=80), history, AnomalySettings(window=30))
    assert found is not None and found.limits.center == 0.0 and found.limits.points == 30


@pytest.mark.parametrize("n", [3, 4, 10, 31, 200])
def test_limits_agree_with_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    values = list(rng.normal(50.0, 7.0, n))
    plain = control_limits(values, AnomalySettings(min_points=3))
    assert plain is not None
    sd = float(np.std(values, ddof=1))
    assert plain.center == pytest.approx(float(np.mean(values)), rel=1e-12)
    assert plain.upper == pytest.approx(float(np.mean(values)) + 3 * sd, rel=1e-12)
    robust = control_limits(values, AnomalySettings(min_points=3, method="mad"))
    assert robust is not None
    median = float(np.median(values))
    mad = float(np.median(np.abs(np.asarray(values) - median)))
    assert robust.center == pytest.approx(median, rel=1e-12)
    assert robust.lower == pytest.approx(median - 3.5 * 1.4826 * mad, rel=1e-12)


def test_a_lasting_shift_is_learned_and_a_lone_outlier_is_not() -> None:
    """Points outside their limits stay out of later mean/σ windows, except from the third of
    a run on: a lasting shift is a new level the limits follow, not an anomaly for good."""
    rng = np.random.default_rng(3)
    times = [START + timedelta(days=i) for i in range(200)]
    values = list(1000.0 + rng.normal(0.0, 20.0, 200))
    values[40] += 200.0  # a lone spike
    values[60] += 200.0  # two in a row: still outliers, they do not train
    values[61] += 200.0
    for i in range(100, 200):
        values[i] += 300.0  # a new level
    found = [f.index for f in detect_series(times, values, AnomalySettings())]
    assert {40, 60, 61, 100} <= set(found)
    shifted = [i for i in found if i >= 100]
    assert len(shifted) <= 8, shifted  # every one of the 100 before runs trained windows
    assert shifted == list(range(100, 100 + len(shifted)))  # the first ones, then learned
    # the two outliers in a row stayed out: the points after them are judged as before
    assert not [i for i in found if 62 <= i < 100]


def test_which_points_train_windows() -> None:
    assert trains_windows(False, [])
    assert trains_windows(False, [True, True])
    assert not trains_windows(True, [])
    assert not trains_windows(True, [True])
    assert not trains_windows(True, [False, True])
    assert not trains_windows(True, [True, False])
    assert trains_windows(True, [True, True])  # the third of a run
    assert trains_windows(True, [False, True, True, True])
