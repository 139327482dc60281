"""A source's recent availability, from the samples runs record (`penstock status`).

Each time a run asks a source what it holds for an object (lists a files source's directory,
reads a database or REST window) it emits `source_checked`; the metrics sink stores it as a
`source_up` measure (1 reached, 0 not) and, when it answered, a `source_latency_seconds` one
(observe/metrics.py). A source's uptime is the share of its samples of the last
`WINDOW_DAYS` days that were up (of the latest `MAX_SAMPLES` samples of the project, so
status stays fast on a busy store); its last sample says whether it is up now, as the last
run saw it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from penstock.errors import TransientError
from penstock.observe.status_reads import Rows, utc

WINDOW_DAYS = 7
MAX_SAMPLES = 5000
_SAMPLES = """
SELECT labels, value, at FROM metrics
WHERE project = :project AND name = :name
ORDER BY at DESC
LIMIT :limit
"""


@dataclass(frozen=True)
class SourceHealth:
    source: str
    kind: str
    checks: int  # samples in the window
    up: int  # of which reached
    last_checked_at: datetime | None
    last_up: bool | None
    last_latency_s: float | None  # of the latest sample that was up

    @property
    def uptime(self) -> float | None:
        return self.up / self.checks if self.checks else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "checks": self.checks,
            "up": self.up,
            "uptime": self.uptime,
            "last_checked_at": self.last_checked_at,
            "last_up": self.last_up,
            "last_latency_s": self.last_latency_s,
        }


def _source(labels: Any) -> str | None:
    if isinstance(labels, str):
        try:
            labels = json.loads(labels)
        except ValueError:
            return None
    found = labels.get("source") if isinstance(labels, dict) else None
    return found if isinstance(found, str) else None


def _samples(rows: Rows, project: str, name: str) -> list[tuple[str, float, datetime]]:
    try:
        read = rows(_SAMPLES, {"project": project, "name": name, "limit": MAX_SAMPLES})
    except TransientError:  # a store from before metrics were recorded: no samples
        return []
    found = []
    for row in read:
        source, at = _source(row["labels"]), utc(row["at"])
        if source is not None and at is not None:
            found.append((source, float(row["value"]), at))
    return found


def source_health(
    rows: Rows | None,
    project: str,
    sources: Sequence[tuple[str, str]],
    now: datetime | None = None,
) -> list[SourceHealth]:
    """Each source (name, kind) with its samples of the last WINDOW_DAYS days (newest first)."""
    if rows is None:
        return [SourceHealth(n, k, 0, 0, None, None, None) for n, k in sources]
    since = (now or datetime.now(UTC)) - timedelta(days=WINDOW_DAYS)
    ups = [s for s in _samples(rows, project, "source_up") if s[2] >= since]
    # a check's two measures share its time
    latencies = {(s, at): v for s, v, at in _samples(rows, project, "source_latency_seconds")}
    out = []
    for name, kind in sources:
        mine = [(value, at) for source, value, at in ups if source == name]
        reached = next((at for value, at in mine if value >= 1.0), None)
        latency = latencies.get((name, reached)) if reached is not None else None
        out.append(
            SourceHealth(
                source=name,
                kind=kind,
                checks=len(mine),
                up=sum(1 for value, _ in mine if value >= 1.0),
                last_checked_at=mine[0][1] if mine else None,
                last_up=mine[0][0] >= 1.0 if mine else None,
                last_latency_s=latency,
            )
        )
    return out
