"""Compressed inputs (`.gz`, `.zst`, `.bz2`) are read directly and give the same table, the same
quarantine and the same record numbers as the plain file; a damaged compressed file fails
naming the file. JSON Lines are read in blocks: record numbers stay exact across blocks."""

from __future__ import annotations

import bz2
import gzip
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import penstock
import penstock.sources.lines

from helpers import query, write_project

YML = """
name: packed
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "people/*.FORMAT"
    columns:
      id:   {type: bigint, required: true}
      name: {type: text}
      born: {type: date}
"""

CSV = (
    b"id,name,born\n"
    b"1,ann,1990-01-02\n"
    b"2,bob\n"  # malformed: a field missing
    b"3,cy,not a date\n"  # type failure
    b'4,"d, e",1991-03-04\n'
    b"5,fay,1992-05-06,extra\n"  # malformed: a field too many
    b"6,gus,\n"
)

JSONL = (
    '\ufeff{"id": 1, "name": "ann", "born": "1990-01-02"}\r\n'
    "\n"
    "not json\n"  # malformed
    '  \t\r\n{"id": 3, "name": "cy", "born": "not a date"}\n'  # type failure
    '{"id": 4, "Name": "d, e", "born": "1991-03-04"}\n'
    '{"id": 5, "name": "fay", "NAME": "fay"}\n'  # malformed: ambiguous keys
    '{"id": 6, "name": "gus", "born": null}'  # no final newline
).encode()


def zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return bytes(sink.getvalue().to_pybytes())


COMPRESS = {"": lambda b: b, ".gz": gzip.compress, ".zst": zstd, ".bz2": bz2.compress}


def load(tmp_path: Path, fmt: str, suffix: str, data: bytes) -> Path:
    name = f"{fmt}{suffix or '-plain'}"
    project = write_project(
        tmp_path / name,
        YML.replace("FORMAT", fmt + suffix),
        {f"landing/people/p.{fmt}{suffix}": COMPRESS[suffix](data)},
    )
    result = penstock.run(project)
    assert result.status == "success", [f.error for f in result.failures]
    return project


def tables(project: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    people = query(project, "SELECT id, name, born::VARCHAR FROM people ORDER BY id")
    quarantine = query(
        project,
        "SELECT _row_number, _reasons, _raw_line, _error FROM quarantine.people "
        "ORDER BY _row_number",
    )
    return people, quarantine


def test_csv_gz_zst_and_bz2_give_the_same_tables_as_plain_csv(tmp_path: Path) -> None:
    results = {s: tables(load(tmp_path, "csv", s, CSV)) for s in COMPRESS}
    people, quarantine = results[""]
    assert people == [(1, "ann", "1990-01-02"), (4, "d, e", "1991-03-04"), (6, "gus", None)]
    assert [(n, r, line) for n, r, line, _ in quarantine] == [
        (2, ["malformed"], "2,bob"),
        (3, ["type:born"], None),
        (5, ["malformed"], "5,fay,1992-05-06,extra"),
    ]
    assert results[".gz"] == results[""]
    assert results[".zst"] == results[""]
    assert results[".bz2"] == results[""]


def test_jsonl_gz_zst_and_bz2_give_the_same_tables_as_plain_jsonl(tmp_path: Path) -> None:
    results = {s: tables(load(tmp_path, "jsonl", s, JSONL)) for s in COMPRESS}
    people, quarantine = results[""]
    assert people == [(1, "ann", "1990-01-02"), (4, "d, e", "1991-03-04"), (6, "gus", None)]
    assert quarantine == [
        (2, ["malformed"], "not json", "malformed: not a JSON object"),
        (3, ["type:born"], None, None),
        (
            5,
            ["malformed"],
            '{"id": 5, "name": "fay", "NAME": "fay"}',
            'malformed: keys "name" and "NAME" differ only in case',
        ),
    ]
    assert results[".gz"] == results[""]
    assert results[".zst"] == results[""]
    assert results[".bz2"] == results[""]


def test_jsonl_read_in_tiny_blocks_keeps_every_record_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [
        f'{{"id": {i}, "name": "{"x" * (i % 37)}"}}' if i % 11 else "{broken" for i in range(1, 400)
    ]
    data = ("\ufeff" + "\n\r\n".join(lines) + "\n").encode()
    whole = tables(load(tmp_path / "whole", "jsonl", ".gz", data))
    # blocks shorter than most lines: every line is cut across blocks somewhere
    monkeypatch.setattr(penstock.sources.lines, "BLOCK_BYTES", 7)
    assert tables(load(tmp_path / "blocks", "jsonl", ".gz", data)) == whole
    people, quarantine = whole
    assert [n for n, *_ in quarantine] == list(range(11, 400, 11))
    assert len(people) == 399 - 36


def test_invalid_utf8_in_a_later_block_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # two bad records of 52: more than max_encoding_errors allows (1%, rounded up)
    data = b'{"id": 1}\n\n' * 50 + b'{"id": 2, "name": "caf\xe9"}\n' * 2
    monkeypatch.setattr(penstock.sources.lines, "BLOCK_BYTES", 64)
    project = write_project(
        tmp_path,
        YML.replace("FORMAT", "jsonl.zst"),
        {"landing/people/p.jsonl.zst": zstd(data)},
    )
    result = penstock.run(project)
    assert result.status == "failed"
    (failure,) = result.failures
    assert "landing/people/p.jsonl.zst:101: not valid UTF-8" in str(failure.error)


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("p.csv.gz", lambda: b"id,name,born\n1,ann,\n"),  # not gzip at all
        ("p.csv.gz", lambda: gzip.compress(CSV * 500)[:-30]),  # cut short
        ("p.csv.zst", lambda: zstd(CSV * 500)[:-30]),  # cut short
        ("p.jsonl.gz", lambda: b"\x1f\x8b garbage"),
        ("p.jsonl.gz", lambda: gzip.compress(JSONL * 500)[:-30]),
        ("p.jsonl.zst", lambda: zstd(JSONL * 500)[:-30]),
        ("p.csv.bz2", lambda: bz2.compress(CSV * 500)[:-30]),  # cut short
        ("p.jsonl.bz2", lambda: b"BZh9 garbage"),
    ],
)
def test_a_damaged_compressed_file_fails_naming_it(tmp_path: Path, name: str, damage: Any) -> None:
    fmt = name.split(".", 1)[1]
    project = write_project(
        tmp_path, YML.replace("FORMAT", fmt), {f"landing/people/{name}": damage()}
    )
    result = penstock.run(project)
    assert result.status == "failed"
    (failure,) = result.failures
    message = str(failure.error)
    compression = {"gz": "gzip", "zst": "zstd", "bz2": "bzip2"}[name.rsplit(".", 1)[1]]
    what = "CSV" if ".csv" in name else "JSON Lines"
    assert message.startswith(
        f"landing/people/{name}: cannot read as {compression}-compressed {what}: "
    ), message
    assert "landed" not in message  # the lake's private copy is not the user's file
    assert query(project, "SELECT count(*) FROM penstock.loads") == [(0,)]


def test_a_json_array_reads_alike_plain_and_compressed(tmp_path: Path) -> None:
    data = (
        b'[{"id": 1, "name": "ann", "born": "1990-01-02"},\n'
        b' {"id": 3, "name": "cy", "born": "not a date"},\n'
        b' {"id": 4, "name": "d, e", "born": null}]\n'
    )
    results = {s: tables(load(tmp_path, "json", s, data)) for s in COMPRESS}
    people, quarantine = results[""]
    assert people == [(1, "ann", "1990-01-02"), (4, "d, e", None)]
    assert [(n, r) for n, r, *_ in quarantine] == [(2, ["type:born"])]
    assert all(results[s] == results[""] for s in COMPRESS)
