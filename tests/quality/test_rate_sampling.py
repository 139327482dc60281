"""A rate's control limits cover its sampling noise (quality/sampling.py): the binomial
bounds agree with sums of exact terms, small batches of an ordinary rate raise (almost) no
anomaly where the σ limits alone flagged a large share of them, and a real shift is still
found in every batch that carries it."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from penstock.catalog.quality_settings import AnomalySettings
from penstock.quality.control import detect_series, judge
from penstock.quality.sampling import count_bounds, tail_of


def exact_bounds(n: int, p: float, k: float) -> tuple[int, int]:
    """The bounds by brute force: every term of the binomial, in log space."""
    tail = tail_of(k)
    if p in (0.0, 1.0):
        terms = [1.0 if x == round(n * p) else 0.0 for x in range(n + 1)]
    else:
        terms = [
            math.exp(
                math.lgamma(n + 1)
                - math.lgamma(x + 1)
                - math.lgamma(n - x + 1)
                + x * math.log(p)
                + (n - x) * math.log1p(-p)
            )
            for x in range(n + 1)
        ]
    below = list(itertools.accumulate(terms))  # P(X <= x)
    lo = max((x for x in range(n + 1) if below[x] < tail), default=-1)
    hi = min((x for x in range(n + 1) if 1.0 - (below[x - 1] if x else 0.0) < tail), default=n + 1)
    return lo, hi


@pytest.mark.parametrize(
    ("n", "p"),
    [(1, 0.5), (10, 0.5), (100, 0.005), (100, 0.01), (100, 0.2), (300, 0.3), (50, 0.9),
     (100, 0.999), (1000, 0.02), (400, 0.5), (100, 0.0), (100, 1.0)],
)  # fmt: skip
def test_bounds_are_the_exact_binomial_ones_while_the_variance_is_small(n: int, p: float) -> None:
    assert count_bounds(n, p, 3.0) == exact_bounds(n, p, 3.0)


@pytest.mark.parametrize(("n", "p"), [(500, 0.5), (2000, 0.1), (20000, 0.01), (5000, 0.3)])
def test_beyond_it_the_normal_is_within_a_row(n: int, p: float) -> None:
    lo, hi = count_bounds(n, p, 3.0)
    want_lo, want_hi = exact_bounds(n, p, 3.0)
    assert abs(lo - want_lo) <= 1 and abs(hi - want_hi) <= 1


def small_batches(seed: int, rate: float, batches: int, rows: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return [float(c) / rows for c in rng.binomial(rows, rate, batches)]


START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("method", ["stddev", "mad"])
@pytest.mark.parametrize("seed", range(1, 6))
def test_an_ordinary_rate_on_small_batches_is_not_an_anomaly(method: str, seed: int) -> None:
    settings = AnomalySettings(method=method)
    values = small_batches(seed, 0.005, 1000, 100)  # 0 to 4 missing values of 100
    times = [START + timedelta(minutes=i) for i in range(len(values))]
    alone = detect_series(times, values, settings)
    floored = detect_series(times, values, settings, rows=[100] * len(values))
    # the σ (or MAD) limits of a mostly-zero history flag a large share of the batches
    assert len(alone) > 50
    # with the sampling floor: a false alarm rate near the tail's 0.135% (binomial
    # counts are coarse, so a little above it; never the share the σ limits flag)
    assert len(floored) <= 10


def test_a_real_shift_is_still_found_in_every_batch_that_carries_it() -> None:
    settings = AnomalySettings()
    values = small_batches(7, 0.005, 300, 100)
    shifted = {100, 150, 200, 250}
    for i in shifted:
        values[i] = 0.12  # 12 missing values of 100 where 0.5 are expected
    times = [START + timedelta(minutes=i) for i in range(len(values))]
    found = detect_series(times, values, settings, rows=[100] * len(values))
    assert shifted <= {f.index for f in found}
    assert all(f.direction == "spike" for f in found if f.index in shifted)


def test_the_floor_is_what_the_limits_show_and_large_batches_keep_their_limits() -> None:
    settings = AnomalySettings()
    train = [0.0] * 25 + [0.01] * 5  # 30 earlier batches: mean 0.00167, σ 0.0038
    # at a 0.167% mean, 2 missing of 100 has a 1.2% chance (ordinary), 3 or more 0.065%
    # (improbable): the upper limit is 2 of 100, though the σ limits' is 1.3 of 100
    assert judge(0.02, train, settings, rows=100) is None
    found = judge(0.03, train, settings, rows=100)
    assert found is not None and found.direction == "spike"
    rate = (sum(train) * 100 + 0.5) / (len(train) * 100 + 1)  # half a row more: Jeffreys
    lo, hi = count_bounds(100, rate, 3.0)
    assert found.limits.upper == pytest.approx((hi - 1) / 100)
    assert found.limits.lower <= (lo + 1) / 100
    # without rows (not a rate), the σ limits alone: 0.02 is outside them
    assert judge(0.02, train, settings) is not None
    # on a batch of a million rows, sampling explains almost nothing: the σ limits stand
    sigma = judge(0.03, train, settings)
    big = judge(0.03, train, settings, rows=1_000_000)
    assert sigma is not None and big is not None and big.limits == sigma.limits


def test_a_rare_value_that_comes_back_is_not_found_every_time() -> None:
    """One missing value in a 40-row file, every eighth file, after files without any: with a
    window's rate of exactly 0 each return was an anomaly, and stayed out of later windows, so
    the next one was too. With half a row of prior the single ones are ordinary; two in one
    file, after 30 files without, are not."""
    settings = AnomalySettings()
    values = [0.025 if i % 8 == 7 else 0.0 for i in range(160)]
    times = [START + timedelta(hours=i) for i in range(len(values))]
    assert detect_series(times, values, settings, rows=[40] * len(values)) == []
    assert len(detect_series(times, values, settings)) > 10  # the σ limits alone
    zeros = [0.0] * 30
    assert judge(0.025, zeros, settings, rows=40) is None
    found = judge(0.05, zeros, settings, rows=40)
    assert found is not None and found.limits.upper == 0.025
