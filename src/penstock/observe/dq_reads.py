"""Reading what the quality sink stored: each object's scorecard over its recent runs
(`penstock quality`) and the anomalies found (`penstock anomalies`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from penstock.observe.events import DimensionScore
from penstock.observe.schema import dq_anomalies, dq_results

if TYPE_CHECKING:
    from penstock.catalog.quality_settings import QualitySettings
    from penstock.observe.store import MetadataStore


@dataclass
class RunScores:
    """An object's scores over the batches one run loaded (rows added up per dimension)."""

    run_id: str
    at: datetime  # when its last batch was measured
    batches: int
    scores: tuple[DimensionScore, ...]

    def score(self, dimension: str) -> DimensionScore | None:
        return next((s for s in self.scores if s.dimension == dimension), None)


@dataclass
class Scorecard:
    """An object's scores, oldest run first: `runs[-1]` is the latest."""

    object: str
    runs: list[RunScores] = field(default_factory=list)

    @property
    def latest(self) -> RunScores:
        return self.runs[-1]


@dataclass(frozen=True)
class AnomalyRow:
    object: str
    metric: str
    value: float
    expected: float
    lower: float
    upper: float
    points: int
    direction: str
    batch_id: str
    source_file: str
    batch_time: datetime
    run_id: str
    detected_at: datetime


def scorecards(
    store: MetadataStore,
    project: str,
    settings: QualitySettings,
    *,
    objects: Sequence[str] | None = None,
    runs: int = 10,
) -> list[Scorecard]:
    """Each object's scores in its last `runs` runs that measured batches of it."""
    from penstock.quality.scores import combine_scores

    r = dq_results.c
    where = [r.project == project]
    if objects is not None:
        where.append(r.object.in_(list(objects)))
    latest = (
        sa.select(r.object, r.run_id, sa.func.max(r.measured_at).label("at"))
        .where(*where)
        .group_by(r.object, r.run_id)
    )
    with store.engine.connect() as conn:
        chosen: dict[str, list[tuple[datetime, str]]] = {}
        for row in conn.execute(latest):
            chosen.setdefault(row.object, []).append((row.at, row.run_id))
        for name in chosen:
            chosen[name] = sorted(chosen[name])[-runs:]
        run_ids = sorted({run_id for picks in chosen.values() for _, run_id in picks})
        rows = (
            conn.execute(
                sa.select(
                    r.object, r.run_id, r.batch_id, r.dimension, r.rows_checked, r.rows_failed
                ).where(*where, r.run_id.in_(run_ids))
            ).all()
            if run_ids
            else []
        )
    by_run: dict[tuple[str, str], dict[str, list[DimensionScore]]] = {}
    for found in rows:
        batches = by_run.setdefault((found.object, found.run_id), {})
        batches.setdefault(found.batch_id, []).append(
            DimensionScore(
                dimension=found.dimension,
                rows_checked=int(found.rows_checked),
                rows_failed=int(found.rows_failed),
                score=None,
            )
        )
    out = []
    for name in sorted(chosen):
        card = Scorecard(name)
        for at, run_id in chosen[name]:
            batches = by_run.get((name, run_id), {})
            card.runs.append(
                RunScores(run_id, at, len(batches), combine_scores(batches.values(), settings))
            )
        out.append(card)
    return out


def anomalies(
    store: MetadataStore, project: str, *, object: str | None = None, limit: int = 50
) -> list[AnomalyRow]:
    """The anomalies found, the latest batches first."""
    a = dq_anomalies.c
    query = sa.select(dq_anomalies).where(a.project == project)
    if object is not None:
        query = query.where(a.object == object)
    query = query.order_by(a.batch_time.desc(), a.source_file.desc(), a.metric).limit(limit)
    with store.engine.connect() as conn:
        return [
            AnomalyRow(
                object=row.object,
                metric=row.metric,
                value=float(row.value),
                expected=float(row.expected),
                lower=float(row.lower),
                upper=float(row.upper),
                points=int(row.points),
                direction=row.direction,
                batch_id=row.batch_id,
                source_file=row.source_file,
                batch_time=row.batch_time,
                run_id=row.run_id,
                detected_at=row.detected_at,
            )
            for row in conn.execute(query)
        ]
