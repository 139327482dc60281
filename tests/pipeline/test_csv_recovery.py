"""A damaged CSV file never fails whole: a record the parser cannot split (an unbalanced quote,
text after a closing quote, a bare CR, a NUL, a wrong number of fields) is quarantined as
`malformed` with its record number and raw text, and the file's other records load with their
exact values. An unbalanced quote costs its own line: reading resumes at the next line, and a
quote may stay open for at most `csv: {max_line_span}` lines (default 8)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

import penstock

from helpers import query, write_project

YML = """
name: damaged
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.csv"
    CSV
    columns:
      id:     {type: integer, required: true}
      name:   {type: text}
      amount: {type: "decimal(10,2)"}
"""
HEADER = "id,name,amount\n"


def good(n: int) -> str:
    return f"{n},name {n},{n}.50"


def body(lines: list[str]) -> str:
    return HEADER + "".join(f"{line}\n" for line in lines)


def project_with(tmp_path: Path, files: dict[str, str | bytes], csv: str = "") -> Path:
    return write_project(tmp_path, YML.replace("CSV", csv), files)


def run(project: Path) -> penstock.RunResult:
    result = penstock.run(project)
    assert result.status == "success", [f.error for f in result.failures]
    for load in result.loads():
        assert load.rows_in == load.rows_loaded + load.rows_quarantined + load.rows_duplicate
    return result


def ids(project: Path) -> list[int]:
    return [int(i) for (i,) in query(project, "SELECT id FROM items ORDER BY id")]


def staging_warnings(project: Path) -> list[str]:
    """What staging said about each batch (its manifest's warnings)."""
    manifests = sorted((project / "lake" / "stage" / "items").glob("*/manifest.json"))
    return [w for m in manifests for w in json.loads(m.read_text())["warnings"]]


def rejects(project: Path) -> list[tuple[Any, ...]]:
    return query(
        project,
        "SELECT _row_number, _reasons, _raw_line, _error FROM quarantine.items ORDER BY 1",
    )


def test_an_unbalanced_quote_in_line_10_costs_that_record_only(tmp_path: Path) -> None:
    lines = [good(n) for n in range(1, 21)]
    lines[9] = '10,"name 10,10.50'  # the quote is never closed
    project = project_with(tmp_path, {"landing/items/a.csv": body(lines)})
    result = run(project)
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (20, 19, 1)
    assert ids(project) == [n for n in range(1, 21) if n != 10]
    assert query(project, "SELECT name, amount::VARCHAR FROM items WHERE id = 11") == [
        ("name 11", "11.50")
    ]
    ((number, reasons, raw, error),) = rejects(project)
    assert (number, reasons, raw) == (10, ["malformed"], '10,"name 10,10.50')
    assert error == (
        "unbalanced quote: a quoted value opened here is not closed within 8 lines (max_line_span)"
    )
    assert load.reason_counts == {"malformed": 1}
    assert staging_warnings(project) == [
        "landing/items/a.csv: read record by record, as DuckDB's reader met an unquoted "
        "value (Value with unterminated quote found.)"
    ]


def test_an_unbalanced_quote_near_the_end_of_the_file(tmp_path: Path) -> None:
    lines = [good(n) for n in range(1, 21)]
    lines[18] = '19,"name 19,19.50'
    project = project_with(tmp_path, {"landing/items/a.csv": body(lines)})
    run(project)
    assert ids(project) == [n for n in range(1, 21) if n != 19]
    assert [(n, e) for n, _, _, e in rejects(project)] == [
        (
            19,
            "unbalanced quote: a quoted value opened here is not closed before the end of the file",
        )
    ]


def test_an_unbalanced_quote_never_reaches_past_max_line_span(tmp_path: Path) -> None:
    """Record 1 opens a quote; line 12 holds a quote that would close it with the right number
    of fields. Past max_line_span lines the quote counts as unbalanced: only record 1 is lost."""
    lines = ['1,"name 1,1.50', *[good(n) for n in range(2, 12)], '12,name",12.50']
    lines += [good(n) for n in range(13, 2001)]
    project = project_with(tmp_path, {"landing/items/a.csv": body(lines)})
    run(project)
    assert ids(project) == list(range(2, 2001))
    assert query(project, "SELECT name FROM items WHERE id = 12") == [('name"',)]
    assert [(n, r) for n, r, *_ in rejects(project)] == [(1, ["malformed"])]
    error = rejects(project)[0][3]
    assert error == (
        "unbalanced quote: a quoted value opened here is not closed within 8 lines (max_line_span)"
    )


def test_a_wider_max_line_span_lets_the_quote_close_later(tmp_path: Path) -> None:
    """The same file with max_line_span 20: the quote of line 1 closes on line 12, so lines 1
    to 12 are one record (its fields: 1, the text between the quotes, 12.50). This is why the
    bound should stay small."""
    lines = ['1,"name 1,1.50', *[good(n) for n in range(2, 12)], '12,name",12.50']
    lines += [good(n) for n in range(13, 21)]
    project = project_with(
        tmp_path, {"landing/items/a.csv": body(lines)}, "csv: {max_line_span: 20}"
    )
    run(project)
    assert ids(project) == [1, *range(13, 21)]
    (name,) = query(project, "SELECT name FROM items WHERE id = 1")[0]
    assert name.startswith("name 1,1.50\n2,name 2") and name.endswith("\n12,name")


def test_a_quoted_value_spanning_lines_within_the_bound_still_loads(tmp_path: Path) -> None:
    lines = [
        good(1),
        '2,"line one\nline two\nline three",2.00',  # three lines: within the bound
        '3,"a\n2\n3\n4\n5\n6\n7\n8\n9",3.00',  # nine lines: past the bound of 8
        "4,name \0 4,4.00",  # a NUL: the file goes record by record
        good(5),
    ]
    project = project_with(tmp_path, {"landing/items/a.csv": body(lines)})
    run(project)
    assert query(project, "SELECT id, name FROM items ORDER BY id") == [
        (1, "name 1"),
        (2, "line one\nline two\nline three"),
        (5, "name 5"),
    ]
    got = [(n, raw.split("\n")[0]) for n, _, raw, _ in rejects(project)]
    # record 3's first line is malformed; the lines after it are read again as records: "2"
    # to "8" have too few fields, `9",3.00` too (a quote inside a value is an ordinary
    # character): each one record, each with its number
    assert got[0] == (3, '3,"a')
    assert [n for n, _ in got] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert got[-1] == (12, "4,name \0 4,4.00")
    assert ids(project) == [1, 2, 5]


def test_max_line_span_lets_longer_values_load(tmp_path: Path) -> None:
    lines = [good(1), '3,"a\n2\n3\n4\n5\n6\n7\n8\n9",3.00', "4,name \0 4,4.00", good(5)]
    project = project_with(
        tmp_path, {"landing/items/a.csv": body(lines)}, "csv: {max_line_span: 9}"
    )
    run(project)
    assert query(project, "SELECT id, name FROM items ORDER BY id") == [
        (1, "name 1"),
        (3, "a\n2\n3\n4\n5\n6\n7\n8\n9"),
        (5, "name 5"),
    ]
    assert [n for n, *_ in rejects(project)] == [3]


def test_wrong_field_counts_keep_their_record_numbers_when_read_record_by_record(
    tmp_path: Path,
) -> None:
    text = (
        "# exported 2024-05-01\n"
        + HEADER
        + "1,a,1.00\n"
        + "\n"
        + "# a comment line\n"
        + "2,b\n"  # record 2: a field short
        + '3,"two\nlines",3.00\n'  # record 3: one record over two lines
        + "4,d,4.00,extra\n"  # record 4: a field too many
        + '5,"e,5.00\n'  # record 5: unbalanced quote
        + "6,f,6.00\n"
    )
    project = project_with(tmp_path, {"landing/items/a.csv": text}, 'csv: {comment: "#"}')
    run(project)
    assert ids(project) == [1, 3, 6]
    assert [(n, raw, error.split(":")[0]) for n, _, raw, error in rejects(project)] == [
        (2, "2,b", "missing columns"),
        (4, "4,d,4.00,extra", "too many columns"),
        (5, '5,"e,5.00', "unbalanced quote"),
    ]
    errors = [e for _, _, _, e in rejects(project)]
    assert errors[0] == "missing columns: Expected Number of Columns: 3 Found: 2"
    assert errors[1] == "too many columns: Expected Number of Columns: 3 Found: 4"


def test_a_nul_byte_makes_its_record_malformed(tmp_path: Path) -> None:
    lines = [good(1), "2,na\0me,2.00", good(3)]
    project = project_with(tmp_path, {"landing/items/a.csv": body(lines)})
    run(project)
    assert ids(project) == [1, 3]
    assert rejects(project) == [
        (
            2,
            ["malformed"],
            "2,na\0me,2.00",
            "nul character: the record holds a NUL (0x00), which is not text",
        )
    ]


def test_carriage_returns(tmp_path: Path) -> None:
    """A bare CR outside quotes breaks its record; inside quotes it is part of the value; a
    file mixing CRLF and LF line ends loads (DuckDB alone fails each of these whole)."""
    text = (
        HEADER.replace("\n", "\r\n")
        + "1,a\rb,1.00\r\n"  # bare CR in an unquoted value
        + '2,"a\rb",2.00\n'  # inside quotes: data; and an LF line end in a CRLF file
        + '3,"x\r\ny",3.00\r\n'  # CRLF inside quotes: data
        + "4,d,4.00\r\n"
    )
    project = project_with(tmp_path, {"landing/items/a.csv": text.encode()})
    run(project)
    assert query(project, "SELECT id, name FROM items ORDER BY id") == [
        (2, "a\rb"),
        (3, "x\r\ny"),
        (4, "d"),
    ]
    ((number, reasons, raw, error),) = rejects(project)
    assert (number, reasons, raw) == (1, ["malformed"], "1,a\rb,1.00")
    assert error.startswith("a carriage return outside quotes at character 4")


def test_text_after_a_closing_quote_breaks_that_line_only(tmp_path: Path) -> None:
    lines = [good(1), '2,"na"me,2.00', '3,"x",3.00', good(4)]
    project = project_with(tmp_path, {"landing/items/a.csv": body(lines)})
    run(project)
    assert ids(project) == [1, 3, 4]
    ((number, _, raw, error),) = rejects(project)
    assert (number, raw) == (2, '2,"na"me,2.00')
    assert "text after a closing quote" in error


def test_a_gzipped_damaged_file_recovers_like_the_plain_one(tmp_path: Path) -> None:
    lines = [good(n) for n in range(1, 21)]
    lines[4] = '5,"name 5,5.50'
    lines[11] = "12,name\0,12.50"
    text = body(lines).encode()
    plain = project_with(tmp_path / "plain", {"landing/items/a.csv": text})
    packed = write_project(
        tmp_path / "gz",
        YML.replace("CSV", "").replace("items/*.csv", "items/*.csv.gz"),
        {"landing/items/a.csv.gz": gzip.compress(text)},
    )
    run(plain)
    run(packed)
    assert ids(plain) == ids(packed) == [n for n in range(1, 21) if n not in (5, 12)]
    assert rejects(plain) == rejects(packed)
    assert [n for n, *_ in rejects(packed)] == [5, 12]


def test_a_truncated_gzip_file_fails_as_unreadable(tmp_path: Path) -> None:
    lines = [good(n) for n in range(1, 2000)]
    packed = gzip.compress(body(lines).encode())
    project = write_project(
        tmp_path,
        YML.replace("CSV", "").replace("items/*.csv", "items/*.csv.gz"),
        {"landing/items/a.csv.gz": packed[: len(packed) // 2]},
    )
    import duckdb

    from penstock.catalog import load_project
    from penstock.errors import SourceError

    from helpers import stage_csv_copy

    obj = load_project(project).objects["items"]
    conn = duckdb.connect()
    with pytest.raises(SourceError) as info:
        stage_csv_copy(
            conn,
            obj,
            project / "landing/items/a.csv.gz",
            "landing/items/a.csv.gz",
            tmp_path / "staging",
        )
    assert info.value.fields["unreadable"] is True
    assert info.value.message.startswith(
        "landing/items/a.csv.gz: cannot read as gzip-compressed CSV"
    )
    result = penstock.run(project)
    assert result.status == "failed"


def test_skipped_lines_that_open_a_quote_are_skipped_verbatim(tmp_path: Path) -> None:
    """DuckDB's `skip` counts records, so a skipped line that opens a quote would swallow the
    file there; penstock reads such a file record by record and skips lines."""
    text = '"Acme report, 2024\nmore preamble\n' + body([good(1), good(2)])
    project = project_with(tmp_path, {"landing/items/a.csv": text}, "csv: {skip_rows: 2}")
    run(project)
    assert ids(project) == [1, 2]
    assert rejects(project) == []


def test_a_comment_after_a_field_of_spaces_keeps_its_record(tmp_path: Path) -> None:
    """DuckDB drops a whole record whose comment follows a field of spaces (`3,c, # note`);
    penstock reads such a file record by record, and the record loads."""
    lines = [good(1), "2,b,2.00 # a note", "3,c, # a note after a blank amount", good(4)]
    project = project_with(tmp_path, {"landing/items/a.csv": body(lines)}, 'csv: {comment: "#"}')
    run(project)
    assert query(project, "SELECT id, name, amount::VARCHAR FROM items ORDER BY id") == [
        (1, "name 1", "1.50"),
        (2, "b", "2.00"),
        (3, "c", None),
        (4, "name 4", "4.50"),
    ]


def test_a_header_that_cannot_be_read_fails_the_file(tmp_path: Path) -> None:
    text = 'id,"name,amount\n' + "".join(f"{good(n)}\n" for n in range(1, 30))
    project = project_with(tmp_path, {"landing/items/a.csv": text})
    result = penstock.run(project)
    assert result.status == "failed"
    assert [f.error for f in result.failures] == [
        "landing/items/a.csv:1: the header cannot be read: a quoted name is not closed within "
        "8 line(s)"
    ]


def test_a_clean_file_is_read_by_duckdb_alone(tmp_path: Path) -> None:
    lines = [good(1), '2,"quoted, with a comma",2.00', "3,c,3.00,extra", good(4)]
    project = project_with(tmp_path, {"landing/items/a.csv": body(lines)})
    run(project)
    assert ids(project) == [1, 2, 4]
    assert [n for n, *_ in rejects(project)] == [3]
    assert staging_warnings(project) == []


def test_a_record_longer_than_penstock_reads_is_malformed_with_its_raw_text(tmp_path: Path) -> None:
    long_name = "y" * 4_100_000
    lines = [good(1), f"2,{long_name},2.00", good(3)]
    project = project_with(tmp_path, {"landing/items/a.csv": body(lines)})
    run(project)
    assert ids(project) == [1, 3]
    ((number, reasons, raw, error),) = rejects(project)
    assert (number, reasons, raw) == (2, ["malformed"], f"2,{long_name},2.00")
    assert error == (
        "line size over maximum: the record is longer than penstock reads (4,000,000 bytes)"
    )


def test_a_record_under_the_limit_loads_on_both_staging_paths(tmp_path: Path) -> None:
    """A 3 MB record is under the 4,000,000-byte limit: DuckDB's direct read and the
    record-by-record read (a bare CR elsewhere in the file sends the file there) load it whole."""
    row = f"2,{'y' * 3_000_000},2.00"
    clean = project_with(tmp_path / "clean", {"landing/items/a.csv": body([good(1), row])})
    damaged_text = body([good(1), row]) + "4,bare\rcr,4.00\n"
    damaged = project_with(tmp_path / "damaged", {"landing/items/a.csv": damaged_text})
    for project in (clean, damaged):
        run(project)
        assert ids(project) == [1, 2]
        (name,) = query(project, "SELECT length(name) FROM items WHERE id = 2")
        assert name == (3_000_000,)
    assert rejects(clean) == []
    assert [(n, r) for n, r, _, _ in rejects(damaged)] == [(3, ["malformed"])]
