"""`penstock rebuild` reproduces the warehouse after the contract gained a column, in every
load mode: run batch 1 under contract v1, add a column, run batch 2, rebuild, compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import penstock

from helpers import log_messages, query, write_project

YML = """
name: rebuild_eq
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "people/*.csv"
    EXTRA
    columns:
      id:         {type: integer, required: true}
      city:       {type: text}
      changed_at: {type: date}
"""

MODES = {
    "append": "load: append",
    "replace": "load: replace",
    "merge": "key: [id]\n    order_by: changed_at\n    load: merge",
    "scd2": "key: [id]\n    order_by: changed_at\n    load: scd2",
}


def table_state(project: Path) -> list[tuple[Any, ...]]:
    """Every row, columns by name: an added column sits last in an altered table and among
    the contract columns in a rebuilt one, which is layout, not content."""
    names = sorted(
        n
        for (n,) in query(
            project,
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'people' "
            "AND table_schema = 'main'",
        )
    )
    cols = ", ".join(f'"{n}"' for n in names)
    return [tuple(names), *sorted(query(project, f"SELECT {cols} FROM people"), key=repr)]


def ledger_state(project: Path) -> list[tuple[Any, ...]]:
    """The ledger but run_id (a rebuild is another run; loaded_at is kept)."""
    return query(project, "SELECT * EXCLUDE (run_id) FROM penstock.loads ORDER BY batch_id")


@pytest.mark.parametrize("mode", list(MODES))
def test_rebuild_after_an_added_column_gives_the_same_tables(tmp_path: Path, mode: str) -> None:
    project = write_project(tmp_path, YML.replace("EXTRA", MODES[mode]))
    people = project / "landing" / "people"
    people.mkdir(parents=True)
    (people / "01.csv").write_text("id,city,changed_at\n1,Oslo,2024-01-01\n2,Pune,2024-01-01\n")
    assert penstock.run(project).status == "success"
    yml = (project / "penstock.yml").read_text()
    (project / "penstock.yml").write_text(
        yml.replace(
            "      changed_at: {type: date}\n",
            "      changed_at: {type: date}\n      note:       {type: text}\n",
        )
    )
    # key 1: the same values a month later, the new column empty; key 2: a real change
    (people / "02.csv").write_text(
        "id,city,changed_at,note\n1,Oslo,2024-02-01,\n2,Cork,2024-02-01,moved\n"
    )
    assert penstock.run(project).status == "success"
    tables, ledger = table_state(project), ledger_state(project)
    assert penstock.rebuild(project).status == "success"
    assert table_state(project) == tables
    assert ledger_state(project) == ledger
    if mode == "scd2":  # no version for key 1: a NULL in the new column is no change
        assert query(project, "SELECT id, count(*) FROM people GROUP BY id ORDER BY id") == [
            (1, 1),
            (2, 2),
        ]


def test_rebuild_reproduces_an_scd2_history_with_corrections_and_late_versions(
    tmp_path: Path,
) -> None:
    project = write_project(tmp_path, YML.replace("EXTRA", MODES["scd2"]))
    people = project / "landing" / "people"
    people.mkdir(parents=True)
    drops = [
        "1,Oslo,2024-01-01\n1,Rome,2024-03-01\n2,Pune,2024-01-01\n",
        "1,Lima,2024-02-01\n2,Cork,2024-01-01\n",  # a late version; a correction
        "1,Rome,2024-03-01\n1,Kyiv,2024-04-01\n1,Kyiv,2024-04-01\n",
    ]
    for index, body in enumerate(drops):
        (people / f"{index:02d}.csv").write_text("id,city,changed_at\n" + body)
        assert penstock.run(project).status == "success"
    tables, ledger = table_state(project), ledger_state(project)
    assert query(project, "SELECT id, city FROM people ORDER BY id, _valid_from") == [
        (1, "Oslo"),
        (1, "Lima"),
        (1, "Rome"),
        (1, "Kyiv"),
        (2, "Cork"),
    ]
    assert penstock.rebuild(project).status == "success"
    assert table_state(project) == tables
    assert ledger_state(project) == ledger


def test_an_added_column_the_old_files_carried_is_filled_in_by_rebuild(tmp_path: Path) -> None:
    """Rows loaded before a column joined the contract read NULL in it even where their files
    had it: the run says so and names the rebuild, which fills the column from the stage."""
    project = write_project(tmp_path, YML.replace("EXTRA", MODES["merge"]))
    people = project / "landing" / "people"
    people.mkdir(parents=True)
    (people / "01.csv").write_text("id,city,changed_at,note\n1,Oslo,2024-01-01,first\n")
    assert penstock.run(project).status == "success"
    yml = (project / "penstock.yml").read_text()
    (project / "penstock.yml").write_text(
        yml.replace(
            "      changed_at: {type: date}\n",
            "      changed_at: {type: date}\n      note:       {type: text}\n",
        )
    )
    (people / "02.csv").write_text("id,city,changed_at,note\n2,Cork,2024-02-01,second\n")
    result = penstock.run(project)
    assert result.status == "success"
    assert query(project, "SELECT id, note FROM people ORDER BY id") == [(1, None), (2, "second")]
    assert (
        "people: column(s) note added to the contract; 1 loaded batch(es) carry them in the "
        "stage zone, but their rows keep NULL until `penstock rebuild --select people` "
        "replays them"
    ) in log_messages(project, result.run_id)
    assert penstock.rebuild(project, "people").status == "success"
    assert query(project, "SELECT id, note FROM people ORDER BY id") == [
        (1, "first"),
        (2, "second"),
    ]
