"""Scores by dimension, computed by hand for a small batch, match what a real run stores in
dq_results and what `penstock quality --json` shows; the checkpoint metrics of the batch."""

from __future__ import annotations

import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
import sqlalchemy as sa

from penstock.catalog import load_project
from penstock.catalog.loader import ProjectError
from penstock.observe import MetadataStore
from penstock.observe.schema import dq_metrics, dq_results
from penstock.quality.dimensions import checked_dimensions, reason_dimensions, row_dimensions

from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: shop
quality:
  weights: {completeness: 2}
sources: {landing: {kind: files, path: ./landing, settle: 0s}}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    columns:
      id:     {type: bigint}
      amount: {type: "decimal(10,2)", min: 0, dimensions: {min: accuracy}}
      status: {type: text, in: [a, b]}
      email:  {type: text, pattern: "^[^@]+@[^@]+$"}
      ts:     {type: timestamp, max: now}
    checks:
      - {name: positive_or_b, expression: "amount > 0 OR status = 'b'"}
"""

# record: what it breaks (dimension)
CSV = """id,amount,status,email,ts
1,10.00,a,x@y,2020-01-01 00:00:00
2,-5.00,a,x@y,2020-01-01 00:00:00
,5.00,a,x@y,2020-01-01 00:00:00
4,abc,c,x@y,2020-01-01 00:00:00
5,3.00,a,bad,2020-01-01 00:00:00
6,3.00,a,x@y,2999-01-01 00:00:00
7,3.00,b,x@y,2020-01-01 00:00:00
7,4.00,b,x@y,2020-01-02 00:00:00
9,-1.00,b,x@y,2020-01-01 00:00:00
10,2.00,a,x@y,2020-01-01 00:00:00
11,1.00,a,x@y,2020-01-01 00:00:00,extra
"""
# 1 ok · 2 min:amount (accuracy) and check (consistency) · 3 required:id (completeness) ·
# 4 type:amount and in:status (validity, once) · 5 pattern:email (validity) ·
# 6 max:ts = now (timeliness) · 7 superseded by 8 (uniqueness) · 9 min:amount (accuracy; the
# check passes: status b) · 10 ok · 11 malformed (validity)
ROWS = 11
FAILING = {
    "completeness": 1,
    "validity": 3,
    "uniqueness": 1,
    "consistency": 1,
    "accuracy": 2,
    "timeliness": 1,
}
WEIGHTS = {"completeness": 2}


def expected_scores() -> dict[str, Fraction]:
    scores = {d: 1 - Fraction(n, ROWS) for d, n in FAILING.items()}
    weight = {d: WEIGHTS.get(d, 1) for d in scores}
    scores["total"] = sum(weight[d] * s for d, s in scores.items()) / sum(weight.values())
    return scores


def test_hand_computed_scores_match(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/orders/day1.csv": CSV})
    assert expected_scores()["total"] == Fraction(67, 77)  # (2·10 + 8 + 10 + 10 + 9 + 10) / 77
    code, _, err = cli("run", "-p", project)
    assert code == 0, err
    proj = load_project(project)
    with MetadataStore(proj.metadata_url) as store, store.engine.connect() as conn:
        r = dq_results.c
        stored = {
            row.dimension: (row.rows_checked, row.rows_failed, row.score)
            for row in conn.execute(sa.select(r.dimension, r.rows_checked, r.rows_failed, r.score))
        }
        m = dq_metrics.c
        metrics = {row.metric: row.value for row in conn.execute(sa.select(m.metric, m.value))}
    expected = expected_scores()
    assert set(stored) == set(expected)
    for dimension, score in expected.items():
        checked, failed, value = stored[dimension]
        assert checked == ROWS
        assert value == pytest.approx(float(score), abs=1e-12), dimension
        if dimension != "total":
            assert failed == FAILING[dimension]
    assert stored["total"][1] == 7  # rows that broke any rule: 2, 3, 4, 5, 6, 9, 11

    # the checkpoint metrics of the batch
    assert metrics["rows_in"] == ROWS
    assert metrics["quarantine_rate"] == pytest.approx(7 / ROWS)
    assert metrics["quarantine_rate:min:amount"] == pytest.approx(2 / ROWS)
    assert metrics["quarantine_rate:malformed"] == pytest.approx(1 / ROWS)
    assert metrics["quarantine_rate:in:status"] == pytest.approx(1 / ROWS)
    assert metrics["duplicate_rate"] == pytest.approx(1 / ROWS)
    assert metrics["null_rate:id"] == pytest.approx(1 / ROWS)  # row 3
    assert metrics["null_rate:amount"] == 0  # `abc` failed its type: not a missing value
    assert metrics["duration_s"] > 0 and metrics["freshness_lag_s"] >= 0

    code, out, _ = cli("quality", "-p", project, "--json")
    assert code == 0
    (card,) = json.loads(out)["objects"]
    assert card["object"] == "orders" and card["latest"]["batches"] == 1
    shown = card["latest"]["scores"]
    for dimension, score in expected.items():
        assert shown[dimension]["score"] == pytest.approx(float(score), abs=1e-12)
    # each quarantined row's failed dimensions follow from its reasons
    code, out, _ = cli("quarantine", "orders", "-p", project, "--json")
    assert code == 0
    per_row = {r["_row_number"]: r["_dimensions"] for r in json.loads(out)["rows"]}
    assert per_row == {
        2: ["consistency", "accuracy"],
        3: ["completeness"],
        4: ["validity"],
        5: ["validity"],
        6: ["timeliness"],
        9: ["accuracy"],
        11: ["validity"],
    }
    code, out, _ = cli("quality", "orders", "-p", project)
    assert code == 0
    assert "accuracy" in out and "81.8%" in out and "87.01%" in out  # 9/11, 67/77


def test_two_runs_add_up_rows_and_the_trend_shows_both(tmp_path: Path, cli: Cli) -> None:
    clean = "id,amount,status,email,ts\n" + "".join(
        f"{i},1.00,a,x@y,2020-01-01 00:00:00\n" for i in range(100, 111)
    )
    project = write_project(tmp_path, PROJECT, {"landing/orders/day1.csv": CSV})
    assert cli("run", "-p", project)[0] == 0
    (project / "landing/orders/day2.csv").write_text(clean)
    assert cli("run", "-p", project)[0] == 0
    code, out, _ = cli("quality", "-p", project, "--json", "--runs", "5")
    (card,) = json.loads(out)["objects"]
    assert [run["batches"] for run in card["trend"]] == [1, 1]
    assert card["latest"]["scores"]["validity"]["score"] == 1.0
    assert card["trend"][0]["scores"]["validity"]["score"] == pytest.approx(8 / 11)
    code, out, _ = cli("quality", "-p", project)
    assert code == 0 and "▲" in out  # validity rose from the first run to the second


def test_dimensions_of_reasons_and_rows(tmp_path: Path) -> None:
    obj = load_project(write_project(tmp_path, PROJECT)).objects["orders"]
    dims = reason_dimensions(obj)
    assert dims["required:id"] == "completeness"  # a key column is required
    assert dims["min:amount"] == "accuracy"  # its override
    assert dims["max:ts"] == "timeliness"  # max: now
    assert dims["in:status"] == dims["pattern:email"] == dims["type:amount"] == "validity"
    assert dims["check:positive_or_b"] == "consistency"
    assert row_dimensions(dims, ["min:amount", "check:positive_or_b", "type:x"]) == [
        "validity",
        "consistency",
        "accuracy",
    ]
    assert checked_dimensions(obj) == [
        "completeness",
        "validity",
        "uniqueness",
        "consistency",
        "accuracy",
        "timeliness",
    ]


def test_a_dimension_override_must_name_a_declared_rule(tmp_path: Path) -> None:
    yml = PROJECT.replace("dimensions: {min: accuracy}", "dimensions: {max: accuracy}")
    project = write_project(tmp_path, yml)
    with pytest.raises(ProjectError) as caught:
        load_project(project)
    message = str(caught.value)
    assert "penstock.yml" in message and "dimensions.max" in message
    assert "declares no max rule" in message
    bad = PROJECT.replace("dimensions: {min: accuracy}", "dimensions: {min: beauty}")
    with pytest.raises(ProjectError) as caught:
        load_project(write_project(tmp_path / "b", bad))
    assert "dimensions.min" in str(caught.value)
