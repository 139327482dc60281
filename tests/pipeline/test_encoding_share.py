"""Invalid bytes in a minority of records quarantine those records (reason `encoding`, raw text
with each invalid byte as `\\xNN`); past `max_encoding_errors` (default: 1% of the records,
rounded up, at most 1,000, never every record) the file fails as written in another encoding,
naming its first bad line, and that error marks the file unreadable."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import penstock
from penstock.catalog import load_project
from penstock.engine.check import check_project
from penstock.engine.check_data import DataCheck
from penstock.errors import SourceError

from helpers import query, stage_csv_copy, write_project

YML = """
name: bytes
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.csv"
    SETTINGS
    columns:
      id:   {type: integer, required: true}
      name: {type: text}
"""
CliRunner = Callable[..., tuple[int, str, str]]


def twenty(bad: dict[int, bytes]) -> bytes:
    """A header and records 1..20, record n replaced by `bad[n]` when given."""
    lines = [b"id,name"] + [bad.get(n, f"{n},name {n}".encode()) for n in range(1, 21)]
    return b"\n".join(lines) + b"\n"


def project_with(tmp_path: Path, data: bytes, settings: str = "") -> Path:
    return write_project(tmp_path, YML.replace("SETTINGS", settings), {"landing/items/a.csv": data})


def quarantined(project: Path) -> list[tuple[Any, ...]]:
    return query(
        project, "SELECT _row_number, _reasons, _raw_line FROM quarantine.items ORDER BY 1"
    )


def stage(project: Path, tmp_path: Path) -> Any:
    obj = load_project(project).objects["items"]
    staged, _ = stage_csv_copy(
        duckdb.connect(),
        obj,
        project / "landing/items/a.csv",
        "landing/items/a.csv",
        tmp_path / "staging",
    )
    return staged


def test_one_invalid_byte_in_line_11_quarantines_that_record(tmp_path: Path) -> None:
    project = project_with(tmp_path, twenty({10: b"10,na\xffme 10"}))  # line 11 of the file
    result = penstock.run(project)
    assert result.status == "success"
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (20, 19, 1)
    assert load.reason_counts == {"encoding": 1}
    assert query(project, "SELECT count(*), min(id), max(id) FROM items") == [(19, 1, 20)]
    assert quarantined(project) == [(10, ["encoding"], "10,na\\xffme 10")]
    (error,) = query(project, "SELECT _error FROM quarantine.items")[0]
    assert error.startswith("invalid encoding: not valid utf-8 text")


def test_invalid_bytes_past_the_share_fail_the_file_naming_its_first_bad_line(
    tmp_path: Path,
) -> None:
    # 2 of 20 records: more than 1% of 20 rounded up (1)
    project = project_with(tmp_path, twenty({6: b"6,caf\xe9", 15: b"15,th\xe9"}))
    with pytest.raises(SourceError) as info:
        stage(project, tmp_path)
    assert info.value.fields["unreadable"] is True
    assert info.value.fields["line"] == 7
    assert info.value.message == (
        "landing/items/a.csv:7: not valid utf-8 text; set `csv: {encoding: ...}` on object "
        "'items' (utf-8, utf-16, latin-1 or windows-1252); 2 of 20 records hold invalid bytes, "
        "more than max_encoding_errors allows (1% of the records, at most 1,000)"
    )
    result = penstock.run(project)
    assert result.status == "failed"
    assert not list((project / "lake" / "stage" / "items").glob("*/manifest.json"))


def test_max_encoding_errors_is_configurable(tmp_path: Path) -> None:
    data = twenty({6: b"6,caf\xe9", 15: b"15,th\xe9"})
    tolerant = project_with(tmp_path / "a", data, "max_encoding_errors: {share: 10%}")
    assert penstock.run(tolerant).status == "success"
    assert quarantined(tolerant) == [
        (6, ["encoding"], "6,caf\\xe9"),
        (15, ["encoding"], "15,th\\xe9"),
    ]
    strict = project_with(
        tmp_path / "b", twenty({6: b"6,caf\xe9"}), "max_encoding_errors: {count: 0}"
    )
    result = penstock.run(strict)
    assert result.status == "failed"
    assert "landing/items/a.csv:7: not valid utf-8 text" in (result.failures[0].error or "")


def test_a_file_whose_every_record_is_bad_is_in_another_encoding(tmp_path: Path) -> None:
    project = project_with(tmp_path, b"id,name\n1,Jos\xe9\n")
    with pytest.raises(SourceError) as info:
        stage(project, tmp_path)
    assert info.value.message.startswith("landing/items/a.csv:2: not valid utf-8 text")
    assert info.value.fields["unreadable"] is True


def test_more_than_count_stops_reading(tmp_path: Path) -> None:
    lines = [b"id,name"] + [f"{n},caf".encode() + b"\xe9" for n in range(1, 5001)]
    project = project_with(tmp_path, b"\n".join(lines) + b"\n")
    with pytest.raises(SourceError) as info:
        stage(project, tmp_path)
    assert "; 1,001+ records hold invalid bytes, more than" in info.value.message


def test_an_invalid_byte_inside_a_multi_line_value_names_its_line(tmp_path: Path) -> None:
    data = twenty({4: b'4,"two\nlin\xffes"', 9: b"9,x\xff", 12: b"12,y\xfe"})
    project = project_with(tmp_path, data)
    with pytest.raises(SourceError) as info:
        stage(project, tmp_path)
    assert info.value.fields["line"] == 6  # record 4 starts on line 5, its byte is on line 6


def test_declared_encodings_still_read(tmp_path: Path) -> None:
    latin = project_with(
        tmp_path / "latin", "id,name\n1,José\n2,Zoë\n".encode("latin-1"), "csv: {encoding: latin-1}"
    )
    assert penstock.run(latin).status == "success"
    assert query(latin, "SELECT name FROM items ORDER BY id") == [("José",), ("Zoë",)]
    utf16 = project_with(
        tmp_path / "utf16", "id,name\n1,José\n2,Zoë\n".encode("utf-16"), "csv: {encoding: utf-16}"
    )
    assert penstock.run(utf16).status == "success"
    assert query(utf16, "SELECT name FROM items ORDER BY id") == [("José",), ("Zoë",)]


def test_an_invalid_utf16_sequence_is_one_encoding_record(tmp_path: Path) -> None:
    lone_surrogate = "\ud800".encode("utf-16-le", "surrogatepass")  # b"\x00\xd8"
    text = "id,name\n1,José\n2,Zo".encode("utf-16-le") + lone_surrogate
    text += "ë\n3,Noël\n".encode("utf-16-le")
    project = project_with(tmp_path, b"\xff\xfe" + text, "csv: {encoding: utf-16}")
    assert penstock.run(project).status == "success"
    assert query(project, "SELECT id, name FROM items ORDER BY id") == [(1, "José"), (3, "Noël")]
    assert quarantined(project) == [(2, ["encoding"], "2,Zo\\x00\\xd8ë")]


def test_the_quarantine_command_filters_encoding_records(tmp_path: Path, cli: CliRunner) -> None:
    project = project_with(tmp_path, twenty({3: b"3,x\xff", 5: b"5"}), "")
    assert penstock.run(project).status == "success"
    code, out, _ = cli("quarantine", "items", "-p", project, "--reason", "encoding", "--json")
    assert code == 0
    assert '"_row_number": 3' in out and '"_row_number": 5' not in out
    assert "3,x\\\\xff" in out


def test_a_rejects_file_without_a_reason_column_reads_as_malformed(tmp_path: Path) -> None:
    """Batches staged before `_reason` existed: their rejects are malformed records."""
    project = project_with(tmp_path, b"id,name\n1,a\n2\n3,c\n")
    assert penstock.run(project).status == "success"
    (rejects_file,) = (project / "lake" / "stage" / "items").glob("*/rejects.parquet")
    old = pq.read_table(rejects_file).drop_columns(["_reason"])
    pq.write_table(old, rejects_file)
    assert "_reason" not in pq.read_schema(rejects_file).names
    # as its manifest was written then: before version 4, whose rejects always have _reason
    manifest = rejects_file.parent / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "version": 3}))
    assert penstock.rebuild(project).status == "success"
    assert query(project, "SELECT _row_number, _reasons FROM quarantine.items") == [
        (2, ["malformed"])
    ]
    assert isinstance(old, pa.Table)


def test_check_suggests_the_encoding_when_records_hold_invalid_bytes(tmp_path: Path) -> None:
    project = project_with(tmp_path, twenty({10: b"10,caf\xe9"}))
    report = check_project(project)
    (data,) = [o for o in report["objects"] if o.object == "items"]
    assert isinstance(data, DataCheck)
    assert [s.yaml for s in data.suggested_settings] == ["csv: {encoding: latin-1}"]
    messages = [f.message for f in data.findings]
    assert (
        "landing/items/a.csv: 1 of 20 sampled record(s) hold bytes that are not valid utf-8 "
        "text (5.0%); the first is record 10: invalid encoding: not valid utf-8 text (each "
        "invalid byte shown as \\xNN; if the file is in another encoding, set csv: {encoding: "
        "...})"
    ) in messages
