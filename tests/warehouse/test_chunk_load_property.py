"""apply_batches on n batches leaves the table, and returns the counts, that applying the
batches one at a time in order does: a derandomised property test per load mode."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, given, settings

from chunk_oracle import Scenario, describe, run_both, scenarios

EXPLORE = os.environ.get("PENSTOCK_PROPERTY_EXAMPLES")
SETTINGS = settings(
    max_examples=int(EXPLORE) if EXPLORE else 60,
    derandomize=not EXPLORE,
    phases=list(Phase) if EXPLORE else [Phase.explicit, Phase.reuse, Phase.generate],
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def check(scenario: Scenario) -> None:
    one_at_a_time, chunked = run_both(scenario)
    assert chunked.counts == one_at_a_time.counts, describe(scenario)
    assert chunked.table == one_at_a_time.table, describe(scenario)


@SETTINGS
@given(scenarios("append"))
def test_append(scenario: Scenario) -> None:
    check(scenario)


@SETTINGS
@given(scenarios("replace"))
def test_replace(scenario: Scenario) -> None:
    check(scenario)


@SETTINGS
@given(scenarios("merge"))
def test_merge(scenario: Scenario) -> None:
    check(scenario)


@SETTINGS
@given(scenarios("scd2"))
def test_scd2(scenario: Scenario) -> None:
    check(scenario)
