"""Prometheus exposition of the metrics the metadata store holds (observe/metrics.py records
them): `penstock serve`'s `/metrics` and `penstock run --pushgateway`'s push.

`StoreCollector` reads the project's running totals from the store on every scrape, so a
long-lived `penstock serve` shows the runs of every process that writes to the store, and
`freshness_lag_seconds` is measured at scrape time. Needs prometheus-client (the `observe`
extra); without it, `require_prometheus` raises the pip line to run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from penstock.errors import MissingExtra, PenstockError, first_line
from penstock.observe.metrics import METRICS, PREFIX, MetricSpec, Series, le_text, read_totals
from penstock.secrets import redact

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

    from penstock.observe.store import MetadataStore

EXTRA_LINE = "pip install 'penstock[observe]'"
PUSH_JOB = "penstock"


def require_prometheus(what: str) -> None:
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise MissingExtra(
            f"{what} needs prometheus-client: {EXTRA_LINE}", extra="observe"
        ) from None


class StoreCollector:
    """A prometheus_client collector over the store's running totals (see the module
    docstring). `live=False` leaves out what only means something at scrape time (the
    freshness lag), for a push."""

    def __init__(self, store: MetadataStore, project: str, *, live: bool = True) -> None:
        self.store = store
        self.project = project
        self.live = live
        self._said: str | None = None

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily(
            f"{PREFIX}metadata_store_up",
            "1 if the metadata store could be read for this scrape, else 0.",
        )
        try:
            series = read_totals(self.store, self.project)
        except Exception as exc:  # a scrape says the store is down; it never raises
            line = redact(f"penstock serve: cannot read the metadata store: {first_line(exc)}")
            if line != self._said:
                self._said = line
                print(line, file=sys.stderr, flush=True)
            up.add_metric([], 0.0)
            yield up
            return
        self._said = None
        up.add_metric([], 1.0)
        yield up
        yield from families(series, live=self.live, now=time.time())


def families(series: list[Series], *, live: bool, now: float) -> Iterator[Metric]:
    """The metric families of `METRICS` from stored series (histograms from their bucket,
    sum and count series)."""
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    by_name: dict[str, list[Series]] = {}
    for s in series:
        by_name.setdefault(s.name, []).append(s)
    for name, spec in METRICS.items():
        full = PREFIX + name
        if spec.type == "counter":
            counter = CounterMetricFamily(full, spec.help, labels=spec.labels)
            for s in by_name.get(name, []):
                counter.add_metric(_values(s, spec.labels), s.value)
            yield counter
        elif spec.type == "histogram":
            family = HistogramMetricFamily(full, spec.help, labels=spec.labels)
            yield _histogram(family, name, spec, by_name)
        elif name == "freshness_lag_seconds":
            if not live:
                continue
            gauge = GaugeMetricFamily(full, spec.help, labels=spec.labels)
            for s in by_name.get("last_load_timestamp_seconds", []):
                gauge.add_metric(_values(s, spec.labels), max(0.0, now - s.value))
            yield gauge
        else:
            gauge = GaugeMetricFamily(full, spec.help, labels=spec.labels)
            for s in by_name.get(name, []):
                gauge.add_metric(_values(s, spec.labels), s.value)
            yield gauge


def _values(s: Series, labels: tuple[str, ...]) -> list[str]:
    return [s.labels.get(label, "") for label in labels]


def _histogram(family: Any, name: str, spec: MetricSpec, by_name: dict[str, list[Series]]) -> Any:
    sums = {tuple(_values(s, spec.labels)): s.value for s in by_name.get(f"{name}_sum", [])}
    stored: dict[tuple[str, ...], dict[str, float]] = {}
    for s in by_name.get(f"{name}_bucket", []):
        stored.setdefault(tuple(_values(s, spec.labels)), {})[s.labels["le"]] = s.value
    for key, counts in stored.items():
        # a bucket no observation fell into was never stored: none were that fast
        buckets = [(le_text(b), counts.get(le_text(b), 0.0)) for b in spec.buckets]
        buckets.append(("+Inf", counts.get("+Inf", 0.0)))
        family.add_metric(list(key), buckets, sums.get(key, 0.0))
    return family


def registry_for(store: MetadataStore, project: str, *, live: bool = True) -> CollectorRegistry:
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store, project, live=live))
    return registry


def push(store: MetadataStore, project: str, gateway: str, *, timeout: float = 10.0) -> None:
    """Push the project's metrics to a Pushgateway with push-add semantics (POST: series of
    the same metric in the group are replaced, other metrics there are kept), grouped by
    job `penstock` and the project."""
    require_prometheus("--pushgateway")
    from prometheus_client import pushadd_to_gateway

    registry = registry_for(store, project, live=False)
    try:
        pushadd_to_gateway(
            gateway,
            job=PUSH_JOB,
            registry=registry,
            grouping_key={"project": project},
            timeout=timeout,
        )
    except Exception as exc:
        raise PenstockError(
            f"cannot push metrics to the Pushgateway at {gateway}: {first_line(exc)}",
            gateway=gateway,
        ) from None
