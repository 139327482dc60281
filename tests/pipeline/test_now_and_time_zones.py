"""`now` is the batch's extraction time (so a rebuild agrees with the run), and results do not
depend on the machine's time zone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

import penstock

from helpers import write_project

NOW_PROJECT = """
name: now_rule
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  events:
    source: landing
    files: "events/*.csv"
    columns:
      id: {type: integer}
      at: {type: timestamp, max: now}
      at_tz: {type: timestamptz, max: now}
"""


def _quarantined(project: Path) -> list[tuple[int, list[str]]]:
    conn = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    try:
        rows = conn.execute(
            "SELECT CAST(id AS INTEGER), _reasons FROM quarantine.events ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    return [(int(i), list(r)) for i, r in rows]


def test_a_row_failing_max_now_stays_quarantined_after_rebuild(tmp_path: Path) -> None:
    # a time a few seconds ahead: after the extraction, before the rebuild
    ahead = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    naive = ahead.replace(tzinfo=None).isoformat(sep=" ")
    body = (
        f"id,at,at_tz\n1,2000-01-01 00:00:00,2000-01-01T00:00:00Z\n2,{naive},{ahead.isoformat()}\n"
    )
    project = write_project(tmp_path, NOW_PROJECT, {"landing/events/a.csv": body})
    penstock.run(project)
    (manifest,) = (project / "lake").rglob("manifest.json")
    extracted_at = datetime.fromisoformat(json.loads(manifest.read_text())["extracted_at"])
    assert extracted_at < ahead, "the run took too long for this test's margin"
    expected = [(2, ["max:at", "max:at_tz"])]
    assert _quarantined(project) == expected

    time.sleep(max(0.0, (ahead - datetime.now(UTC)).total_seconds()) + 0.5)
    assert datetime.now(UTC) > ahead  # a wall-clock `now` would let row 2 load now
    result = penstock.rebuild(project)
    assert result.status == "success", result
    assert _quarantined(project) == expected


ZONE_PROJECT = """
name: zones
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  events:
    source: landing
    files: "events/*.csv"
    key: [id]
    order_by: at_tz
    columns:
      id: {type: integer}
      at: {type: timestamp, min: "2024-01-01 09:30:00"}
      at_oslo: {type: timestamp, timezone: Europe/Oslo}
      at_tz: {type: timestamptz, min: "2024-01-01T08:30:00+00:00"}
      at_tz_oslo: {type: timestamptz, timezone: Europe/Oslo, max: "2024-06-01 00:00:00"}
      day: {type: date}
  versions:
    source: landing
    files: "events/*.csv"
    key: [id]
    order_by: at_tz
    load: scd2
    columns:
      id: {type: integer}
      at_tz: {type: timestamptz}
"""
ZONE_DATA = (
    "id,at,at_oslo,at_tz,at_tz_oslo,day\n"
    "1,2024-01-01 10:00:00,2024-01-01T10:00:00+02:00,2024-01-01T10:00:00+02:00,"
    "2024-01-01 10:00,2024-01-01\n"
    "2,2024-01-01 09:00:00,2024-07-01T10:00:00Z,2024-01-01 08:00:00,2024-07-01 10:00,2024-07-01\n"
    "1,2024-01-01 11:00:00,2024-01-01 11:00,2024-01-01T09:00:00Z,2024-01-01 10:00,2024-01-02\n"
)
CHILD = """
import sys, duckdb, penstock
penstock.run(sys.argv[1])
conn = duckdb.connect(sys.argv[1] + "/warehouse.duckdb", read_only=True)
conn.execute("SET TimeZone = 'UTC'")
columns = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in sys.argv[2].split(","))
for row in conn.execute(f"SELECT {columns} FROM events ORDER BY ALL").fetchall():
    print("events", list(row))
for row in conn.execute(
    "SELECT _row_number, _reasons FROM quarantine.events ORDER BY _row_number"
).fetchall():
    print("quarantine", list(row))
for row in conn.execute(
    "SELECT id, CAST(_valid_from AS VARCHAR), CAST(_valid_to AS VARCHAR) FROM versions "
    "ORDER BY ALL"
).fetchall():
    print("versions", list(row))
"""
COLUMNS = "id,at,at_oslo,at_tz,at_tz_oslo,day"


def _run_in_zone(tmp_path: Path, zone: str) -> list[str]:
    project = write_project(tmp_path / zone.replace("/", "_"), ZONE_PROJECT)
    (project / "landing/events").mkdir(parents=True)
    (project / "landing/events/a.csv").write_text(ZONE_DATA)
    env = {**os.environ, "TZ": zone}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(project), COLUMNS],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.splitlines()


def test_results_do_not_depend_on_the_machine_time_zone(tmp_path: Path) -> None:
    los_angeles = _run_in_zone(tmp_path, "America/Los_Angeles")
    kolkata = _run_in_zone(tmp_path, "Asia/Kolkata")
    assert los_angeles == kolkata
    assert los_angeles == [
        "events ['1', '2024-01-01 11:00:00', '2024-01-01 11:00:00', '2024-01-01 09:00:00+00', "
        "'2024-01-01 09:00:00+00', '2024-01-02']",
        "quarantine [1, ['min:at_tz']]",
        "quarantine [2, ['min:at', 'min:at_tz', 'max:at_tz_oslo']]",
        # SCD2 dates a version by its instant, as UTC wall-clock time; both versions of key 1
        # in the file enter the history (10:00+02:00 is 08:00 UTC, before 09:00Z)
        "versions [1, '2024-01-01 08:00:00', '2024-01-01 09:00:00']",
        "versions [1, '2024-01-01 09:00:00', None]",
        "versions [2, '2024-01-01 08:00:00', None]",
    ]
