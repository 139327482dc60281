"""Retention deletes what is old and only that: per kind (runs with their steps and logs,
logs, batch decisions, catalog versions no run uses), per project, the same rows counted by
--dry-run as deleted by a real collection; after every run; from `penstock gc`."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from penstock import load_project
from penstock.catalog.observability import RETENTION_KINDS as SETTINGS_KINDS
from penstock.engine import Session
from penstock.engine.session import catalog_snapshot
from penstock.observe import (
    BatchDecision,
    CatalogSnapshot,
    EventBus,
    LogRecord,
    MetadataStore,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from penstock.observe.retention import COLLECT_EVERY, RETENTION_KINDS, collect, collection_due
from penstock.observe.schema import project_versions

from helpers import write_project

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
PERIODS = {
    "runs": 60 * DAY,
    "logs": 30 * DAY,
    "metrics": 90 * DAY,
    "dq_results": 90 * DAY,
    "lineage": 90 * DAY,
    "batch_decisions": 10 * DAY,
}


def test_the_kinds_are_the_same_in_the_settings_and_the_store() -> None:
    assert SETTINGS_KINDS == RETENTION_KINDS


def a_run(
    bus: EventBus,
    run: str,
    ended: datetime,
    *,
    project: str = "p",
    version: str = "h-cur",
    logs: tuple[datetime, ...] = (),
) -> None:
    started = ended - timedelta(minutes=5)
    bus.emit(
        RunStarted(
            run_id=run,
            project=project,
            project_hash=version,
            command="run",
            selector=None,
            at=started,
        )
    )
    for n in range(2):
        sid = f"{run}-s{n}"
        bus.emit(
            StepStarted(run_id=run, step_id=sid, object="o", batch_id=None, step="load", at=started)
        )
        bus.emit(
            StepFinished(
                run_id=run,
                step_id=sid,
                object="o",
                batch_id=None,
                step="load",
                status="success",
                at=started + timedelta(minutes=1),
            )
        )
    for at in logs:
        bus.emit(LogRecord(run_id=run, level="info", message=f"{run} at {at:%m-%d}", at=at))
    bus.emit(RunFinished(run_id=run, status="success", at=ended))


def version(store: MetadataStore, project_hash: str, first_seen: datetime) -> None:
    store.record_catalog(CatalogSnapshot("p", project_hash, (), (), (), ("raw",)))
    with store.engine.begin() as conn:
        conn.execute(
            project_versions.update()
            .where(project_versions.c.project_hash == project_hash)
            .values(first_seen=first_seen)
        )


def counts(store: MetadataStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            table: int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in (
                "job_runs",
                "step_runs",
                "logs",
                "batch_decisions",
                "project_versions",
                "catalog_groups",
            )
        }


def remaining(store: MetadataStore, sql: str) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(str(v) for v in conn.execute(sa.text(sql)).scalars())


def test_retention_deletes_what_is_old_and_only_that(store: MetadataStore) -> None:
    bus = EventBus()
    bus.subscribe(store.handle)
    # p: a run older than its runs retention (60 d), one in it with a log older than the logs
    # retention (30 d), a recent one; project q's old run is q's business
    a_run(bus, "old", NOW - 100 * DAY, version="h-old", logs=(NOW - 100 * DAY,))
    a_run(bus, "mid", NOW - 45 * DAY, version="h-mid", logs=(NOW - 45 * DAY, NOW - 20 * DAY))
    a_run(bus, "new", NOW - 1 * DAY, logs=(NOW - 1 * DAY,))
    a_run(bus, "q-old", NOW - 100 * DAY, project="q", version="hq", logs=(NOW - 100 * DAY,))
    # a log of a run the store never recorded (the store missed its start), old
    bus.emit(LogRecord(run_id="unknown", level="info", message="orphan", at=NOW - 50 * DAY))
    # catalog versions: h-old only the old run used; h-mid a run that stays uses; h-cur is
    # the current one (never deleted, however old)
    for h in ("h-old", "h-mid", "h-cur"):
        version(store, h, NOW - 200 * DAY)
    for days, who in ((20, "alice"), (5, "bob")):
        store.record_batch_decision(
            "p", BatchDecision("o", f"b-{who}", "skip", "bad", who, NOW - days * DAY)
        )
    before = counts(store)

    dry = collect(
        store, PERIODS, project="p", project_hash="h-cur", objects=["o"], now=NOW, dry_run=True
    )
    assert counts(store) == before  # a dry run deletes nothing
    expected = {
        "job_runs": 1,  # old
        "step_runs": 2,  # old's
        "logs": 3,  # old's, mid's 45-day-old one, the orphan
        "batch_decisions": 1,  # alice's, 20 days old
        "project_versions": 1,  # h-old
        "catalog_groups": 1,  # h-old's
    }
    assert {t: n for t, n in dry.rows.items() if n} == expected
    assert dry.cutoffs["runs"] == NOW - 60 * DAY and dry.cutoffs["logs"] == NOW - 30 * DAY

    real = collect(store, PERIODS, project="p", project_hash="h-cur", objects=["o"], now=NOW)
    assert real.rows == dry.rows  # exactly what the dry run counted
    assert remaining(store, "SELECT run_id FROM job_runs") == ["mid", "new", "q-old"]
    assert remaining(store, "SELECT DISTINCT run_id FROM step_runs") == ["mid", "new", "q-old"]
    assert remaining(store, "SELECT message FROM logs") == [
        "mid at 05-12",
        "new at 05-31",
        "q-old at 02-21",
    ]
    assert remaining(store, "SELECT decided_by FROM batch_decisions") == ["bob"]
    assert remaining(store, "SELECT project_hash FROM project_versions") == [
        "h-cur",
        "h-mid",
    ]
    assert remaining(store, "SELECT project_hash FROM catalog_groups") == ["h-cur", "h-mid"]
    again = collect(store, PERIODS, project="p", project_hash="h-cur", objects=["o"], now=NOW)
    assert again.total == 0


def test_a_run_never_ended_is_old_by_when_it_started(store: MetadataStore) -> None:
    bus = EventBus()
    bus.subscribe(store.handle)
    for run, started in (("killed", NOW - 70 * DAY), ("running", NOW - 2 * DAY)):
        bus.emit(
            RunStarted(
                run_id=run,
                project="p",
                project_hash="h",
                command="run",
                selector=None,
                at=started,
            )
        )
    report = collect(store, PERIODS, project="p", now=NOW)
    assert report.rows["job_runs"] == 1
    assert remaining(store, "SELECT run_id FROM job_runs") == ["running"]


PROJECT = """
name: kept
retention: {{runs: {runs}, logs: 30d}}
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  items:
    source: landing
    files: "items/*.csv"
    columns:
      id: {{type: bigint}}
"""


def old_history(project: Path, days: int) -> None:
    """A run of this project `days` old, with its step and log, recorded in its store."""
    proj = load_project(project)
    with MetadataStore(proj.metadata_url) as store:
        bus = EventBus()
        bus.subscribe(store.handle)
        a_run(
            bus,
            f"run-{days}d",
            datetime.now(UTC) - days * DAY,
            project="kept",
            version=proj.project_hash,
            logs=(datetime.now(UTC) - days * DAY,),
        )


def test_every_run_applies_retention_when_it_ends(tmp_path: Path) -> None:
    project = write_project(
        tmp_path, PROJECT.format(runs="40d"), {"landing/items/a.csv": "id\n1\n"}
    )
    old_history(project, 50)
    old_history(project, 35)
    with Session(load_project(project)) as session:
        run_id = session.runner.run().run_id
        with session.store.engine.connect() as conn:  # still there while the run goes on
            assert len(list(conn.execute(sa.text("SELECT run_id FROM job_runs")))) == 3
    with MetadataStore(load_project(project).metadata_url) as store:
        assert remaining(store, "SELECT run_id FROM job_runs") == sorted([run_id, "run-35d"])
        # run-35d stays (runs: 40d) but its 35-day-old log goes (logs: 30d)
        assert remaining(store, "SELECT DISTINCT run_id FROM logs") == [run_id]


def test_a_run_collects_at_most_once_an_hour_unless_the_periods_change(tmp_path: Path) -> None:
    """A collection costs a run ~0.02 s (twenty-odd DELETEs compiled in a fresh process): the
    runs within COLLECT_EVERY of the last collection skip it; a changed retention: collects
    at the next run; `collect` (penstock gc) always does, and resets the clock."""
    project = write_project(
        tmp_path, PROJECT.format(runs="40d"), {"landing/items/a.csv": "id\n1\n"}
    )
    proj = load_project(project)
    periods = {k: proj.retention_period(k) for k in RETENTION_KINDS}
    start = datetime.now(UTC)

    def due(at: datetime, kept: dict[str, timedelta] = periods) -> bool:
        """What a run's end does: collect if due; whether it collected."""
        with MetadataStore(proj.metadata_url) as store:
            if not collection_due(store, kept, project="kept", now=at):
                return False
            collect(store, kept, project="kept", now=at)
        return True

    assert due(start)  # never collected
    old_history(project, 50)
    assert not due(start + COLLECT_EVERY / 2)  # collected half an hour ago: skipped
    with MetadataStore(proj.metadata_url) as store:
        assert remaining(store, "SELECT run_id FROM job_runs") == ["run-50d"]
    assert due(start + COLLECT_EVERY)  # an hour later: collected
    with MetadataStore(proj.metadata_url) as store:
        assert remaining(store, "SELECT run_id FROM job_runs") == []
    later = start + COLLECT_EVERY
    assert not due(later + timedelta(minutes=1))
    assert due(later + timedelta(minutes=2), {**periods, "logs": 7 * DAY})  # periods changed
    assert not due(later + timedelta(minutes=3), {**periods, "logs": 7 * DAY})
    assert due(later - timedelta(minutes=5), {**periods, "logs": 7 * DAY})  # clock went back
    with MetadataStore(proj.metadata_url) as store:
        collect(store, periods, project="kept", now=later + timedelta(minutes=4))
    assert not due(later + timedelta(minutes=5))  # penstock gc collected under these

    # through runs: the first collects, the next (seconds later) does not
    other = write_project(
        tmp_path / "b", PROJECT.format(runs="40d"), {"landing/items/a.csv": "id\n1\n"}
    )
    old_history(other, 50)
    with Session(load_project(other)) as session:
        first = session.runner.run().run_id
    old_history(other, 45)
    (other / "landing" / "items" / "b.csv").write_text("id\n2\n")
    with Session(load_project(other)) as session:
        second = session.runner.run().run_id
    with MetadataStore(load_project(other).metadata_url) as store:
        assert remaining(store, "SELECT run_id FROM job_runs") == sorted([first, second, "run-45d"])


def test_penstock_gc_reports_and_deletes(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    project = write_project(tmp_path, PROJECT.format(runs="2w"), {"landing/items/a.csv": "id\n1\n"})
    assert cli("run", "-p", project)[0] == 0
    old_history(project, 20)
    code, out, _ = cli("gc", "-p", project, "--dry-run", "--json")
    assert code == 0
    dry = json.loads(out)
    assert dry["dry_run"] is True and dry["retention_days"]["runs"] == 14
    assert (dry["rows"]["job_runs"], dry["rows"]["step_runs"], dry["rows"]["logs"]) == (1, 2, 1)
    assert dry["total"] == 4
    code, out, _ = cli("gc", "-p", project)
    assert code == 0 and "4 row(s) deleted" in out
    code, out, _ = cli("gc", "-p", project, "--json")
    assert json.loads(out)["total"] == 0
    code, out, _ = cli("runs", "-p", project, "--json")
    assert len(json.loads(out)) == 1


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("{runs: 12h}", "retention.runs: must be at least 1d (24h), got '12h'"),
        ("{logs: soon}", "retention.logs: expected a duration such as 90d, 36h or 2w"),
        ("{forever: 1d}", "retention.forever"),
    ],
)
def test_retention_settings_are_checked(
    tmp_path: Path, setting: str, message: str, cli: Callable[..., tuple[int, str, str]]
) -> None:
    written = "retention: {runs: 90d, logs: 30d}"
    yml = PROJECT.format(runs="90d").replace(written, f"retention: {setting}")
    project = write_project(tmp_path, yml, {})
    code, _, err = cli("gc", "-p", project)
    assert code == 2 and message in err and "penstock.yml:3" in err


def test_the_project_says_how_long_each_kind_is_kept(tmp_path: Path) -> None:
    yml = PROJECT.format(runs="36h").replace("name: kept", "name: kept\nretention_days: 7")
    proj = load_project(write_project(tmp_path, yml, {}))
    assert proj.retention_period("runs") == timedelta(hours=36)
    assert proj.retention_period("logs") == 30 * DAY
    assert proj.retention_period("lineage") == 7 * DAY  # retention_days: the default
    assert catalog_snapshot(proj).project == "kept"
