"""Damaged JSON Lines and JSON array files: one bad record never fails the whole file.

A line (or array element) that is not a JSON object is one malformed record; one holding bytes
that are not UTF-8 is one `encoding` record with its bytes escaped, unless so many records are
that the file is not UTF-8 at all (more than 1% of them, or more than 1,000): then the file
fails whole, as unreadable, naming its first bad line. A file cut short keeps its complete
records; the one it ends inside of is quarantined and says so. NUL bytes, bare carriage
returns, long values and blank lines each affect only the record they are in.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import penstock
import penstock.sources.lines
from penstock.catalog import load_project
from penstock.errors import SourceError
from penstock.sources.json_array import ArrayReader
from penstock.sources.lines import LineReader

from helpers import log_messages, query, write_project

YML = """
name: damage
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "people/*.GLOB"
    columns:
      id: {type: bigint, required: true}
      name: {type: text}
"""


def good(i: int, name: str = "x") -> bytes:
    return f'{{"id": {i}, "name": "{name}"}}\n'.encode()


def run(tmp_path: Path, data: bytes, name: str = "p.jsonl") -> tuple[Path, penstock.RunResult]:
    glob = name.split(".", 1)[1]
    project = write_project(
        tmp_path / name.replace(".", "_"),
        YML.replace("GLOB", glob),
        {f"landing/people/{name}": data},
    )
    result = penstock.run(project)
    return project, result


def loaded_run(tmp_path: Path, data: bytes, name: str = "p.jsonl") -> Path:
    """Run and require success with exact accounting."""
    project, result = run(tmp_path, data, name)
    assert result.status == "success", [f.error for f in result.failures]
    for load in result.loads():
        assert load.rows_in == load.rows_loaded + load.rows_quarantined + load.rows_duplicate
    return project


def people(project: Path) -> list[tuple[Any, ...]]:
    return query(project, "SELECT id, name FROM people ORDER BY id")


def quarantined(project: Path) -> list[tuple[Any, ...]]:
    return query(
        project,
        "SELECT _row_number, _raw_line, _error FROM quarantine.people ORDER BY _row_number",
    )


def rejects(project: Path) -> list[dict[str, Any]]:
    (path,) = (project / "lake" / "stage" / "people").glob("*/rejects.parquet")
    rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    return rows


def refusal(path: Path, fmt: str) -> SourceError:
    """The SourceError reading `path` (a project's only landing file) raises."""
    project = load_project(path.parents[2])
    obj = project.objects["people"]
    reader = (
        LineReader(path, path.name, "JSON Lines", obj)
        if fmt == "jsonl"
        else ArrayReader(path, path.name, obj)
    )
    with pytest.raises(SourceError) as caught:
        for _ in reader.batches():
            pass
    return caught.value


# -- not a JSON object ------------------------------------------------------------------------


def test_a_line_that_is_not_a_json_object_is_one_malformed_record(tmp_path: Path) -> None:
    data = good(1) + b"[1, 2]\n" + b"42\n" + b'"text"\n' + b"{oops\n" + good(6)
    project = loaded_run(tmp_path, data)
    assert people(project) == [(1, "x"), (6, "x")]
    assert [(n, raw) for n, raw, _ in quarantined(project)] == [
        (2, "[1, 2]"),
        (3, "42"),
        (4, '"text"'),
        (5, "{oops"),
    ]
    assert {r["_reason"] for r in rejects(project)} == {"malformed"}
    assert {r["_error"] for r in rejects(project)} == {"malformed: not a JSON object"}


# -- invalid UTF-8 ----------------------------------------------------------------------------


def test_a_line_with_invalid_utf8_is_one_encoding_record_with_its_bytes_escaped(
    tmp_path: Path,
) -> None:
    data = b"".join(good(i) for i in range(1, 11))
    data += b'{"id": 11, "name": "caf\xe9 \xff\xfe ok \xc3\xa9"}\n' + good(12)
    project = loaded_run(tmp_path, data)
    assert [i for i, _ in people(project)] == [*range(1, 11), 12]
    assert quarantined(project) == [
        (
            11,
            '{"id": 11, "name": "caf\\xe9 \\xff\\xfe ok é"}',
            "encoding: byte 0xe9 at position 24 is not valid UTF-8",
        )
    ]
    assert [(r["_row_number"], r["_reason"]) for r in rejects(project)] == [(11, "encoding")]


def test_an_encoding_record_is_quarantined_with_reason_encoding(tmp_path: Path) -> None:
    data = good(1) + b'{"id": 2, "name": "caf\xe9"}\n' + b"{oops\n"
    project = loaded_run(tmp_path, data)
    assert query(project, "SELECT _row_number, _reasons FROM quarantine.people ORDER BY 1") == [
        (2, ["encoding"]),
        (3, ["malformed"]),
    ]


def test_record_numbers_stay_exact_around_encoding_records_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = []
    for i in range(1, 301):
        if i % 100 == 0:
            lines.append(b'{"id": %d, "name": "\xe9"}\r\n' % i)
        elif i % 37 == 0:
            lines.append(b"{broken\n")
        else:
            lines.append(good(i))
        if i % 7 == 0:
            lines.append(b" \t\r\n")  # blank: not a record
    data = b"".join(lines)
    whole = loaded_run(tmp_path / "whole", data)
    monkeypatch.setattr(penstock.sources.lines, "BLOCK_BYTES", 11)
    blocks = loaded_run(tmp_path / "blocks", data)
    assert quarantined(blocks) == quarantined(whole)
    assert people(blocks) == people(whole)
    assert [(r["_row_number"], r["_reason"]) for r in rejects(whole)] == sorted(
        [(n, "encoding") for n in (100, 200, 300)] + [(n, "malformed") for n in range(37, 301, 37)]
    )
    # the trailing CR of a CRLF line is not part of the escaped raw text
    assert quarantined(whole)[-1][1] == '{"id": 300, "name": "\\xe9"}'


def test_a_compressed_file_with_an_encoding_record_loads_the_rest(tmp_path: Path) -> None:
    data = good(1) + b'{"id": 2, "name": "\xe9"}\n' + good(3)
    plain = loaded_run(tmp_path, data)
    packed = loaded_run(tmp_path, gzip.compress(data), "p.jsonl.gz")
    assert (people(packed), quarantined(packed)) == (people(plain), quarantined(plain))


@pytest.mark.parametrize(
    ("records", "bad", "loads"),
    [
        (20, 1, True),  # the example: one stray byte in a small file
        (100, 1, True),
        (100, 2, False),  # 2% of the records
        (150, 2, True),  # 1% of 150, rounded up, is 2
        (201, 3, True),
        (201, 4, False),
    ],
)
def test_encoding_records_beyond_one_percent_fail_the_file_as_unreadable(
    tmp_path: Path, records: int, bad: int, loads: bool
) -> None:
    step = records // bad
    bad_ids = {step * k for k in range(1, bad + 1)}
    data = b"".join(
        b'{"id": %d, "name": "\xe9"}\n' % i if i in bad_ids else good(i)
        for i in range(1, records + 1)
    )
    project, result = run(tmp_path, data)
    if loads:
        assert result.status == "success"
        assert len(people(project)) == records - bad
        assert [n for n, _, _ in quarantined(project)] == sorted(bad_ids)
        return
    assert result.status == "failed"
    first = min(bad_ids)
    (failure,) = result.failures
    assert failure.error == (
        f"landing/people/p.jsonl:{first}: not valid UTF-8 text (JSON Lines must be UTF-8): "
        f"{bad} of {records} records hold invalid bytes; max_encoding_errors allows "
        f"{-(-records // 100)} (1% of the records, at most 1,000)"
    )
    assert not list((project / "lake" / "stage" / "people").glob("*/manifest.json"))
    error = refusal(project / "landing" / "people" / "p.jsonl", "jsonl")
    assert error.fields["unreadable"] is True
    assert error.fields["line"] == first


def test_a_file_whose_every_record_has_invalid_bytes_is_refused(tmp_path: Path) -> None:
    # 1% of one record rounds up to one, but a file with no good record is not UTF-8 at all
    project, result = run(tmp_path, b'{"id": 1, "name": "Zo\xeb"}\n')
    assert result.status == "failed"
    assert [f.error for f in result.failures] == [
        "landing/people/p.jsonl:1: not valid UTF-8 text (JSON Lines must be UTF-8): 1 of 1 "
        "records hold invalid bytes; max_encoding_errors allows 0 (1% of the records, at "
        "most 1,000)"
    ]
    assert refusal(project / "landing" / "people" / "p.jsonl", "jsonl").fields["unreadable"]


def test_more_than_a_thousand_encoding_records_fail_the_file_early(tmp_path: Path) -> None:
    # 1,001 bad records in 200,000: 0.5%, but above the absolute limit of 1,000; the reader
    # stops at the 1,001st, long before the end of the file
    lines = [good(i) for i in range(1, 200_001)]
    for k in range(1001):
        lines[k * 3 + 4] = b'{"id": 0, "name": "\xe9"}\n'
    project = write_project(
        tmp_path, YML.replace("GLOB", "jsonl"), {"landing/people/p.jsonl": b"".join(lines)}
    )
    error = refusal(project / "landing" / "people" / "p.jsonl", "jsonl")
    assert error.fields["unreadable"] is True
    assert error.message == (
        "p.jsonl:5: not valid UTF-8 text (JSON Lines must be UTF-8): more than 1,000 records "
        "hold invalid bytes; max_encoding_errors allows at most 1,000"
    )


def test_a_file_in_another_encoding_fails_naming_its_first_bad_line(tmp_path: Path) -> None:
    text = "".join(f'{{"id": {i}, "name": "Zoë {i}"}}\n' for i in range(1, 50))
    data = ('{"id": 0, "name": "plain"}\n' + text).encode("latin-1")
    _, result = run(tmp_path, data)
    assert result.status == "failed"
    (failure,) = result.failures
    assert (failure.error or "").startswith(
        "landing/people/p.jsonl:2: not valid UTF-8 text (JSON Lines must be UTF-8): 49 of 50 "
        "records hold invalid bytes"
    )


# -- a file cut short -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tail", "raw", "error"),
    [
        (
            b'{"id": 3, "na',
            '{"id": 3, "na',
            "malformed: not a JSON object (the last line, with no line break after it: the "
            "file may be cut short)",
        ),
        (b'{"id": 3, "na\n', '{"id": 3, "na', "malformed: not a JSON object"),
        (  # cut inside a two-byte character: a cut, not an encoding error
            b'{"id": 3, "name": "\xc3',
            '{"id": 3, "name": "\\xc3',
            "malformed: not a JSON object (the last line, with no line break after it: the "
            "file may be cut short)",
        ),
    ],
)
def test_a_truncated_last_line_is_one_malformed_record(
    tmp_path: Path, tail: bytes, raw: str, error: str
) -> None:
    project = loaded_run(tmp_path, good(1) + good(2) + tail)
    assert people(project) == [(1, "x"), (2, "x")]
    assert quarantined(project) == [(3, raw, error)]
    assert [r["_reason"] for r in rejects(project)] == ["malformed"]


def test_a_complete_last_line_without_a_line_break_loads(tmp_path: Path) -> None:
    project = loaded_run(tmp_path, good(1) + good(2).rstrip(b"\n"))
    assert people(project) == [(1, "x"), (2, "x")]


def test_a_cut_inside_a_character_does_not_count_as_an_encoding_error(tmp_path: Path) -> None:
    # ten records: one encoding error is allowed, the cut last line is not a second one
    data = b"".join(good(i) for i in range(1, 9))
    data += b'{"id": 9, "name": "\xe9"}\n' + b'{"id": 10, "name": "\xe2\x82'
    project = loaded_run(tmp_path, data)
    assert [i for i, _ in people(project)] == list(range(1, 9))
    assert [(r["_row_number"], r["_reason"]) for r in rejects(project)] == [
        (9, "encoding"),
        (10, "malformed"),
    ]


# -- NUL bytes, carriage returns, long values, blank lines ---------------------------------


def test_nul_bytes_make_only_their_record_malformed(tmp_path: Path) -> None:
    data = (
        good(1)
        + b'{"id": 2, "name": "a\x00b"}\n'  # a raw NUL is not allowed in a JSON string
        + b'{"id": 3, "name": "c"}\x00\n'
        + b"\x00\n"
        + b'{"id": 5, "name": "a\\u0000b"}\n'  # an escaped one is a character like any other
        + good(6)
    )
    project = loaded_run(tmp_path, data)
    assert people(project) == [(1, "x"), (5, "a\x00b"), (6, "x")]
    assert [(n, raw) for n, raw, _ in quarantined(project)] == [
        (2, '{"id": 2, "name": "a\x00b"}'),
        (3, '{"id": 3, "name": "c"}\x00'),
        (4, "\x00"),
    ]


def test_a_bare_carriage_return_does_not_end_a_line(tmp_path: Path) -> None:
    data = (
        good(1)
        + b'{"id": 2, "name": "a"}\r{"id": 3, "name": "b"}\n'  # two objects on one line
        + b'{"id": 4,\r "name": "c"}\r\n'  # JSON whitespace between tokens; CRLF ending
        + b'{"id": 5, "name": "d\re"}\n'  # a raw CR inside a string is not allowed
        + good(6)
        + b'\r\t{"id": 7, "name": "f"}\n'  # JSON whitespace before the object
    )
    project = loaded_run(tmp_path, data)
    assert people(project) == [(1, "x"), (4, "c"), (6, "x"), (7, "f")]
    assert [(n, raw) for n, raw, _ in quarantined(project)] == [
        (2, '{"id": 2, "name": "a"}\r{"id": 3, "name": "b"}'),
        (4, '{"id": 5, "name": "d\re"}'),
    ]


def test_a_100_kb_value_loads_and_a_100_kb_broken_line_is_kept_whole(tmp_path: Path) -> None:
    long = "é" * 50_000 + "x"  # 100 kB of UTF-8
    data = good(1) + good(2, long) + good(3, long)[:-3] + b"\n" + good(4)
    project = loaded_run(tmp_path, data)
    assert people(project) == [(1, "x"), (2, long), (4, "x")]
    ((number, raw, _),) = quarantined(project)
    assert (number, raw) == (3, good(3, long)[:-3].decode())


def test_blank_lines_anywhere_are_not_records(tmp_path: Path) -> None:
    data = b"\n\r\n" + good(1) + b"\n \n\t\n" + b"{oops\n" + b"\n\n" + good(3) + b"\n  "
    project = loaded_run(tmp_path, data)
    assert people(project) == [(1, "x"), (3, "x")]
    assert [n for n, _, _ in quarantined(project)] == [2]


# -- JSON arrays ------------------------------------------------------------------------------


def test_an_array_element_with_invalid_utf8_is_one_encoding_record(tmp_path: Path) -> None:
    data = b'[{"id": 1, "name": "a"},\n {"id": 2, "name": "caf\xe9"},\n {"id": 3}]'
    project = loaded_run(tmp_path, data, "p.json")
    assert people(project) == [(1, "a"), (3, None)]
    assert quarantined(project) == [
        (
            2,
            '{"id": 2, "name": "caf\\xe9"}',
            "encoding: byte 0xe9 at position 23 is not valid UTF-8",
        )
    ]
    assert [r["_reason"] for r in rejects(project)] == ["encoding"]


@pytest.mark.parametrize(
    ("data", "ids", "bad", "end"),
    [
        (b'[{"id": 1},\n {"id": 2, "na', [1], [(2, '{"id": 2, "na')], "in element 2"),
        (
            b'[{"id": 1},\n {"id": 2, "name": "\xc3',
            [1],
            [(2, '{"id": 2, "name": "\\xc3')],
            "in element 2",
        ),
        (b'[{"id": 1},\n {"id": 2}', [1, 2], [], "in element 2"),  # only the ] is missing
        (b'[{"id": 1},\n {"id": 2},\n ', [1, 2], [], "after element 2"),
        (b"[ ", [], [], "before its first element"),
    ],
)
def test_a_cut_array_keeps_its_complete_elements(
    tmp_path: Path, data: bytes, ids: list[int], bad: list[tuple[int, str]], end: str
) -> None:
    project, result = run(tmp_path, data, "p.json")
    assert result.status == "success", [f.error for f in result.failures]
    assert [i for i, _ in people(project)] == ids
    assert [(n, raw) for n, raw, _ in quarantined(project)] == bad
    if bad:
        assert quarantined(project)[0][2] == (
            "malformed: not a JSON object (the file ends inside this element, before the "
            "array closes: cut short?)"
        )
    assert (
        f"landing/people/p.json: the JSON array is not closed: the file ends {end}, before "
        f"its closing ']' (it may be cut short)"
    ) in log_messages(project, result.run_id)


def test_a_stray_quote_in_an_array_fails_the_file_naming_its_line(tmp_path: Path) -> None:
    data = b'[{"id": 1},\n {"id": 2, "name": "a"b"},\n {"id": 3}\n]\n'
    project, result = run(tmp_path, data, "p.json")
    assert result.status == "failed"
    assert [f.error for f in result.failures] == [
        "landing/people/p.json:2: the JSON array is not closed: a string in element 2 runs "
        "past the end of its line (a stray quote?), and the elements after it cannot be told "
        "apart"
    ]
    error = refusal(project / "landing" / "people" / "p.json", "json")
    assert error.fields["unreadable"] is True


def test_a_file_that_is_not_an_array_or_does_not_decompress_is_unreadable(
    tmp_path: Path,
) -> None:
    project = write_project(
        tmp_path,
        YML.replace("GLOB", "json"),
        {
            "landing/people/a.json": b'{"id": 1}\n',
            "landing/people/b.json.gz": gzip.compress(b'[{"id": 1}]' * 100)[:-20],
        },
    )
    for name in ("a.json", "b.json.gz"):
        assert refusal(project / "landing" / "people" / name, "json").fields["unreadable"]
    jsonl = project / "landing" / "people" / "c.jsonl.gz"
    jsonl.write_bytes(b"\x1f\x8b not gzip at all")
    assert refusal(jsonl, "jsonl").fields["unreadable"] is True
