"""Record numbers of malformed CSV records, read straight from DuckDB's line numbers when every
data line is one record, and through the numbered copy when a line is blank or a value spans
lines: both give the record as counted by the rules (header, skipped and blank lines are not
records; a value spanning lines is one record)."""

from __future__ import annotations

from pathlib import Path

import penstock

from helpers import query, write_project

YML = """
name: nums
sources: {landing: {kind: files, path: ./landing, settle: 0s}}
objects:
  t:
    source: landing
    files: "t.csv"
    csv: {skip_rows: SKIP}
    columns:
      id: {type: integer, required: true}
      name: {type: text}
"""


def _numbers(tmp_path: Path, text: str, skip: int = 0) -> list[tuple[int, list[str]]]:
    project = write_project(tmp_path, YML.replace("SKIP", str(skip)), {"landing/t.csv": text})
    penstock.run(project)
    return [
        (int(n), list(r))
        for n, r in query(project, "SELECT _row_number, _reasons FROM quarantine.t ORDER BY 1")
    ]


def test_one_line_per_record_with_skipped_lines(tmp_path: Path) -> None:
    text = "preamble\nmore, preamble\nid,name\n1,a\n2,b,extra\n3,c\n4\n5,e\n"
    assert _numbers(tmp_path, text, skip=2) == [(2, ["malformed"]), (4, ["malformed"])]


def test_a_blank_line_and_a_value_spanning_lines_do_not_shift_the_numbers(
    tmp_path: Path,
) -> None:
    text = 'id,name\n1,a\n\n2,"two\nlines"\n3,c,extra\n4,d\n5\n'
    assert _numbers(tmp_path, text) == [(3, ["malformed"]), (5, ["malformed"])]
