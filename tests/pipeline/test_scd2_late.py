"""SCD2 with late versions: they are placed into the history, and arrival order does not matter."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import penstock

from helpers import query, write_project

YML = """
name: scd2_late
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "people/*.csv"
    key: [id]
    order_by: changed_at
    load: scd2
    columns:
      id:         {type: integer, required: true}
      city:       {type: text}
      changed_at: {type: date, required: true}
"""

HISTORY = (
    "SELECT id, city, _valid_from::DATE::VARCHAR, _valid_to::DATE::VARCHAR, _is_current "
    "FROM people ORDER BY id, _valid_from"
)


def load_in_order(project: Path, drops: list[str]) -> None:
    """One run per drop, so the drops load in exactly this order."""
    for index, body in enumerate(drops):
        path = project / "landing" / "people" / f"{index:02d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("id,city,changed_at\n" + body)
        assert penstock.run(project).status == "success"


def ledger_counts(project: Path) -> list[tuple[int, int, int, int]]:
    return [
        tuple(int(v) for v in row)  # type: ignore[misc]
        for row in query(
            project,
            "SELECT rows_inserted, rows_updated, rows_unchanged, rows_stale FROM penstock.loads "
            "ORDER BY source_file",
        )
    ]


def test_a_late_version_is_placed_between_two_stored_ones(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML)
    load_in_order(project, ["1,Oslo,2024-01-01\n", "1,Rome,2024-03-01\n", "1,Lima,2024-02-01\n"])
    assert query(project, HISTORY) == [
        (1, "Oslo", "2024-01-01", "2024-02-01", False),
        (1, "Lima", "2024-02-01", "2024-03-01", False),
        (1, "Rome", "2024-03-01", None, True),
    ]
    assert ledger_counts(project)[-1] == (0, 1, 0, 0)


def test_a_late_version_equal_to_the_next_one_moves_its_start_earlier(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML)
    load_in_order(project, ["1,Oslo,2024-01-01\n", "1,Rome,2024-03-01\n", "1,Rome,2024-02-01\n"])
    assert query(project, HISTORY) == [
        (1, "Oslo", "2024-01-01", "2024-02-01", False),
        (1, "Rome", "2024-02-01", None, True),
    ]


def test_a_late_version_before_the_first_one(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML)
    load_in_order(project, ["1,Oslo,2024-01-01\n", "1,Bern,2023-06-01\n"])
    assert query(project, HISTORY) == [
        (1, "Bern", "2023-06-01", "2024-01-01", False),
        (1, "Oslo", "2024-01-01", None, True),
    ]


def test_same_start_later_record_and_later_batch_win(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML)
    load_in_order(
        project,
        [
            "1,x,2024-01-01\n1,Oslo,2024-01-01\n",  # same key and start in one file
            "1,Rome,2024-03-01\n",
            "1,Kyiv,2024-01-01\n",  # a correction of the first version
        ],
    )
    assert query(project, HISTORY) == [
        (1, "Kyiv", "2024-01-01", "2024-03-01", False),
        (1, "Rome", "2024-03-01", None, True),
    ]
    assert query(
        project,
        "SELECT rows_in, rows_loaded, rows_duplicate FROM penstock.loads "
        "ORDER BY source_file LIMIT 1",
    ) == [(2, 1, 1)]
    assert ledger_counts(project)[-1] == (0, 1, 0, 0)


DROPS = [
    "1,Oslo,2024-01-01\n2,Pune,2024-01-15\n",
    "1,Rome,2024-03-01\n",
    "1,Lima,2024-02-01\n2,Pune,2024-02-15\n",
    "1,Rome,2024-04-01\n2,Cork,2024-03-15\n",
]


def _history_for(tmp_path: Path, order: tuple[int, ...]) -> list[tuple[object, ...]]:
    project = write_project(tmp_path / "-".join(map(str, order)), YML)
    load_in_order(project, [DROPS[i] for i in order])
    return query(project, HISTORY)


@pytest.mark.slow
def test_the_history_does_not_depend_on_arrival_order(tmp_path: Path) -> None:
    expected = [
        (1, "Oslo", "2024-01-01", "2024-02-01", False),
        (1, "Lima", "2024-02-01", "2024-03-01", False),
        (1, "Rome", "2024-03-01", None, True),
        (2, "Pune", "2024-01-15", "2024-03-15", False),
        (2, "Cork", "2024-03-15", None, True),
    ]
    for order in itertools.permutations(range(len(DROPS))):
        assert _history_for(tmp_path, order) == expected, order
