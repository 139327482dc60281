"""CSV parse options: `skip_rows`, `comment`, `header: false`, and a source's `csv:` defaults
that objects override key by key. Record numbers in quarantine count records only (never the
header, skipped, comment or blank lines), for malformed lines and failing rows alike."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import penstock

from helpers import query, write_project

YML = """
name: parse
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "people/*.csv"
    csv: CSV
    columns:
      id:   {type: bigint, required: true}
      name: {type: text}
      born: {type: date}
"""


def project_with(tmp_path: Path, csv: str, files: dict[str, str | bytes]) -> Path:
    return write_project(tmp_path, YML.replace("CSV", csv), files)


def run(project: Path) -> penstock.RunResult:
    result = penstock.run(project)
    assert result.status == "success", [f.error for f in result.failures]
    for load in result.loads():
        assert load.rows_in == load.rows_loaded + load.rows_quarantined + load.rows_duplicate
    return result


def people(project: Path) -> list[tuple[Any, ...]]:
    return query(project, "SELECT id, name, born::VARCHAR FROM people ORDER BY id")


def quarantined(project: Path) -> list[tuple[Any, ...]]:
    return query(
        project,
        "SELECT _row_number, _reasons, _raw_line, id FROM quarantine.people ORDER BY _row_number",
    )


def test_skip_rows_skips_lines_verbatim_and_records_keep_their_numbers(tmp_path: Path) -> None:
    body = (
        'Exported by "Acme, Inc.\n'  # an unbalanced quote: skipped verbatim, not parsed
        "generated 2024-05-01\n"
        "id,name,born\n"
        "1,ann,1990-01-02\n"
        "2,bob\n"  # record 2: malformed
        "3,cy,nope\n"  # record 3: type failure
        "4,dee,1991-03-04\n"
    )
    project = project_with(tmp_path, "{skip_rows: 2}", {"landing/people/p.csv": body})
    run(project)
    assert people(project) == [(1, "ann", "1990-01-02"), (4, "dee", "1991-03-04")]
    assert quarantined(project) == [
        (2, ["malformed"], "2,bob", None),
        (3, ["type:born"], None, "3"),
    ]


def test_comment_lines_are_not_records(tmp_path: Path) -> None:
    body = (
        "# exported 2024-05-01\n"
        "id,name,born\n"
        "# a note between records\n"
        "1,ann,1990-01-02\n"
        "   # indented with spaces: still a comment\n"
        "2,bob,1990-01-02,extra\n"  # record 2: malformed
        '3,"# in quotes, data",1991-03-04\n'
        "4,dee,1992-01-01 # a comment ends the record here\n"
        '5,"multi\n# line, inside quotes: data",1993-01-01\n'
        "6,eve,nope\n"  # record 6: type failure
    )
    project = project_with(tmp_path, '{comment: "#"}', {"landing/people/p.csv": body})
    run(project)
    assert people(project) == [
        (1, "ann", "1990-01-02"),
        (3, "# in quotes, data", "1991-03-04"),
        (4, "dee", "1992-01-01"),  # whitespace around a typed value is ignored
        (5, "multi\n# line, inside quotes: data", "1993-01-01"),
    ]
    assert quarantined(project) == [
        (2, ["malformed"], "2,bob,1990-01-02,extra", None),
        (6, ["type:born"], None, "6"),
    ]


def test_without_comment_a_hash_is_data(tmp_path: Path) -> None:
    body = "id,name,born\n1,#1 fan,1990-01-02\n"
    project = project_with(tmp_path, "{}", {"landing/people/p.csv": body})
    run(project)
    assert people(project) == [(1, "#1 fan", "1990-01-02")]


def test_blank_lines_before_a_malformed_line_do_not_shift_record_numbers(
    tmp_path: Path,
) -> None:
    body = (
        "id,name,born\n"
        "1,ann,1990-01-02\n"
        "\n"
        "\n"
        "2,bob\n"  # record 2
        '3,"two\n\nlines",1990-01-02\n'  # record 3: one record over three lines
        "4,cy,1990-01-02,extra\n"  # record 4
        "5,dee,nope\n"  # record 5: type failure
    )
    project = project_with(tmp_path, "{}", {"landing/people/p.csv": body})
    run(project)
    assert people(project) == [(1, "ann", "1990-01-02"), (3, "two\n\nlines", "1990-01-02")]
    assert quarantined(project) == [
        (2, ["malformed"], "2,bob", None),
        (4, ["malformed"], "4,cy,1990-01-02,extra", None),
        (5, ["type:born"], None, "5"),
    ]


def test_skip_rows_and_comments_together_in_a_gzipped_latin1_file(tmp_path: Path) -> None:
    text = (
        "Rapport généré\n"
        "# commentaire\n"
        "id;name;born\n"
        "1;José;1990-01-02\n"
        "\n"
        "# encore\n"
        "2;Zoë\n"  # record 2: malformed
        "3;Noël;1991-01-01\n"
    )
    project = project_with(
        tmp_path,
        '{skip_rows: 1, comment: "#", delimiter: ";", encoding: latin-1}',
        {"landing/people/p.csv.gz": gzip.compress(text.encode("latin-1"))},
    )
    yml = (project / "penstock.yml").read_text().replace("people/*.csv", "people/*.csv.gz")
    (project / "penstock.yml").write_text(yml)
    run(project)
    assert people(project) == [(1, "José", "1990-01-02"), (3, "Noël", "1991-01-01")]
    assert quarantined(project) == [(2, ["malformed"], "2;Zoë", None)]


def test_header_false_reads_fields_in_contract_order(tmp_path: Path) -> None:
    body = (
        "1,ann,1990-01-02\n"
        "2,bob\n"  # record 2: a field short
        "3,cy,1991-01-01,extra\n"  # record 3: a field too many
        "4,dee,1992-02-03\n"
    )
    project = project_with(tmp_path, "{header: false}", {"landing/people/p.csv": body})
    run(project)
    assert people(project) == [(1, "ann", "1990-01-02"), (4, "dee", "1992-02-03")]
    errors = query(
        project, "SELECT _row_number, _raw_line, _error FROM quarantine.people ORDER BY 1"
    )
    assert errors == [
        (2, "2,bob", "missing columns: Expected Number of Columns: 3 Found: 2"),
        (3, "3,cy,1991-01-01,extra", "too many columns: Expected Number of Columns: 3 Found: 4"),
    ]


def test_header_false_when_every_record_has_too_few_fields(tmp_path: Path) -> None:
    # the contract fixes the layout: no column is quietly read as missing
    body = "1,ann\n2,bob\n"
    project = project_with(tmp_path, "{header: false}", {"landing/people/p.csv": body})
    run(project)
    assert people(project) == []
    assert [(n, r) for n, r, *_ in quarantined(project)] == [
        (1, ["malformed"]),
        (2, ["malformed"]),
    ]


def test_header_false_with_skip_rows(tmp_path: Path) -> None:
    body = "people export\n1,ann,1990-01-02\n2,bob,x\n"
    project = project_with(
        tmp_path, "{header: false, skip_rows: 1}", {"landing/people/p.csv": body}
    )
    run(project)
    assert people(project) == [(1, "ann", "1990-01-02")]
    assert quarantined(project) == [(2, ["type:born"], None, "2")]


SOURCE_DEFAULTS = """
name: parse
sources:
  landing:
    kind: files
    path: ./landing
    settle: 0s
    csv: {delimiter: ";", skip_rows: 1, comment: "#"}
objects:
  inherits:
    source: landing
    files: "a/*.csv"
    columns:
      id: {type: bigint}
      name: {type: text}
  overrides:
    source: landing
    files: "b/*.csv"
    csv: {delimiter: ",", skip_rows: 0}
    columns:
      id: {type: bigint}
      name: {type: text}
  events:
    source: landing
    files: "c/*.jsonl"
    columns:
      id: {type: bigint}
"""


def test_source_csv_defaults_are_overridden_key_by_key(tmp_path: Path) -> None:
    files = {
        "landing/a/x.csv": "export of a\nid;name\n# note\n1;x,y\n",
        "landing/b/x.csv": "id,name\n# still a comment: the source's comment applies\n2,b;c\n",
        "landing/c/x.jsonl": '{"id": 3}\n',
    }
    project = write_project(tmp_path, SOURCE_DEFAULTS, files)
    run(project)
    assert query(project, "SELECT id, name FROM inherits") == [(1, "x,y")]
    assert query(project, "SELECT id, name FROM overrides") == [(2, "b;c")]
    assert query(project, "SELECT id FROM events") == [(3,)]
    project_model = penstock.load_project(project)
    assert project_model.objects["overrides"].csv is not None
    assert project_model.objects["overrides"].csv.model_dump(
        include={"delimiter", "skip_rows", "comment"}
    ) == {"delimiter": ",", "skip_rows": 0, "comment": "#"}


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_header(tmp_path: Path) -> None:
    body = "\ufeffid,name,born\n1,ann,1990-01-02\n".encode()
    project = project_with(tmp_path, "{}", {"landing/people/p.csv": body})
    run(project)
    assert people(project) == [(1, "ann", "1990-01-02")]


def test_crlf_file_with_blank_and_comment_lines_keeps_record_numbers(tmp_path: Path) -> None:
    body = b"id,name,born\r\n# c\r\n1,ann,1990-01-02\r\n\r\n# c\r\n2,bob\r\n3,cy,x\r\n"
    project = project_with(tmp_path, '{comment: "#"}', {"landing/people/p.csv": body})
    run(project)
    assert people(project) == [(1, "ann", "1990-01-02")]
    assert quarantined(project) == [
        (2, ["malformed"], "2,bob", None),
        (3, ["type:born"], None, "3"),
    ]
