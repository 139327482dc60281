"""A CSV file read cleanly is staged as the bytes delivered, and read again with the settings
its manifest records: a rebuild parses it as it was parsed at staging, whatever the object's
settings say now (`rebuild --restage` takes the new ones), and a staged file that no longer
gives the rows it gave is refused, never loaded differently."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import penstock
from penstock.lake.manifest import CSV_DATA_NAME

from helpers import query, snapshot, write_project

PROJECT = """
name: csvstage
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*"
    format: csv
    key: [id]
    load: merge
    csv: {delimiter: ";", comment: "#"}
    columns:
      id:    {type: bigint, required: true}
      name:  {type: text}
      price: {type: "decimal(8,2)"}
"""
BODY = "id;name;price\n1;a;1.50\n2;b\n# a note\n3;c;3.00\n4;d;4;x\n5;e;5\n"


def _batch_dir(project: Path) -> Path:
    (manifest,) = (project / "lake/stage/items").glob("*/manifest.json")
    return manifest.parent


def test_the_stage_holds_the_delivered_bytes_and_how_to_read_them(tmp_path: Path) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/items/a.csv": BODY})
    result = penstock.run(project)
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (5, 3, 2)
    batch = _batch_dir(project)
    assert (batch / CSV_DATA_NAME).read_text() == BODY
    assert not (batch / "data.parquet").exists()
    manifest = json.loads((batch / "manifest.json").read_text())
    assert manifest["data_file"] == CSV_DATA_NAME
    assert manifest["csv_read"] == {
        "names": ["id", "name", "price"],
        "skip": 1,
        "new_line": "\n",
        "delimiter": ";",
        "quote": '"',
        "escape": '"',
        "encoding": "utf-8",
        "comment": "#",
    }
    assert query(project, "SELECT id, name, price::VARCHAR FROM items ORDER BY id") == [
        (1, "a", "1.50"),
        (3, "c", "3.00"),
        (5, "e", "5.00"),
    ]
    # the two records with a wrong number of fields, under their record numbers
    assert query(
        project, "SELECT _row_number, _reasons, _raw_line FROM quarantine.items ORDER BY 1"
    ) == [(2, ["malformed"], "2;b"), (4, ["malformed"], "4;d;4;x")]


def test_a_compressed_file_is_staged_decompressed(tmp_path: Path) -> None:
    project = write_project(
        tmp_path, PROJECT, {"landing/items/a.csv.gz": gzip.compress(BODY.encode())}
    )
    (load,) = penstock.run(project).loads()
    assert (load.rows_in, load.rows_loaded) == (5, 3)
    assert (_batch_dir(project) / CSV_DATA_NAME).read_text() == BODY


def test_rebuild_reads_the_bytes_as_staged_and_restage_reads_them_anew(tmp_path: Path) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/items/a.csv": BODY})
    penstock.run(project)
    tables = ["items", "quarantine.items"]
    before = snapshot(project, tables)
    # the object now says the file has no comments: replaying the stage must not care
    yml = project / "penstock.yml"
    yml.write_text(
        yml.read_text().replace('csv: {delimiter: ";", comment: "#"}', 'csv: {delimiter: ";"}')
    )
    assert penstock.rebuild(project).status == "success"
    assert snapshot(project, tables) == before
    # restaging parses the bytes with the new settings: "# a note" is a (malformed) record now
    result = penstock.rebuild(project, restage=True)
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (6, 3, 3)
    assert query(project, "SELECT count(*) FROM items") == [(3,)]


def test_a_staged_file_that_reads_differently_is_refused(tmp_path: Path) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/items/a.csv": BODY})
    penstock.run(project)
    data = _batch_dir(project) / CSV_DATA_NAME
    data.write_text(BODY + "6;f;6\n")  # the lake's copy changed behind penstock's back
    result = penstock.rebuild(project)
    assert result.status == "failed"
    (failure,) = result.failures
    assert "reads as 4 row(s) now but gave 3 when it was staged" in (failure.error or "")
    assert "penstock rebuild --restage --select items" in (failure.error or "")
    assert query(project, "SELECT count(*) FROM penstock.loads") == [(0,)]
