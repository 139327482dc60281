"""Data quality scores by dimension, per batch and over several batches, and a batch's
checkpoint metrics (what control limits watch).

Definitions (README, "Quality scores and anomalies"):

- A dimension's score is 1 − rows failing it / rows checked, where rows checked are the
  batch's records (rows_in, malformed ones included) and a row fails a dimension when it
  broke at least one rule of that dimension: a row breaking two validity rules counts once in
  validity; a row breaking a validity and a completeness rule counts once in each.
  Uniqueness: the rows superseded by a later row of their key within the batch (duplicates).
  A failed batch check (`row_count`) fails every record in its dimension.
- Only the dimensions the contract measures are scored (quality/dimensions.py,
  `checked_dimensions`); the others are None, "not measured", never a free 100%.
- The whole (`total`) is the weighted mean of the scored dimensions (`quality: weights:`,
  1 each by default); its rows_failed are the rows that broke any rule.
- Over several batches (an object's run, or its latest scorecard) the rows add up: a
  dimension scores 1 − Σ failing / Σ checked, so a big batch weighs more than a small one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from penstock.catalog import ObjectSpec
from penstock.catalog.quality_settings import DIMENSIONS, TOTAL, QualitySettings
from penstock.observe.events import DimensionScore
from penstock.quality.dimensions import checked_dimensions, reason_names

__all__ = ["batch_metrics", "batch_scores", "combine_scores", "is_rate", "weighted_total"]


def _score(failed: int, checked: int) -> float | None:
    return None if checked <= 0 else 1.0 - failed / checked


def weighted_total(scores: Mapping[str, float | None], settings: QualitySettings) -> float | None:
    """The weighted mean of the scored dimensions (None when none is scored or weighs)."""
    pairs = [(settings.weight(d), s) for d, s in scores.items() if d != TOTAL and s is not None]
    weight = sum(w for w, _ in pairs)
    if weight <= 0:
        return None
    return sum(w * s for w, s in pairs) / weight


def batch_scores(
    obj: ObjectSpec,
    settings: QualitySettings,
    *,
    rows_in: int,
    rows_invalid: int,
    rows_duplicate: int,
    dimension_rows: Mapping[str, int],
) -> tuple[DimensionScore, ...]:
    """A batch's score in each dimension its contract measures, then the weighted total."""
    measured = checked_dimensions(obj)
    failing = dict(dimension_rows)
    failing["uniqueness"] = rows_duplicate
    out = [
        DimensionScore(
            dimension=d,
            rows_checked=rows_in,
            rows_failed=min(failing.get(d, 0), rows_in),
            score=_score(min(failing.get(d, 0), rows_in), rows_in),
        )
        for d in DIMENSIONS
        if d in measured
    ]
    total = weighted_total({s.dimension: s.score for s in out}, settings)
    out.append(
        DimensionScore(dimension=TOTAL, rows_checked=rows_in, rows_failed=rows_invalid, score=total)
    )
    return tuple(out)


def combine_scores(
    batches: Iterable[Sequence[DimensionScore]], settings: QualitySettings
) -> tuple[DimensionScore, ...]:
    """Several batches' scores as one: rows add up per dimension, the total is weighed
    again from the combined dimensions."""
    checked: dict[str, int] = {}
    failed: dict[str, int] = {}
    for scores in batches:
        for s in scores:
            checked[s.dimension] = checked.get(s.dimension, 0) + s.rows_checked
            failed[s.dimension] = failed.get(s.dimension, 0) + s.rows_failed
    out = [
        DimensionScore(
            dimension=d,
            rows_checked=checked[d],
            rows_failed=failed[d],
            score=_score(failed[d], checked[d]),
        )
        for d in DIMENSIONS
        if d in checked
    ]
    if TOTAL in checked:
        total = weighted_total({s.dimension: s.score for s in out}, settings)
        out.append(
            DimensionScore(
                dimension=TOTAL, rows_checked=checked[TOTAL], rows_failed=failed[TOTAL], score=total
            )
        )
    return tuple(out)


def is_rate(metric: str) -> bool:
    """Is the metric (of `batch_metrics`) a rate of the batch's rows? Its control limits then
    cover its sampling noise (quality/control.py)."""
    return metric in _RATES or metric.startswith(_RATE_FAMILIES)


_RATES = frozenset({"quarantine_rate", "duplicate_rate"})
_RATE_FAMILIES = ("quarantine_rate:", "null_rate:")


def batch_metrics(
    obj: ObjectSpec,
    *,
    rows_in: int,
    rows_quarantined: int,
    rows_duplicate: int,
    reason_counts: Mapping[str, int],
    null_counts: Mapping[str, int],
    duration_s: float | None,
    extracted_at: datetime,
    loaded_at: datetime | None,
) -> dict[str, float]:
    """A batch's checkpoint metrics: rows_in; with rows, the rates (quarantine overall and
    per contract rule, duplicates, missing values per column); its load step's duration and
    its freshness lag (loaded − extracted, seconds)."""
    metrics: dict[str, float] = {"rows_in": float(rows_in)}
    if rows_in > 0:
        metrics["quarantine_rate"] = rows_quarantined / rows_in
        for reason in reason_names(obj):
            metrics[f"quarantine_rate:{reason}"] = reason_counts.get(reason, 0) / rows_in
        metrics["duplicate_rate"] = rows_duplicate / rows_in
        for column in obj.columns:
            metrics[f"null_rate:{column}"] = null_counts.get(column, 0) / rows_in
    if duration_s is not None:
        metrics["duration_s"] = float(duration_s)
    if loaded_at is not None:
        metrics["freshness_lag_s"] = max(0.0, (loaded_at - extracted_at).total_seconds())
    return metrics
