"""The contract changes under a loaded table: added columns, changed types, rebuild."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import penstock

from helpers import query, write_project

YML = """
name: evolve
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.csv"
    group: raw
    columns:
      id:  {type: integer, required: true}
      qty: {type: integer}
  other:
    source: landing
    files: "other/*.csv"
    group: extra
    columns:
      id: {type: integer}
"""


def test_an_added_column_is_added_to_the_table(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML, {"landing/items/1.csv": "id,qty\n1,5\n"})
    penstock.run(project)
    yml = (project / "penstock.yml").read_text()
    yml = yml.replace(
        "      qty: {type: integer}\n", "      qty: {type: integer}\n      note: {type: text}\n"
    )
    (project / "penstock.yml").write_text(yml)
    (project / "landing" / "items" / "2.csv").write_text("id,qty,note\n2,6,hello\n")
    assert penstock.run(project).status == "success"
    assert query(project, "SELECT id, qty, note FROM items ORDER BY id") == [
        (1, 5, None),
        (2, 6, "hello"),
    ]


def test_a_changed_type_is_a_clear_error_until_rebuild(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    project = write_project(tmp_path, YML, {"landing/items/1.csv": "id,qty\n1,5\n"})
    penstock.run(project)
    yml = (
        (project / "penstock.yml").read_text().replace("qty: {type: integer}", "qty: {type: text}")
    )
    (project / "penstock.yml").write_text(yml)
    (project / "landing" / "items" / "2.csv").write_text("id,qty\n2,many\n")
    code, _, err = cli("run", "-p", project)
    assert code == 1
    message = " ".join(err.split())
    assert "column qty is INTEGER in the warehouse but VARCHAR in the contract" in message
    assert "penstock rebuild --select items" in message
    assert "batches skip" not in message  # skipping the batch would not fix the table
    assert query(project, "SELECT count(*) FROM penstock.loads") == [(1,)]  # nothing half-done
    code, _, _ = cli("rebuild", "-p", project)
    assert code == 0
    assert query(project, "SELECT id, qty FROM items ORDER BY id") == [(1, "5"), (2, "many")]


def test_select_runs_only_the_named_objects(tmp_path: Path) -> None:
    files = {"landing/items/1.csv": "id,qty\n1,5\n", "landing/other/1.csv": "id\n7\n"}
    project = write_project(tmp_path, YML, files)
    result = penstock.run(project, select="group:extra")
    assert {o.object for o in result.loads()} == {"other"}
    assert query(project, "SELECT count(*) FROM penstock.loads WHERE object = 'items'") == [(0,)]
    assert {o.object for o in penstock.run(project, select="items").loads()} == {"items"}


def test_utf16_csv_with_the_encoding_option(tmp_path: Path) -> None:
    yml = YML.replace(
        '    files: "items/*.csv"\n', '    files: "items/*.csv"\n    csv: {encoding: utf-16}\n'
    )
    body = "id,qty\n1,5\n2,ünf\n".encode("utf-16")
    project = write_project(tmp_path, yml, {"landing/items/1.csv": body})
    result = penstock.run(project)
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (2, 1, 1)
    assert query(project, "SELECT qty, _reasons FROM quarantine.items") == [("ünf", ["type:qty"])]


def test_duckdb_settings_come_from_the_warehouse_url(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    from penstock.catalog import load_project
    from penstock.warehouse import connect_warehouse

    yml = YML.replace("name: evolve\n", "name: evolve\nwarehouse: duckdb:///w.duckdb?threads=1\n")
    project = write_project(tmp_path / "ok", yml)
    warehouse = connect_warehouse(load_project(project))
    try:
        settings = warehouse.conn.execute(
            "SELECT current_setting('threads'), current_setting('memory_limit'), "
            "current_setting('enable_progress_bar')"
        ).fetchone()
    finally:
        warehouse.close()
    # threads from the URL, the 1GB default kept, and no DuckDB progress bar on stdout (it
    # would garble `--json` output)
    assert settings == (1, "953.6 MiB", False)
    assert (project / "w.duckdb").is_file()

    bad = write_project(tmp_path / "bad", yml.replace("threads=1", "memory_limt=1GB"))
    code, out, _ = cli("check", "-p", bad)
    assert code == 2
    assert "options were not recognized: memory_limt" in " ".join(out.split())
