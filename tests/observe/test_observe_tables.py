"""The metrics and lineage sinks' writes on both stores (SQLite and PostgreSQL): running
totals add up (counters) or replace (gauges) in one upsert; measures and lineage rows land and
read back; the exposition builds histograms from the stored buckets."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from penstock.catalog import load_project
from penstock.observe import (
    BatchLoaded,
    Dataset,
    MetadataStore,
    RunFinished,
    SchemaField,
    StepFinished,
    StepStarted,
)
from penstock.observe.lineage import LineageRecorder
from penstock.observe.metrics import MetricsSink, read_totals
from penstock.observe.prometheus import registry_for
from penstock.observe.schema import lineage

from helpers import write_project

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_totals_add_up_across_sinks_and_gauges_keep_the_latest(store: MetadataStore) -> None:
    for rows, duration in ((10, 0.2), (5, 40.0)):  # two processes, one after the other
        sink = MetricsSink(store, "shop")
        sink.handle(
            StepFinished(
                run_id="r",
                step_id="s",
                object="orders",
                batch_id="b",
                step="load",
                status="success",
                duration_s=duration,
            )
        )
        sink.handle(
            BatchLoaded(
                run_id="r",
                step_id="s",
                object="orders",
                batch_id="b",
                source_file="a.csv",
                table="orders",
                load="merge",
                rows_in=rows + 1,
                rows_loaded=rows,
                rows_quarantined=1,
                rows_duplicate=0,
                rows_invalid=1,
                loaded_at=AT,
            )
        )
        sink.handle(
            RunFinished(
                run_id="r", status="success", command="run", outcome="warning", duration_s=duration
            )
        )
        sink.close()
    series = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for s in read_totals(store, "shop")
    }
    assert series[("rows_processed_total", (("object", "orders"), ("outcome", "loaded")))] == 15
    assert series[("dq_pass_ratio", (("object", "orders"),))] == 5 / 6  # the latest run's
    assert series[("last_load_timestamp_seconds", (("object", "orders"),))] == AT.timestamp()
    assert read_totals(store, "other") == []

    text = _exposition(store)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    hist = families["penstock_step_duration_seconds"]
    buckets = {s.labels["le"]: s.value for s in hist.samples if s.name.endswith("_bucket")}
    assert (buckets["0.1"], buckets["0.25"], buckets["30.0"], buckets["60.0"]) == (0, 1, 1, 2)
    assert buckets["+Inf"] == 2
    assert [s.value for s in hist.samples if s.name.endswith("_sum")] == [40.2]
    runs = families["penstock_runs"]
    assert [(s.labels, s.value) for s in runs.samples if s.name == "penstock_runs_total"] == [
        ({"command": "run", "outcome": "warning"}, 2.0)
    ]


def _exposition(store: MetadataStore) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry_for(store, "shop")).decode()


def test_lineage_rows_land_with_schema_and_column_lineage(
    store: MetadataStore, tmp_path: Path
) -> None:
    root = write_project(
        tmp_path / "p",
        """
name: shop
sources: {landing: {kind: files, path: ./landing}}
objects:
  orders:
    source: landing
    files: "*.csv"
    columns:
      id: {type: bigint, from: ID}
""",
    )
    recorder = LineageRecorder(store, load_project(root))
    staged = Dataset(
        namespace="file",
        name="/lake/stage/orders/b1",
        role="stage",
        fields=(SchemaField(name="ID", type="VARCHAR"),),
    )
    table = Dataset(
        namespace="duckdb:///w.duckdb",
        name="main.orders",
        role="table",
        fields=(SchemaField(name="id", type="bigint"),),
    )
    recorder.handle(
        StepStarted(run_id="r", step_id="s1", object="orders", batch_id="b1", step="load")
    )
    finished = StepFinished(
        run_id="r",
        step_id="s1",
        object="orders",
        batch_id="b1",
        step="load",
        status="success",
        inputs=(staged,),
        outputs=(table,),
    )
    recorder.handle(finished)
    recorder.handle(finished)  # delivered again: recorded once
    recorder.close()
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                lineage.c.direction,
                lineage.c.name,
                lineage.c.job,
                lineage.c.fields,
                lineage.c.column_lineage,
            ).order_by(lineage.c.direction)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("input", "/lake/stage/orders/b1", "orders.load", [["ID", "VARCHAR"]], None),
        (
            "output",
            "main.orders",
            "orders.load",
            [["id", "bigint"]],
            {"id": [["file", "/lake/stage/orders/b1", "ID", "TRANSFORMATION"]]},
        ),
    ]
