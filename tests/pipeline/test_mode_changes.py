"""Changing load, key or order_by of an object with data is an error naming the fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

import penstock

from helpers import query, write_project

YML = """
name: modes
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "people/*.csv"
    key: [id]
    order_by: changed_at
    load: merge
    columns:
      id:         {type: integer, required: true}
      city:       {type: text}
      region:     {type: text}
      changed_at: {type: date, required: true}
"""

HEADER = "id,city,region,changed_at\n"


def loaded_project(tmp_path: Path) -> Path:
    project = write_project(
        tmp_path, YML, {"landing/people/01.csv": HEADER + "1,Oslo,N,2024-01-01\n"}
    )
    assert penstock.run(project).status == "success"
    (project / "landing" / "people" / "02.csv").write_text(HEADER + "1,Rome,S,2024-02-01\n")
    return project


def change(project: Path, old: str, new: str) -> None:
    yml = (project / "penstock.yml").read_text()
    assert old in yml
    (project / "penstock.yml").write_text(yml.replace(old, new))


@pytest.mark.parametrize(
    ("old", "new", "what"),
    [
        ("load: merge", "load: scd2", "load"),
        ("key: [id]", "key: [id, region]", "key"),
        ("order_by: changed_at", "order_by: city", "order_by"),
    ],
)
def test_a_changed_load_key_or_order_by_is_an_error_until_rebuild(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]], old: str, new: str, what: str
) -> None:
    project = loaded_project(tmp_path)
    before = query(project, "SELECT * FROM people")
    change(project, old, new)
    code, _, err = cli("run", "-p", project)
    assert code == 1
    message = " ".join(err.split())
    assert f"object people: {what} changed" in message, message
    assert "penstock rebuild --select people" in message
    assert "batches skip" not in message  # skipping the batch would not fix the table
    assert query(project, "SELECT * FROM people") == before  # nothing half-done
    assert query(project, "SELECT count(*) FROM penstock.loads") == [(1,)]
    code, _, _ = cli("rebuild", "-p", project, "--select", "people")
    assert code == 0
    assert query(project, "SELECT count(*) FROM penstock.loads") == [(2,)]
    recorded = query(project, "SELECT load_mode, key, order_by FROM penstock.objects")
    spec = penstock.load_project(project).objects["people"]
    assert recorded == [(spec.load, list(spec.key), spec.order_by)]


def test_merge_to_scd2_after_rebuild_has_a_proper_history(tmp_path: Path) -> None:
    project = loaded_project(tmp_path)
    change(project, "load: merge", "load: scd2")
    assert penstock.run(project).status == "failed"
    assert penstock.rebuild(project, select="people").status == "success"
    assert query(project, "SELECT id, city, _is_current FROM people ORDER BY _valid_from") == [
        (1, "Oslo", False),
        (1, "Rome", True),
    ]


def test_an_unchanged_object_loads_and_records_its_spec(tmp_path: Path) -> None:
    project = loaded_project(tmp_path)
    assert penstock.run(project).status == "success"
    assert query(
        project, "SELECT object, table_name, load_mode, key, order_by FROM penstock.objects"
    ) == [("people", "people", "merge", ["id"], "changed_at")]


def test_a_warehouse_from_before_the_objects_table_uses_the_ledger(tmp_path: Path) -> None:
    project = loaded_project(tmp_path)
    conn = duckdb.connect(str(project / "warehouse.duckdb"))
    conn.execute("DROP TABLE penstock.objects")  # as written by an older penstock
    conn.close()
    change(project, "load: merge", "load: scd2")
    result = penstock.run(project)
    assert result.status == "failed"
    assert "load changed from merge to scd2" in (result.failures[0].error or "")
    change(project, "load: scd2", "load: merge")
    assert penstock.run(project).status == "success"
    assert query(project, "SELECT load_mode, key FROM penstock.objects") == [("merge", ["id"])]
