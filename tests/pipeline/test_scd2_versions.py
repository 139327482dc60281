"""SCD2: every distinct version in a file enters the history; NULL order_by fails the row;
a correction (same order_by, other content, later batch) replaces the version at that start."""

from __future__ import annotations

from pathlib import Path

import penstock

from helpers import query, write_project

YML = """
name: scd2_versions
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "people/*.csv"
    key: [id]
    order_by: changed_at
    load: LOAD
    columns:
      id:         {type: integer, required: true}
      city:       {type: text}
      changed_at: {type: date}
"""

HISTORY = (
    "SELECT id, city, _valid_from::DATE::VARCHAR, _valid_to::DATE::VARCHAR, _is_current "
    "FROM people ORDER BY id, _valid_from"
)


def project_for(tmp_path: Path, load: str = "scd2") -> Path:
    return write_project(tmp_path, YML.replace("LOAD", load))


def drop(project: Path, name: str, body: str) -> penstock.RunResult:
    path = project / "landing" / "people" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id,city,changed_at\n" + body)
    return penstock.run(project)


def ledger(project: Path) -> list[tuple[int, ...]]:
    return query(
        project,
        "SELECT rows_in, rows_loaded, rows_duplicate, rows_inserted, rows_updated, "
        "rows_unchanged, rows_stale FROM penstock.loads ORDER BY source_file",
    )


def test_two_versions_of_a_key_in_one_file_both_enter_the_history(tmp_path: Path) -> None:
    project = project_for(tmp_path)
    # the newer version first: the history follows order_by, not the file's order
    body = "1,Rome,2024-03-01\n1,Oslo,2024-01-01\n2,Pune,2024-01-01\n"
    assert body.count("\n") == 3  # three real records: two versions of key 1
    result = drop(project, "01.csv", body)
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_duplicate) == (3, 3, 0)
    assert query(project, HISTORY) == [
        (1, "Oslo", "2024-01-01", "2024-03-01", False),
        (1, "Rome", "2024-03-01", None, True),
        (2, "Pune", "2024-01-01", None, True),
    ]
    assert ledger(project) == [(3, 3, 0, 3, 0, 0, 0)]


def test_versions_in_one_file_over_a_stored_history(tmp_path: Path) -> None:
    project = project_for(tmp_path)
    drop(project, "01.csv", "1,Oslo,2024-01-01\n")
    drop(project, "02.csv", "1,Lima,2024-02-01\n1,Rome,2024-03-01\n1,Rome,2024-03-01\n")
    assert query(project, HISTORY) == [
        (1, "Oslo", "2024-01-01", "2024-02-01", False),
        (1, "Lima", "2024-02-01", "2024-03-01", False),
        (1, "Rome", "2024-03-01", None, True),
    ]
    # the exact duplicate collapses; two new versions of a stored key are updates
    assert ledger(project)[-1] == (3, 2, 1, 0, 2, 0, 0)


def test_a_repeated_value_with_a_later_date_in_one_file_is_no_new_version(tmp_path: Path) -> None:
    project = project_for(tmp_path)
    drop(project, "01.csv", "1,Oslo,2024-01-01\n1,Oslo,2024-02-01\n")
    assert query(project, HISTORY) == [(1, "Oslo", "2024-01-01", None, True)]
    assert ledger(project) == [(2, 2, 0, 1, 0, 1, 0)]


def test_null_order_by_fails_the_row_in_every_mode(tmp_path: Path) -> None:
    for load in ("scd2", "merge", "append", "replace"):
        project = project_for(tmp_path / load, load)
        result = drop(project, "01.csv", "1,Oslo,2024-01-01\n2,Rome,\n")
        (outcome,) = result.loads()
        assert outcome.reason_counts == {"required:changed_at": 1}, load
        assert query(project, "SELECT id, city FROM people") == [(1, "Oslo")], load


def test_a_correction_replaces_the_current_version(tmp_path: Path) -> None:
    project = project_for(tmp_path)
    drop(project, "01.csv", "1,Oslo,2024-01-01\n2,Pune,2024-01-01\n")
    first = query(project, "SELECT _batch_id FROM people WHERE id = 2")
    result = drop(project, "02.csv", "1,Bergen,2024-01-01\n2,Pune,2024-01-01\n")
    assert query(project, HISTORY) == [
        (1, "Bergen", "2024-01-01", None, True),
        (2, "Pune", "2024-01-01", None, True),
    ]
    # one correction (updated), one identical row (unchanged, keeps its batch); nothing stale
    assert ledger(project)[-1] == (2, 2, 0, 0, 1, 1, 0)
    assert query(project, "SELECT _batch_id FROM people WHERE id = 2") == first
    (load,) = result.loads()
    assert load.status == "success"


def test_a_correction_of_an_old_version_is_placed_in_the_history(tmp_path: Path) -> None:
    project = project_for(tmp_path)
    drop(project, "01.csv", "1,Oslo,2024-01-01\n1,Rome,2024-03-01\n")
    drop(project, "02.csv", "1,Bergen,2024-01-01\n")
    assert query(project, HISTORY) == [
        (1, "Bergen", "2024-01-01", "2024-03-01", False),
        (1, "Rome", "2024-03-01", None, True),
    ]
    assert ledger(project)[-1] == (1, 1, 0, 0, 1, 0, 0)


def test_a_correction_that_equals_the_version_before_merges_with_it(tmp_path: Path) -> None:
    project = project_for(tmp_path)
    drop(project, "01.csv", "1,Oslo,2024-01-01\n1,Rome,2024-03-01\n")
    drop(project, "02.csv", "1,Oslo,2024-03-01\n")
    assert query(project, HISTORY) == [(1, "Oslo", "2024-01-01", None, True)]


def test_as_of_any_day_there_is_exactly_one_row_per_key(tmp_path: Path) -> None:
    project = project_for(tmp_path)
    drop(project, "01.csv", "1,Oslo,2024-01-01\n1,Rome,2024-03-01\n2,Pune,2024-02-01\n")
    drop(project, "02.csv", "1,Lima,2024-02-01\n1,Kyiv,2024-03-01\n2,Cork,2024-02-01\n")
    drop(project, "03.csv", "1,Kyiv,2024-03-01\n1,Oslo,2024-01-01\n")
    rows = query(
        project,
        "SELECT d::DATE, id, count(*) FROM range(DATE '2024-01-01', DATE '2024-05-01', "
        "INTERVAL 1 DAY) r(d) JOIN people ON _valid_from <= d "
        "AND (_valid_to IS NULL OR d < _valid_to) GROUP BY ALL HAVING count(*) <> 1",
    )
    assert rows == []
    assert query(project, HISTORY) == [
        (1, "Oslo", "2024-01-01", "2024-02-01", False),
        (1, "Lima", "2024-02-01", "2024-03-01", False),
        (1, "Kyiv", "2024-03-01", None, True),
        (2, "Cork", "2024-02-01", None, True),
    ]
    assert query(project, "SELECT sum(rows_stale) FROM penstock.loads") == [(0,)]
