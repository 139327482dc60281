"""JSON Lines edge cases: byte order mark, CRLF and whitespace-only lines, key case, empty keys;
and the CSV rule for header names that differ only in case."""

from __future__ import annotations

from pathlib import Path

import penstock

from helpers import log_messages, query, write_project

YML = """
name: edges
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "people/*.jsonl"
    columns:
      id: {type: bigint, required: true}
      name: {type: text}
"""

CSV_YML = """
name: edges
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "people/*.csv"
    columns:
      id: {type: bigint, required: true}
      name: {type: text}
"""


def people(project: Path) -> list[tuple[object, ...]]:
    return query(project, "SELECT id, name FROM people ORDER BY id")


def quarantined(project: Path) -> list[tuple[object, ...]]:
    return query(
        project,
        "SELECT _row_number, _reasons, _raw_line, _error FROM quarantine.people "
        "ORDER BY _row_number",
    )


def run(project: Path) -> penstock.RunResult:
    result = penstock.run(project)
    assert result.status == "success", [f.error for f in result.failures]
    return result


def test_a_byte_order_mark_is_not_part_of_record_one(tmp_path: Path) -> None:
    data = '\ufeff{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n'.encode()
    project = write_project(tmp_path, YML, {"landing/people/p.jsonl": data})
    result = run(project)
    assert people(project) == [(1, "a"), (2, "b")]
    assert [(o.rows_in, o.rows_loaded) for o in result.loads()] == [(2, 2)]
    assert quarantined(project) == []


def test_crlf_and_whitespace_only_lines_are_blank(tmp_path: Path) -> None:
    data = (
        b'{"id": 1, "name": "a"}\r\n'
        b"\r\n"
        b"\t\r\n"
        b" \t \n"
        b'{"id": 2, "name": "b"}\r\n'
        b"\t\n"
        b'{"id": "x", "name": "c"}\r\n'
        b"not json\r\n"
    )
    project = write_project(tmp_path, YML, {"landing/people/p.jsonl": data})
    result = run(project)
    assert people(project) == [(1, "a"), (2, "b")]
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (4, 2, 2)
    # record numbers count non-blank lines: the bad id is record 3, the broken line record 4
    assert quarantined(project) == [
        (3, ["type:id"], None, None),
        (4, ["malformed"], "not json", "malformed: not a JSON object"),
    ]


def test_keys_match_the_contract_ignoring_case_across_records(tmp_path: Path) -> None:
    data = '{"ID": 1, "Name": "a"}\n{"id": 2, "name": "b"}\n{"Id": 3, "NAME": "c"}\n'
    project = write_project(tmp_path, YML, {"landing/people/p.jsonl": data})
    result = run(project)
    assert people(project) == [(1, "a"), (2, "b"), (3, "c")]
    (load,) = result.loads()
    assert load.rows_quarantined == 0
    messages = log_messages(project, result.run_id)
    assert not [m for m in messages if "not in the contract" in m or "missing" in m]
    (manifest,) = (project / "lake" / "stage" / "people").glob("*/manifest.json")
    assert '"ID"' in manifest.read_text() and '"Name"' in manifest.read_text()  # first spelling


def test_a_record_with_keys_differing_only_in_case_is_malformed(tmp_path: Path) -> None:
    data = (
        '{"id": 1, "name": "a"}\n'
        '{"id": 2, "name": "b", "NAME": "B"}\n'
        '{"id": 3, "id": 4}\n'
        '{"id": 5, "name": "e"}\n'
    )
    project = write_project(tmp_path, YML, {"landing/people/p.jsonl": data})
    result = run(project)
    assert people(project) == [(1, "a"), (5, "e")]
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (4, 2, 2)
    assert quarantined(project) == [
        (
            2,
            ["malformed"],
            '{"id": 2, "name": "b", "NAME": "B"}',
            'malformed: keys "name" and "NAME" differ only in case',
        ),
        (3, ["malformed"], '{"id": 3, "id": 4}', 'malformed: key "id" appears twice'),
    ]


def test_an_empty_key_is_ignored_with_a_warning(tmp_path: Path) -> None:
    data = '{"id": 1, "": "x", "name": "a"}\n{"id": 2, "name": "b"}\n{"": 1, "id": 3}\n'
    project = write_project(tmp_path, YML, {"landing/people/p.jsonl": data})
    result = run(project)
    assert people(project) == [(1, "a"), (2, "b"), (3, None)]
    assert (
        'landing/people/p.jsonl: key "" (empty) in 2 record(s) is not a column name; ignored'
        in log_messages(project, result.run_id)
    )


def test_csv_headers_differing_only_in_case_fail_the_file(tmp_path: Path) -> None:
    files = {
        "landing/people/a.csv": "id,Name,name\n1,a,b\n",
        "landing/people/b.csv": "id,name,id\n2,b,3\n",
        "landing/people/c.csv": "id,name,name_1\n4,d,x\n",
    }
    project = write_project(tmp_path, CSV_YML, files)
    result = penstock.run(project)
    assert result.status == "failed"
    errors = sorted(f.error or "" for f in result.failures)
    assert errors == [
        "landing/people/a.csv:1: header names 'Name' and 'name' differ only in case; every "
        "record would be ambiguous (rename one in the file)",
        "landing/people/b.csv:1: header names 'id' appears twice; every record would be "
        "ambiguous (rename one in the file)",
    ]
    # a header that only looks like DuckDB's rename (name_1) is a plain extra column
    assert people(project) == [(4, "d")]
