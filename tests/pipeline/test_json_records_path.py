"""`records:` on a `format: json` files object: the records are the array under those keys of
one JSON object (an API's response saved to a file, a GeoJSON file's features). The array is
split element by element as a top-level array is (element N is record N); what surrounds it
is walked, streamed, and must be valid; a path that leads nowhere fails naming file and line."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

import penstock
import penstock.sources.json_array
from penstock.errors import ProjectErrors

from helpers import query, write_project

YML = """
name: wrapped
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "api/*.GLOB"
    records: RECORDS
    columns:
      id:   {type: bigint, required: true}
      name: {type: text}
"""

# siblings before and after the array hold brackets, braces, commas and quotes in strings,
# escaped quotes, nested arrays and numbers: all skipped, none taken for the records' array
RESPONSE = b"""\xef\xbb\xbf{
  "meta": {"page": 1, "note": "a ] and a } and \\"quoted [\\" text", "list": [[1, 2], {"x": []}]},
  "count": 4,
  "ok": true,
  "data": [
    {"id": 1, "name": "ann"},
    {"id": 2, "name": "b ] }, c"},
    17,
    {"id": "x", "name": "not a number"},
    {"id": 5, "name": "five"}
  ],
  "links": {"next": null, "pages": [1, 2, {"last": "}"}]},
  "trailer": -1.5e3
}
"""


def run(tmp_path: Path, records: str, data: bytes, glob: str = "json") -> penstock.RunResult:
    project = write_project(
        tmp_path,
        YML.replace("GLOB", glob).replace("RECORDS", records),
        {f"landing/api/page.{glob}": data},
    )
    return penstock.run(project)


def loaded(tmp_path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    rows = query(tmp_path, "SELECT id, name FROM items ORDER BY id")
    quarantine = query(
        tmp_path, "SELECT _row_number, _reasons, _raw_line FROM quarantine.items ORDER BY 1"
    )
    return rows, quarantine


EXPECTED = (
    [(1, "ann"), (2, "b ] }, c"), (5, "five")],
    [(3, ["malformed"], "17"), (4, ["type:id"], None)],
)


def test_the_array_under_a_key_is_the_records(tmp_path: Path) -> None:
    result = run(tmp_path, "data", RESPONSE)
    assert result.status == "success", [f.error for f in result.failures]
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (5, 3, 2)
    assert loaded(tmp_path) == EXPECTED


@pytest.mark.parametrize("block", [3, 7, 64])
def test_blocks_smaller_than_the_keys_and_values_read_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(penstock.sources.json_array, "BLOCK_BYTES", block)
    assert run(tmp_path, "data", RESPONSE).status == "success"
    assert loaded(tmp_path) == EXPECTED


def test_a_nested_path_and_a_compressed_file(tmp_path: Path) -> None:
    body = b'{"response": {"total": 2, "items": [{"id": 7, "name": "g"}, {"id": 8}]}, "v": 2}'
    result = run(tmp_path, "response.items", gzip.compress(body), glob="json.gz")
    assert result.status == "success", [f.error for f in result.failures]
    assert query(tmp_path, "SELECT id, name FROM items ORDER BY id") == [(7, "g"), (8, None)]


def test_a_geojson_file_loads_its_features(tmp_path: Path) -> None:
    body = (
        b'{"type": "FeatureCollection", "name": "pts", "crs": {"type": "name", '
        b'"properties": {"name": "EPSG:4326"}}, "features": [\n'
        b'{"type": "Feature", "id": 1, "properties": {"name": "a"}, "geometry": '
        b'{"type": "Point", "coordinates": [1.5, -2]}},\n'
        b'{"type": "Feature", "id": 2, "properties": {"name": "b"}, "geometry": null}\n]}\n'
    )
    assert run(tmp_path, "features", body).status == "success"
    assert query(tmp_path, "SELECT id FROM items ORDER BY id") == [(1,), (2,)]


@pytest.mark.parametrize(
    ("records", "data", "message"),
    [
        (
            "items",
            RESPONSE,
            "landing/api/page.json:14: records: items: the file has no key 'items' (its keys: "
            "meta, count, ok, data, links, trailer)",
        ),
        (
            "meta.page",
            RESPONSE,
            "landing/api/page.json:2: records: meta.page: its value is not an array of records",
        ),
        (
            "count.rows",
            RESPONSE,
            "landing/api/page.json:3: records: count.rows names keys of JSON objects, and "
            "'count' is not an object",
        ),
        (
            "data",
            b'[{"id": 1}]',
            "landing/api/page.json:1: records: data names keys of JSON objects, and the file "
            "is not an object",
        ),
        (
            "data",
            b'{"data": [{"id": 1}]}\n{"data": []}\n',
            "landing/api/page.json:2: content after the JSON object closed: '{\"data\": []}'",
        ),
        (
            "data",
            b'{"data": [{"id": 1}] "more": 1}',
            "landing/api/page.json:1: not valid JSON after the records' array: '\"'",
        ),
        (
            "data",
            b'{"note": "a string that\nruns on", "data": []}',
            "landing/api/page.json:1: a string runs past the end of its line",
        ),
    ],
)
def test_a_path_that_leads_nowhere_fails_naming_file_and_line(
    tmp_path: Path, records: str, data: bytes, message: str
) -> None:
    result = run(tmp_path, records, data)
    assert result.status == "failed"
    assert [f.error for f in result.failures] == [message]
    assert query(tmp_path, "SELECT count(*) FROM penstock.loads") == [(0,)]


def test_records_is_for_json_files_and_rest_objects(tmp_path: Path) -> None:
    project = write_project(
        tmp_path, YML.replace("GLOB", "jsonl").replace("RECORDS", "data"), {"landing/.keep": ""}
    )
    with pytest.raises(ProjectErrors) as caught:
        penstock.load_project(project)
    assert "records: applies to a REST object (endpoint:) or to format: json files" in str(
        caught.value
    )


def test_a_file_rejected_for_its_path_is_read_again_once_records_is_fixed(
    tmp_path: Path,
) -> None:
    """The rejection is remembered with the read settings: the next run skips the file until
    `records:` changes, then reads it."""
    assert run(tmp_path, "items", RESPONSE).status == "failed"
    again = penstock.run(tmp_path)
    assert again.loads() == [] and not again.failures
    yml = tmp_path / "penstock.yml"
    yml.write_text(yml.read_text().replace("records: items", "records: data"))
    fixed = penstock.run(tmp_path)
    assert fixed.status == "success", [f.error for f in fixed.failures]
    assert loaded(tmp_path) == EXPECTED
