"""`format: json`: a file holding one JSON array of objects, read element by element in
blocks. Values are staged raw like JSON Lines; an element that is not an object is a malformed
record with its element number; a file that is not one array fails naming file and line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import penstock
import penstock.sources.json_array

from helpers import query, write_project

YML = """
name: arrays
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "people/*.GLOB"
    columns:
      id:    {type: bigint, required: true}
      name:  {type: text}
      score: {type: "decimal(5,2)"}
      tags:  {type: json}
"""

ARRAY = """[
  {"id": 1, "name": "ann", "score": 1.50, "tags": ["a", "b"]},
  {"id": 2, "name": "quote \\" and ] and }, comma", "score": null},
  42,
  {"id": "x", "name": "not a number"},
  {"id": 4,
   "name": "pretty\\nprinted",
   "tags": {"nested": [1, {"deep": true}]}},
  [1, 2],
  {"id": 5, "name": "ünïcödé"}
]
"""


def zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return bytes(sink.getvalue().to_pybytes())


def load(tmp_path: Path, glob: str, name: str, data: bytes) -> Path:
    project = write_project(
        tmp_path / name.replace(".", "_"),
        YML.replace("GLOB", glob),
        {f"landing/people/{name}": data},
    )
    result = penstock.run(project)
    assert result.status == "success", [f.error for f in result.failures]
    for outcome in result.loads():
        assert outcome.rows_in == (
            outcome.rows_loaded + outcome.rows_quarantined + outcome.rows_duplicate
        )
    return project


def tables(project: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    people = query(project, "SELECT id, name, score::VARCHAR, tags FROM people ORDER BY id")
    quarantine = query(
        project,
        "SELECT _row_number, _reasons, _raw_line, id FROM quarantine.people ORDER BY 1",
    )
    return people, quarantine


def test_an_array_of_objects_loads_like_json_lines(tmp_path: Path) -> None:
    people, quarantine = tables(load(tmp_path, "json", "p.json", ARRAY.encode()))
    assert people == [
        (1, "ann", "1.50", '["a","b"]'),
        (2, 'quote " and ] and }, comma', None, None),
        (4, "pretty\nprinted", None, '{"nested":[1,{"deep":true}]}'),
        (5, "ünïcödé", None, None),
    ]
    assert quarantine == [
        (3, ["malformed"], "42", None),
        (4, ["type:id"], None, "x"),
        (6, ["malformed"], "[1, 2]", None),
    ]
    # the same records as JSON Lines give the same tables
    lines = "\n".join(json.dumps(r) for r in json.loads(ARRAY)) + "\n"
    assert tables(load(tmp_path, "jsonl", "p.jsonl", lines.encode())) == (people, quarantine)


@pytest.mark.parametrize(("suffix", "pack"), [(".gz", gzip.compress), (".zst", zstd)])
def test_compressed_arrays_are_read_directly(tmp_path: Path, suffix: str, pack: Any) -> None:
    plain = tables(load(tmp_path, "json", "p.json", ARRAY.encode()))
    packed = tables(load(tmp_path, f"json{suffix}", f"p.json{suffix}", pack(ARRAY.encode())))
    assert packed == plain


def test_element_numbers_stay_exact_across_tiny_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(penstock.sources.json_array, "BLOCK_BYTES", 5)
    data = "\ufeff" + ARRAY
    assert tables(load(tmp_path, "json", "p.json", data.encode())) == tables(
        load(tmp_path, "json", "q.json", ARRAY.encode())
    )


def test_an_empty_array_loads_nothing(tmp_path: Path) -> None:
    people, quarantine = tables(load(tmp_path, "json", "p.json", b"  [ \n ]\n"))
    assert (people, quarantine) == ([], [])


def test_an_invalid_element_is_malformed_and_the_rest_loads(tmp_path: Path) -> None:
    data = b'[{"id": 1}, {"id": }, {"id": 3},]'
    people, quarantine = tables(load(tmp_path, "json", "p.json", data))
    assert [p[0] for p in people] == [1, 3]
    assert quarantine == [
        (2, ["malformed"], '{"id": }', None),
        (4, ["malformed"], "", None),  # the trailing comma leaves an empty element
    ]


def test_keys_differing_only_in_case_are_refused_per_record(tmp_path: Path) -> None:
    data = b'[{"id": 1, "Name": "a"}, {"id": 2, "name": "b", "NAME": "c"}, {"id": 3, "id": 4}]'
    project = load(tmp_path, "json", "p.json", data)
    assert query(project, "SELECT id, name FROM people") == [(1, "a")]
    assert query(project, "SELECT _row_number, _error FROM quarantine.people ORDER BY 1") == [
        (2, 'malformed: keys "name" and "NAME" differ only in case'),
        (3, 'malformed: key "id" appears twice'),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b'\n{"id": 1}\n{"id": 2}\n',
            "landing/people/p.json:2: not a JSON array: it starts with '{\"id\": 1}' (a file of "
            "one JSON object per line is format: jsonl; one object holding the records under a "
            "key, such as GeoJSON's features, is records: that key)",
        ),
        (
            b'[{"id": 1}]\n\n[{"id": 2}]\n',
            "landing/people/p.json:3: content after the JSON array closed: '[{\"id\": 2}]'",
        ),
        (b"  \n", "landing/people/p.json:2: no JSON array: the file holds only whitespace"),
        (
            b'[{"id": 1},\n{"name": "caf\xe9"},\n{"name": "\xe9t\xe9"}]',
            "landing/people/p.json:2: not valid UTF-8 text (JSON array must be UTF-8): 2 of 3 "
            "elements hold invalid bytes; max_encoding_errors allows 1 (1% of the records, "
            "at most 1,000)",
        ),
    ],
)
def test_a_file_that_is_not_one_array_fails_naming_file_and_line(
    tmp_path: Path, data: bytes, message: str
) -> None:
    project = write_project(tmp_path, YML.replace("GLOB", "json"), {"landing/people/p.json": data})
    result = penstock.run(project)
    assert result.status == "failed"
    assert [f.error for f in result.failures] == [message]
    assert not list((project / "lake" / "stage" / "people").glob("*/manifest.json"))


def test_format_json_is_inferred_and_may_be_declared(tmp_path: Path) -> None:
    project = penstock.load_project(
        write_project(tmp_path, YML.replace("GLOB", "json.gz"), {"landing/people/.keep": ""})
    )
    assert project.objects["people"].format == "json"
    yml = YML.replace('"people/*.GLOB"', '"people/*.txt"\n    format: json')
    project = penstock.load_project(write_project(tmp_path / "declared", yml, {}))
    assert project.objects["people"].format == "json"
