"""End to end: daily files loaded through `penstock run` (real files, real DuckDB, the real
metadata store) form a per-batch history; a file with a planted quarantine-rate spike is the
one batch flagged; the anomaly is in the store, reaches the bus's sinks as an `anomaly` event
(a hook records it) and `penstock anomalies --json` lists it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from penstock.catalog import load_project
from penstock.observe import MetadataStore
from penstock.observe.schema import dq_anomalies, dq_metrics

from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]

# duration_s and freshness_lag_s are left out: timings of tiny files are noise on a shared
# machine, and a test that says "exactly this batch" must not depend on them
PROJECT = """
name: shop
hooks: [record_anomalies.py:Recorder]
sources: {landing: {kind: files, path: ./landing, settle: 0s}}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    anomalies:
      metrics: [rows_in, "quarantine_rate*", "null_rate:*", duplicate_rate]
    columns:
      id:     {type: bigint}
      amount: {type: "decimal(10,2)", min: 0}
"""

HOOK = """
import json
from pathlib import Path
from typing import Any


class Recorder:
    def on_anomaly(self, *, object: str, metric: str, batch_id: str, **more: Any) -> None:
        line = json.dumps({"object": object, "metric": metric, "batch_id": batch_id})
        with Path(__file__).with_name("anomalies.jsonl").open("a") as out:
            out.write(line + "\\n")
"""

DAYS = 14
SPIKE_DAY = 12
ROWS = 20


def day_file(day: int) -> str:
    lines = ["id,amount"]
    for i in range(ROWS):
        bad = day == SPIKE_DAY and i < 8  # 8 of 20 rows break min: amount on that day
        lines.append(f"{day * 1000 + i},{'-1.00' if bad else '5.00'}")
    return "\n".join(lines) + "\n"


def test_a_planted_spike_in_a_backlog_of_daily_files_is_the_one_anomaly(
    tmp_path: Path, cli: Cli
) -> None:
    files: dict[str, str | bytes] = {
        f"landing/orders/2026-01-{day:02d}.csv": day_file(day) for day in range(1, DAYS + 1)
    }
    files["record_anomalies.py"] = HOOK
    project = write_project(tmp_path, PROJECT, files)
    code, _, err = cli("run", "-p", project)  # the whole backlog in one run
    assert code == 0, err

    proj = load_project(project)
    with MetadataStore(proj.metadata_url) as store, store.engine.connect() as conn:
        m, a = dq_metrics.c, dq_anomalies.c
        history = conn.execute(
            sa.select(m.source_file, m.value)
            .where(m.metric == "quarantine_rate")
            .order_by(m.batch_time, m.source_file)
        ).all()
        stored = conn.execute(sa.select(a.source_file, a.metric, a.direction, a.points)).all()
    # one point per file, even though all were extracted and loaded in the same run
    assert len(history) == DAYS
    assert [v for _, v in history].count(0.4) == 1
    spiked = f"landing/orders/2026-01-{SPIKE_DAY:02d}.csv"
    assert {row.source_file for row in stored} == {spiked}
    assert {row.metric for row in stored} == {"quarantine_rate", "quarantine_rate:min:amount"}
    assert {row.direction for row in stored} == {"spike"}
    assert {row.points for row in stored} == {SPIKE_DAY - 1}  # the 11 files before it

    # the event reached the bus's sinks: the project's hook recorded it
    recorded = [json.loads(line) for line in (project / "anomalies.jsonl").read_text().splitlines()]
    assert sorted(r["metric"] for r in recorded) == [
        "quarantine_rate",
        "quarantine_rate:min:amount",
    ]

    code, out, _ = cli("anomalies", "-p", project, "--json")
    assert code == 0
    listed = json.loads(out)["anomalies"]
    assert {(x["source_file"], x["metric"]) for x in listed} == {
        (spiked, "quarantine_rate"),
        (spiked, "quarantine_rate:min:amount"),
    }
    spike = next(x for x in listed if x["metric"] == "quarantine_rate")
    assert spike["value"] == 0.4 and spike["expected"] == 0.0
    # σ limits [0, 0]; the sampling floor's: 11 files of 20 rows without a quarantined row
    # make one of 20 ordinary (a 4% chance), two not (0.1%): the upper limit is 1 of 20
    assert spike["lower"] == 0.0 and spike["upper"] == 0.05
    code, out, _ = cli("anomalies", "orders", "-p", project)
    assert code == 0 and "quarantine_rate" in out and "spike" in out

    # a rerun loads nothing new: nothing is judged again
    assert cli("run", "-p", project)[0] == 0
    code, out, _ = cli("anomalies", "-p", project, "--json")
    assert len(json.loads(out)["anomalies"]) == 2


def test_history_carries_across_runs_and_before_min_points_nothing_is_judged(
    tmp_path: Path, cli: Cli
) -> None:
    project = write_project(
        tmp_path,
        PROJECT.replace("hooks: [record_anomalies.py:Recorder]\n", ""),
        {f"landing/orders/2026-01-{d:02d}.csv": day_file(d) for d in range(1, 6)},
    )
    landing = project / "landing" / "orders"
    assert cli("run", "-p", project)[0] == 0
    # the spike comes as the 6th point: fewer than min_points (10) before it, no limits yet
    (landing / f"2026-01-{SPIKE_DAY:02d}.csv").write_text(day_file(SPIKE_DAY))
    assert cli("run", "-p", project)[0] == 0
    code, out, _ = cli("anomalies", "-p", project, "--json")
    assert json.loads(out)["anomalies"] == []
    # later files, one run each: the history spans runs
    for day in range(13, 19):
        (landing / f"2026-01-{day:02d}.csv").write_text(day_file(day))
        assert cli("run", "-p", project)[0] == 0
    bad = day_file(SPIKE_DAY).replace(str(SPIKE_DAY * 1000), "99999")  # another, new file
    (landing / "2026-01-19.csv").write_text(bad)
    assert cli("run", "-p", project)[0] == 0
    code, out, _ = cli("anomalies", "-p", project, "--json")
    assert code == 0
    found = json.loads(out)["anomalies"]
    assert {x["source_file"] for x in found} == {"landing/orders/2026-01-19.csv"}
    # the earlier spike is in the training window: the limits are wide, yet 0.4 is outside
    spike = next(x for x in found if x["metric"] == "quarantine_rate")
    assert spike["points"] == 12 and 0 < spike["upper"] < 0.4


def test_files_loaded_together_record_no_duration_of_their_own(tmp_path: Path, cli: Cli) -> None:
    """A micro-batch's files share one transaction's time: judging each file's `duration_s`
    against the others flagged the later ones of a long chunk. A file loaded alone keeps it."""
    project = write_project(
        tmp_path,
        PROJECT.replace("hooks: [record_anomalies.py:Recorder]\n", ""),
        {f"landing/orders/2026-01-{d:02d}.csv": day_file(d) for d in range(1, 4)},
    )
    assert cli("run", "-p", project)[0] == 0  # three small files: one micro-batch
    (project / "landing" / "orders" / "2026-01-04.csv").write_text(day_file(4))
    assert cli("run", "-p", project)[0] == 0  # one file, loaded alone
    proj = load_project(project)
    with MetadataStore(proj.metadata_url) as store, store.engine.connect() as conn:
        m = dq_metrics.c
        rows = conn.execute(sa.select(m.source_file, m.metric).where(m.metric == "rows_in")).all()
        timed = conn.execute(sa.select(m.source_file).where(m.metric == "duration_s")).all()
    assert len(rows) == 4
    assert [r.source_file for r in timed] == ["landing/orders/2026-01-04.csv"]
