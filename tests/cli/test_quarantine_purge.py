"""`penstock quarantine purge OBJECT --before DATE` (issue 10, part 6): the quarantined rows of
batches loaded before DATE go from the warehouse and the lake, and stay gone after a rebuild."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: purging
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.csv"
    columns:
      id: {type: bigint, required: true}
      qty: {type: integer, min: 0}
"""


def lake_rows(project: Path) -> list[tuple[str, int]]:
    """(batch id, rows) held in the lake's quarantine files of items."""
    files = sorted((project / "lake/quarantine/items").glob("*.parquet"))
    if not files:
        return []
    paths = ", ".join(f"'{f}'" for f in files)
    return duckdb.sql(
        f"SELECT _batch_id, count(*) FROM read_parquet([{paths}]) GROUP BY ALL ORDER BY ALL"
    ).fetchall()


def held(project: Path) -> list[tuple[str, int]]:
    return query(
        project, "SELECT _batch_id, count(*) FROM quarantine.items GROUP BY ALL ORDER BY ALL"
    )


def test_purge_deletes_old_quarantined_rows_for_good(tmp_path: Path, cli: Cli) -> None:
    project = write_project(
        tmp_path,
        PROJECT,
        {
            "landing/items/a.csv": "id,qty\n1,5\n2,-1\n3,x\n",  # two rows quarantined
            "landing/items/b.csv": "id,qty\n4,1\n5,-2\n",  # one
        },
    )
    assert cli("run", "-p", project)[0] == 0
    (old,), (new,) = held(project)[:1], held(project)[1:]
    assert sorted([old[1], new[1]]) == [1, 2]  # both files loaded in one run: one cutoff
    # a third file, loaded later
    time.sleep(0.05)
    cutoff = datetime.now(UTC)
    time.sleep(0.05)
    (project / "landing/items/c.csv").write_text("id,qty\n6,-3\n7,2\n")
    assert cli("run", "-p", project)[0] == 0
    before = held(project)
    assert sum(n for _, n in before) == 4 and lake_rows(project) == before
    late = [b for b, _ in before if b not in (old[0], new[0])]

    code, out, _ = cli(
        "quarantine", "purge", "items", "-p", project, "--before", cutoff.isoformat(), "--dry-run"
    )
    assert code == 0 and "would delete 3 quarantined row(s) of 2 batch(es)" in out
    assert held(project) == before  # a dry run deletes nothing

    code, out, _ = cli(
        "quarantine", "purge", "items", "-p", project, "--before", cutoff.isoformat(), "--json"
    )
    assert code == 0
    purged = json.loads(out)
    assert (purged["rows"], purged["dry_run"]) == (3, False)
    assert sorted(b["batch_id"] for b in purged["batches"]) == sorted([old[0], new[0]])
    # the warehouse and the lake keep the later batch's row only; the ledger keeps its counts
    assert held(project) == [(late[0], 1)]
    assert lake_rows(project) == [(late[0], 1)]
    assert query(project, "SELECT sum(rows_quarantined) FROM penstock.loads") == [(4,)]
    record = json.loads((project / "lake/purges/items.json").read_text())
    assert [(r["rows"], sorted(r["batch_ids"])) for r in record] == [(3, sorted([old[0], new[0]]))]

    # a rebuild replays every batch, and the purged rows stay gone
    assert cli("rebuild", "-p", project)[0] == 0
    assert held(project) == [(late[0], 1)]
    assert lake_rows(project) == [(late[0], 1)]
    assert query(project, "SELECT count(*) FROM items") == [(3,)]

    code, out, _ = cli("quarantine", "purge", "items", "-p", project, "--before", "2000-01-01")
    assert code == 0 and "no quarantined rows of batches loaded before 2000-01-01 00:00 UTC" in out


def test_purge_asks_for_what_it_needs(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/items/a.csv": "id,qty\n1,5\n"})
    code, _, err = cli("quarantine", "purge", "items", "-p", project)
    assert code != 0 and "needs --before DATE" in err
    code, _, err = cli("quarantine", "purge", "items", "-p", project, "--before", "last week")
    assert code != 0 and "give a date (2026-01-31)" in err
    code, _, err = cli("quarantine", "purge", "nope", "-p", project, "--before", "2026-01-01")
    assert code != 0 and "nope" in err
    code, _, err = cli("quarantine", "items", "-p", project, "--before", "2026-01-01")
    assert code != 0 and "belong to `penstock quarantine purge OBJECT`" in err
