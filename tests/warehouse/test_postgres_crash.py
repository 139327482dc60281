"""A `penstock run` killed (SIGKILL) inside a PostgreSQL load transaction leaves neither the
data nor the ledger row of that load; the next run loads it exactly once. A rebuild killed
inside its reset leaves the warehouse as it was."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

import penstock

from pg_projects import (
    OBJECTS,
    ROUND_1,
    ROUND_2,
    PgWarehouse,
    deliver,
    make_project,
    postgres_contents,
)

pytestmark = [pytest.mark.services, pytest.mark.chaos]


def run_killed_at(project: Path, point: str, command: str = "run") -> int:
    env = {**os.environ, "PENSTOCK_FAULT": point}
    done = subprocess.run(
        [sys.executable, "-m", "penstock.cli.app", command, "-p", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    return done.returncode


def fetch(pg: PgWarehouse, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(pg.conninfo) as conn:
        return conn.execute(sql).fetchall()


def tables(pg: PgWarehouse) -> set[str]:
    rows = fetch(
        pg,
        f"SELECT table_schema || '.' || table_name FROM information_schema.tables "
        f"WHERE table_schema IN ('{pg.schema}', '{pg.quarantine}')",
    )
    return {r[0] for r in rows}


def test_a_load_killed_mid_transaction_leaves_neither_data_nor_ledger(
    tmp_path: Path, pg_warehouse: PgWarehouse
) -> None:
    pg = pg_warehouse
    project = make_project(tmp_path / "p", pg.url)
    deliver(project, ROUND_1)
    # objects load one after another: the second one's load is killed before its commit
    run_killed_at(project, "inside_load_transaction@2")
    ledger = fetch(pg, f'SELECT object FROM "{pg.ledger}".loads')
    assert ledger == [(OBJECTS[0],)]  # the first object's load committed, alone
    # the killed load's tables were created in its transaction: rolled back with it
    assert tables(pg) == {f"{pg.schema}.{OBJECTS[0]}", f"{pg.quarantine}.{OBJECTS[0]}"}
    assert fetch(pg, f'SELECT count(*) FROM "{pg.schema}".{OBJECTS[0]}') == [(4,)]

    result = penstock.run(project)
    assert result.failures == [], [f.error for f in result.failures]
    # the killed run is recorded as abandoned (the project's lease proves no process runs it)
    store = sqlite3.connect(project / ".penstock" / "metadata.db")
    (first,) = store.execute("SELECT status FROM job_runs ORDER BY started_at LIMIT 1").fetchone()
    store.close()
    assert first == "abandoned"
    per_batch = fetch(pg, f'SELECT batch_id, count(*) FROM "{pg.ledger}".loads GROUP BY 1')
    assert len(per_batch) == len(OBJECTS) and all(n == 1 for _, n in per_batch)
    repaired = postgres_contents(pg)
    assert {name: len(rows) for name, rows in repaired.items() if name in OBJECTS} == {
        "events": 4,
        "orders": 3,
        "customers": 4,
        "prices": 3,
    }
    assert penstock.run(project).loads() == []  # nothing left to do


def test_a_rebuild_killed_inside_its_reset_changes_nothing(
    tmp_path: Path, pg_warehouse: PgWarehouse
) -> None:
    pg = pg_warehouse
    project = make_project(tmp_path / "p", pg.url)
    deliver(project, ROUND_1)
    penstock.run(project)
    deliver(project, ROUND_2)
    penstock.run(project)
    before = postgres_contents(pg)
    times = fetch(pg, f'SELECT batch_id, loaded_at FROM "{pg.ledger}".loads ORDER BY 1')
    run_killed_at(project, "inside_reset", "rebuild")
    assert postgres_contents(pg) == before
    assert penstock.rebuild(project).failures == []
    assert postgres_contents(pg) == before
    # a rebuild keeps each batch's first load time
    assert fetch(pg, f'SELECT batch_id, loaded_at FROM "{pg.ledger}".loads ORDER BY 1') == times
