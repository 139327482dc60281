"""The sample `check` stages is the head of the file, byte for byte, cut after a whole record:
a quoted value holding line breaks is never cut in two (in UTF-16 too), a stray quote is not
hidden from the parser, and a file no longer than the sample is taken whole."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb

import penstock
from penstock.catalog import CsvOptions
from penstock.engine.check import check_project
from penstock.engine.check_data import DataCheck
from penstock.engine.check_sample import take_sample

from helpers import write_project

PROJECT = """
name: shop
sources: {landing: {kind: files, path: ./landing, settle: 0s}}
objects:
  notes:
    source: landing
    files: "notes/*.csv"
    CSV
    columns: {id: {type: integer, required: true}, note: {type: text}}
"""


def _notes(tmp_path: Path, content: str | bytes, csv: str = "on_invalid: quarantine") -> DataCheck:
    project = write_project(tmp_path, PROJECT.replace("CSV", csv), {"landing/notes/a.csv": content})
    report = check_project(project)
    (data,) = report["objects"]
    assert isinstance(data, DataCheck)
    assert [c for c in report["checks"] if c["level"] == "error"] == []
    return data


def test_quoted_values_with_line_breaks_are_not_cut_where_the_byte_budget_ends(
    tmp_path: Path,
) -> None:
    # 3,000 records of 1.2 KiB, each spread over 21 lines: 1 MiB ends inside the 860th
    body = "".join(f'{i},"{"x" * 50}\n' * 1 + f"{'y' * 60}\n" * 19 + 'end"\n' for i in range(3000))
    data = _notes(tmp_path, "id,note\n" + body, "csv: {max_line_span: 21}")
    assert data.malformed == 0 and data.rule_failures == []
    assert data.sample_rows == 859 and not data.sample_complete


def test_utf16_files_are_cut_on_their_own_line_breaks(tmp_path: Path) -> None:
    rows = "".join(f'{i},"line\nbreak é"\n' for i in range(1, 3001))
    data = _notes(tmp_path, ("id,note\n" + rows).encode("utf-16"), "csv: {encoding: utf-16}")
    assert (data.sample_rows, data.sample_complete, data.malformed) == (1_000, False, 0)


def test_a_stray_quote_is_shown_as_the_run_will_meet_it(tmp_path: Path) -> None:
    rows = [f"{i},fine" for i in range(1, 3001)]
    rows[4] = '5,"bro"ken'
    project = write_project(
        tmp_path,
        PROJECT.replace("CSV", "on_invalid: quarantine"),
        {"landing/notes/a.csv": "id,note\n" + "\n".join(rows) + "\n"},
    )
    report = check_project(project)
    (data,) = report["objects"]
    assert isinstance(data, DataCheck)
    assert data.malformed == 1
    warning = (
        "landing/notes/a.csv: 1 of 1,000 sampled record(s) are malformed (0.1%); the first is "
        "record 5: text after a closing quote at character 8"
    )
    assert warning in [f.message for f in data.findings]
    result = penstock.run(project)
    assert result.status == "success"
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.reason_counts) == (3000, 2999, {"malformed": 1})


def test_a_file_no_longer_than_the_sample_is_taken_whole(tmp_path: Path) -> None:
    data = _notes(tmp_path, "id,note\n1,a\n2,b\n3,c")  # no line break after the last record
    assert (data.sample_rows, data.sample_complete) == (3, True)


def test_the_sample_is_the_head_of_the_file_byte_for_byte(tmp_path: Path) -> None:
    text = "id,note\r\n" + "".join(f'{i},"a\r\nb ""q"""\r\n' for i in range(5000))
    source = tmp_path / "a.csv.gz"
    source.write_bytes(gzip.compress(text.encode()))
    (tmp_path / "out").mkdir()
    conn = duckdb.connect()
    sample = take_sample(
        conn, source, tmp_path / "out", "csv", CsvOptions(), rows=100, max_bytes=1 << 20
    )
    conn.close()
    assert sample is not None and sample.path.name == "a.csv" and not sample.complete
    head = sample.path.read_bytes()
    assert text.encode().startswith(head)
    assert head.count(b"\n") == 1 + 100 * 2  # the header, then 100 records of two lines
