"""How far a rate may move by chance alone: the binomial sampling noise of a batch's rates.

A rate metric (a quarantine, duplicate or missing-value rate) is a count of rows over the
batch's rows. On a small batch it moves in coarse steps: on 100 rows a column whose values
are missing 0.5% of the time shows 0, 1, 2 or 3 missing values from one file to the next,
0% to 3%, by chance alone. Control limits computed from such a history alone (mean ± 3σ of
mostly zeros) flagged a third to a half of the files of a landing zone of 100-row drops, and
each flagged point, left out of later windows, narrowed them further.

So a rate's limits are never narrower than what sampling explains: a batch's count is
outside only if a binomial draw of the batch's size at the history's mean rate would reach it
with a probability below the one-sided tail of a normal at `k` σ (k = 3: 0.135%), the same
false-alarm rate the σ limits aim at. Exact sums of the binomial's terms while its variance
is small (where the normal is a poor fit: a handful of expected rows); the normal with a
continuity correction beyond, where the floor is far inside σ limits anyway.
"""

from __future__ import annotations

import math

# above this variance (n·p·(1−p)) the normal approximation replaces the exact sums: it is
# then within a row or two of the exact bound, and the sums would run over thousands of terms
_EXACT_UP_TO_VARIANCE = 100.0


def tail_of(k: float) -> float:
    """The probability of a normal value beyond `k` σ on one side (k = 3: 0.00135)."""
    return 0.5 * math.erfc(k / math.sqrt(2.0))


def count_bounds(n: int, p: float, k: float) -> tuple[int, int]:
    """(lo, hi): for a binomial draw of `n` trials at rate `p`, counts at most `lo` and counts
    at least `hi` each have a probability below `tail_of(k)`; every count strictly between
    them is ordinary. `lo` is -1 when no count is improbably low, `hi` n + 1 when none is
    improbably high."""
    if n <= 0:
        return -1, n + 1
    p = min(1.0, max(0.0, p))
    if p > 0.5:  # count the other outcome: its bounds, mirrored
        lo, hi = count_bounds(n, 1.0 - p, k)
        return n - hi, n - lo
    if p == 0.0:
        return -1, 1  # a single row is already beyond a rate of zero
    mean = n * p
    variance = mean * (1.0 - p)
    if variance > _EXACT_UP_TO_VARIANCE:
        spread = k * math.sqrt(variance)
        # P(X >= x) ~ P(Z > (x - 0.5 - mean) / sd): improbable once x > mean + 0.5 + k·sd
        hi = math.floor(mean + 0.5 + spread) + 1
        lo = math.ceil(mean - 0.5 - spread) - 1
        return max(-1, lo), min(n + 1, hi)
    return _exact_bounds(n, p, tail_of(k))


def _exact_bounds(n: int, p: float, tail: float) -> tuple[int, int]:
    """`count_bounds` by summing the binomial's terms (p <= 0.5, a small variance: the
    terms that matter are the first few hundred)."""
    ratio = p / (1.0 - p)
    term = math.exp(n * math.log1p(-p))  # P(X = 0)
    below = 0.0  # P(X < x)
    lo = -1
    x = 0
    while x <= n:
        if below + term < tail:  # P(X <= x) still improbable
            lo = x
        below += term
        if 1.0 - below < tail:  # P(X >= x + 1) improbable
            return lo, x + 1
        term *= (n - x) / (x + 1) * ratio
        x += 1
    return lo, n + 1
