"""`load: replace` takes the newest delivered snapshot, even when it repeats an older one.

For replace a batch is a delivery: its id derives from the content hash plus the delivered
file's name and mtime. For the other modes the id stays object + content hash, so identical
content under a new name is skipped, with a log line naming the earlier file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import penstock

from helpers import log_messages, query, write_project

YML = """
name: snaps
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  prices:
    source: landing
    files: "prices/*.csv"
    load: {load}
    columns:
      id: {{type: bigint, required: true}}
"""

# Deliveries get explicit mtimes a minute apart, in the past: no two share a timestamp.
T0 = time.time_ns() - 3600 * 10**9


def deliver(project: Path, name: str, ids: list[int], day: int) -> None:
    path = project / "landing" / "prices" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id\n" + "".join(f"{i}\n" for i in ids))
    stamp = T0 + day * 60 * 10**9
    os.utime(path, ns=(stamp, stamp))


def table(project: Path) -> list[int]:
    return [row[0] for row in query(project, "SELECT id FROM prices ORDER BY id")]


def ledger(project: Path) -> list[tuple[str, str, str]]:
    return query(
        project,
        "SELECT source_file, content_hash, batch_id FROM penstock.loads "
        "WHERE object = 'prices' ORDER BY loaded_at",
    )


def test_a_new_file_repeating_an_older_snapshot_becomes_the_table(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML.format(load="replace"))
    for day, (name, ids) in enumerate([("day1.csv", [1]), ("day2.csv", [2]), ("day3.csv", [1])]):
        deliver(project, name, ids, day)
        result = penstock.run(project)
        assert result.status == "success"
        assert table(project) == ids, name
    rows = ledger(project)
    assert [r[0] for r in rows] == [f"landing/prices/day{d}.csv" for d in (1, 2, 3)]
    assert rows[2][1] == rows[0][1]  # the same content hash ...
    assert rows[2][2] != rows[0][2]  # ... delivered again: a new batch
    messages = log_messages(project, result.run_id)
    assert (
        f"landing/prices/day3.csv repeats the content of landing/prices/day1.csv "
        f"(batch {rows[0][2]}); loaded as the newest snapshot"
    ) in messages

    again = penstock.run(project)  # nothing new: nothing staged, nothing loaded
    assert again.loads() == []
    assert table(project) == [1]

    rebuilt = penstock.rebuild(project)
    assert rebuilt.status == "success"
    assert table(project) == [1]
    assert len(ledger(project)) == 3


def test_the_same_file_rewritten_with_older_content_becomes_the_table(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML.format(load="replace"))
    for day, ids in enumerate([[1], [2], [1]]):
        deliver(project, "snapshot.csv", ids, day)
        assert penstock.run(project).status == "success"
        assert table(project) == ids, day
    rows = ledger(project)
    assert len(rows) == 3
    assert rows[0][1] == rows[2][1] and len({r[2] for r in rows}) == 3
    assert penstock.rebuild(project).status == "success"
    assert table(project) == [1]


def test_other_modes_skip_identical_content_under_a_new_name(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML.format(load="append"))
    deliver(project, "day1.csv", [1], 0)
    deliver(project, "day2.csv", [2], 1)
    assert penstock.run(project).status == "success"
    deliver(project, "day3.csv", [1], 2)
    result = penstock.run(project)
    assert result.status == "success" and result.loads() == []
    assert table(project) == [1, 2]
    rows = ledger(project)
    assert [r[0] for r in rows] == ["landing/prices/day1.csv", "landing/prices/day2.csv"]
    assert (
        f"landing/prices/day3.csv has the same content as landing/prices/day1.csv "
        f"(batch {rows[0][2]}); staged once"
    ) in log_messages(project, result.run_id)
    # the duplicate is remembered: the next run does not read it again
    quiet = penstock.run(project)
    assert "prices: 3 file(s), 0 new or changed" in log_messages(project, quiet.run_id)
