"""Bad input gets a clear error naming the file (and line), or quarantined rows with reasons.

In every case rows_in = rows_loaded + rows_quarantined + rows_duplicate, and nothing is lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import penstock
from penstock.engine import RunResult
from penstock.observe import MetadataStore

from helpers import query, write_project

ORDERS = """
name: bad_input
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [order_id]
    load: merge
    order_by: updated_at
    columns:
      order_id:   {type: bigint, required: true}
      status:     {type: text, in: [placed, shipped]}
      amount:     {type: "decimal(12,2)", min: 0}
      updated_at: {type: timestamp, required: true}
"""
HEADER = "order_id,status,amount,updated_at\n"
GOOD = "1,placed,10.50,2024-01-01 10:00:00\n2,shipped,3,2024-01-02 10:00:00\n"

CliRunner = Callable[..., tuple[int, str, str]]


def assert_accounting(result: RunResult) -> None:
    loads = result.loads()
    assert loads, "expected at least one loaded batch"
    for o in loads:
        assert o.rows_in == o.rows_loaded + o.rows_quarantined + o.rows_duplicate, o


def ledger(project: Path) -> list[tuple[int, int, int, int]]:
    return [
        tuple(int(v) for v in row)  # type: ignore[misc]
        for row in query(
            project,
            "SELECT rows_in, rows_loaded, rows_quarantined, rows_duplicate FROM penstock.loads "
            "ORDER BY source_file",
        )
    ]


def quarantined(project: Path, obj: str = "orders") -> list[tuple[int, list[str]]]:
    return [
        (int(n), list(r))
        for n, r in query(
            project, f"SELECT _row_number, _reasons FROM quarantine.{obj} ORDER BY _row_number"
        )
    ]


def test_malformed_csv_rows_are_quarantined_with_their_record_number(tmp_path: Path) -> None:
    body = HEADER + GOOD + "3,placed\n4,placed,1,2024-01-01,extra\n5,placed,1,2024-01-03\n"
    project = write_project(tmp_path, ORDERS, {"landing/orders/a.csv": body})
    result = penstock.run(project)
    assert_accounting(result)
    assert ledger(project) == [(5, 3, 2, 0)]
    assert quarantined(project) == [(3, ["malformed"]), (4, ["malformed"])]
    raw = query(project, "SELECT _raw_line, _error FROM quarantine.orders ORDER BY _row_number")
    assert raw[0][0] == "3,placed" and "missing columns" in raw[0][1]
    assert raw[1][0] == "4,placed,1,2024-01-01,extra" and "too many columns" in raw[1][1]
    assert query(project, "SELECT order_id FROM orders ORDER BY 1") == [(1,), (2,), (5,)]


def test_wrong_encoding_is_a_clear_error_and_nothing_is_lost(
    tmp_path: Path, cli: CliRunner
) -> None:
    # two of three records hold latin-1 bytes: too many to be damage (one would be quarantined
    # as `encoding`: test_encoding_share.py), so the file is in another encoding
    body = (HEADER + "1,placed,1,2024-01-01\n").encode() + (
        b"2,caf\xe9,1,2024-01-01\n3,th\xe9,1,2024-01-01\n"
    )
    project = write_project(tmp_path, ORDERS, {"landing/orders/a.csv": body})
    code, _, err = cli("run", "-p", project)
    assert code == 1
    assert "landing/orders/a.csv:3: not valid utf-8 text" in " ".join(err.split())
    assert not list((project / "lake" / "stage" / "orders").glob("*/manifest.json"))
    assert (project / "landing" / "orders" / "a.csv").read_bytes() == body
    # declaring the encoding makes the same file load
    yml = (project / "penstock.yml").read_text()
    yml = yml.replace("    load: merge\n", "    load: merge\n    csv: {encoding: latin-1}\n")
    (project / "penstock.yml").write_text(yml)
    result = penstock.run(project)
    assert_accounting(result)
    assert query(project, "SELECT status FROM quarantine.orders ORDER BY 1") == [
        ("café",),
        ("thé",),
    ]


def test_empty_and_header_only_files_load_zero_rows_with_a_warning(tmp_path: Path) -> None:
    yml = ORDERS + "    checks:\n      - {row_count: {min: 1}}\n"
    project = write_project(
        tmp_path, yml, {"landing/orders/a.csv": "", "landing/orders/b.csv": HEADER}
    )
    result = penstock.run(project)
    assert result.status == "success"
    assert ledger(project) == [(0, 0, 0, 0), (0, 0, 0, 0)]
    assert {o.status for o in result.loads()} == {"warning"}
    assert all(o.reason_counts == {"check:row_count": 0} for o in result.loads())
    with MetadataStore(f"sqlite:///{project / '.penstock' / 'metadata.db'}") as store:
        messages = [r.message for r in store.logs(result.run_id)]
    assert any("landing/orders/a.csv: empty file" in m for m in messages)


def test_row_count_failure_quarantines_the_whole_batch(tmp_path: Path) -> None:
    yml = ORDERS + "    checks:\n      - {row_count: {max: 1}}\n"
    project = write_project(tmp_path, yml, {"landing/orders/a.csv": HEADER + GOOD})
    result = penstock.run(project)
    assert_accounting(result)
    assert ledger(project) == [(2, 0, 2, 0)]
    assert quarantined(project) == [(1, ["check:row_count"]), (2, ["check:row_count"])]


def test_a_missing_source_directory_names_it(tmp_path: Path, cli: CliRunner) -> None:
    project = write_project(tmp_path, ORDERS)
    code, _, err = cli("run", "-p", project)
    assert code == 1
    assert "source 'landing': directory ./landing does not exist" in " ".join(err.split())


def test_a_column_missing_from_the_file(tmp_path: Path) -> None:
    body = "order_id,status,amount\n1,placed,1\n2,placed,2\n"
    project = write_project(tmp_path, ORDERS, {"landing/orders/a.csv": body})
    result = penstock.run(project)
    assert_accounting(result)
    # updated_at is required: every row fails it; nothing is dropped
    assert quarantined(project) == [(1, ["required:updated_at"]), (2, ["required:updated_at"])]
    assert ledger(project) == [(2, 0, 2, 0)]
    with MetadataStore(f"sqlite:///{project / '.penstock' / 'metadata.db'}") as store:
        logs = store.logs(result.run_id, level="warning")
    assert any("updated_at missing from the file" in r.message for r in logs)


def test_a_missing_optional_column_loads_as_null(tmp_path: Path) -> None:
    body = "order_id,amount,updated_at\n1,1,2024-01-01\n"
    project = write_project(tmp_path, ORDERS, {"landing/orders/a.csv": body})
    result = penstock.run(project)
    assert_accounting(result)
    assert query(project, "SELECT order_id, status FROM orders") == [(1, None)]
    assert result.loads()[0].status == "warning"


def test_an_extra_unknown_column_is_kept_in_stage_and_not_loaded(tmp_path: Path) -> None:
    body = "order_id,status,amount,updated_at,coupon\n1,placed,1,2024-01-01,SAVE10\n"
    project = write_project(tmp_path, ORDERS, {"landing/orders/a.csv": body})
    result = penstock.run(project)
    assert_accounting(result)
    columns = [r[0] for r in query(project, "DESCRIBE orders")]
    assert "coupon" not in columns
    # a CSV read cleanly is staged as the bytes delivered, coupon and all
    (staged,) = (project / "lake" / "stage" / "orders").glob("*/data.csv")
    assert staged.read_text() == body
    manifest = json.loads((staged.parent / "manifest.json").read_text())
    assert manifest["schema"]["coupon"] == "VARCHAR"


def test_values_of_the_wrong_type_fail_their_rows(tmp_path: Path) -> None:
    body = HEADER + "1,placed,abc,2024-01-01\nx,placed,1,2024-01-01\n3,placed,1,yesterday\n"
    body += "4,placed,1,2024-01-01\n"
    project = write_project(tmp_path, ORDERS, {"landing/orders/a.csv": body})
    result = penstock.run(project)
    assert_accounting(result)
    assert quarantined(project) == [
        (1, ["type:amount"]),
        (2, ["type:order_id"]),
        (3, ["type:updated_at"]),
    ]
    assert query(project, "SELECT order_id FROM orders") == [(4,)]


def test_invalid_yaml_exits_2_naming_file_and_line(tmp_path: Path, cli: CliRunner) -> None:
    project = write_project(tmp_path, "name: x\nsources:\n  landing: {kind: files\n")
    code, _, err = cli("run", "-p", project)
    assert code == 2
    assert "penstock.yml:" in err and "error:" in err


def test_the_same_content_under_a_new_name_is_not_loaded_twice(tmp_path: Path) -> None:
    files = {"landing/orders/a.csv": HEADER + GOOD, "landing/orders/b.csv": HEADER + GOOD}
    project = write_project(tmp_path, ORDERS, files)
    first = penstock.run(project)
    assert len(first.loads()) == 1
    (project / "landing" / "orders" / "c.csv").write_text(HEADER + GOOD)
    second = penstock.run(project)
    assert second.loads() == [] and second.status == "success"
    assert query(project, "SELECT count(*) FROM penstock.loads") == [(1,)]


JSONL = """
name: jsonl
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  events:
    source: landing
    files: "events/*.jsonl"
    columns:
      id:      {type: integer, required: true}
      payload: {type: json}
      label:   {type: text}
"""


def test_jsonl_malformed_lines_are_quarantined_and_blank_lines_skipped(tmp_path: Path) -> None:
    body = (
        '{"id": 1, "payload": {"a": [1, 2]}, "label": "x"}\n'
        "\n"
        "not json\n"
        "[1, 2]\n"
        '{"id": 4, "label": null}\r\n'
        '{"id": "five"}\n'
    )
    project = write_project(tmp_path, JSONL, {"landing/events/a.jsonl": body})
    result = penstock.run(project)
    assert_accounting(result)
    assert quarantined(project, "events") == [
        (2, ["malformed"]),
        (3, ["malformed"]),
        (5, ["type:id"]),
    ]
    assert query(project, "SELECT id, payload::VARCHAR, label FROM events ORDER BY id") == [
        (1, '{"a":[1,2]}', "x"),
        (4, None, None),
    ]


def test_jsonl_that_is_not_utf8_names_the_line(tmp_path: Path, cli: CliRunner) -> None:
    # two of three records are not UTF-8: more than max_encoding_errors allows
    body = b'{"id": 1}\n{"id": 2, "label": "caf\xe9"}\n{"id": 3, "label": "\xe9t\xe9"}\n'
    project = write_project(tmp_path, JSONL, {"landing/events/a.jsonl": body})
    code, _, err = cli("run", "-p", project)
    assert code == 1
    assert "landing/events/a.jsonl:2: not valid UTF-8" in " ".join(err.split())


def test_parquet_files_keep_their_types_and_are_validated(tmp_path: Path) -> None:
    yml = JSONL.replace('"events/*.jsonl"', '"events/*.parquet"')
    project = write_project(tmp_path, yml)
    (project / "landing" / "events").mkdir(parents=True)
    table = pa.table(
        {"id": [1, None, 3], "payload": ['{"k": 1}', None, "{bad"], "label": list("abc")}
    )
    pq.write_table(table, project / "landing" / "events" / "a.parquet")
    result = penstock.run(project)
    assert_accounting(result)
    assert quarantined(project, "events") == [(2, ["required:id"]), (3, ["type:payload"])]
    assert query(project, "SELECT id, label FROM events") == [(1, "a")]
