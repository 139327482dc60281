"""`penstock check` looks at the data: the head of each object's first file goes through the
real staging and validation, and what a run would meet there is reported: a wrong delimiter
(with the setting that reads it), columns missing from the header (with the closest header
names), an encoding error, the share of sampled rows each rule would fail."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import duckdb
import pytest

import penstock
from penstock.engine.check import check_project
from penstock.engine.check_data import DataCheck

from helpers import query, write_project

CONTRACT = """
name: shop
sources: {landing: {kind: files, path: ./landing, settle: 0s}}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    CSV
    columns:
      order_id: {type: integer, required: true}
      order_date: {type: date}
      amount: {type: "decimal(10,2)", min: 0}
"""


def _project(tmp_path: Path, files: dict[str, str | bytes], csv: str = "") -> Path:
    yml = CONTRACT.replace("CSV", csv or "on_invalid: quarantine")
    return write_project(tmp_path, yml, files)


def _data(report: dict[str, Any], name: str = "orders") -> DataCheck:
    (found,) = [o for o in report["objects"] if o.object == name]
    assert isinstance(found, DataCheck)
    return found


def _lines(report: dict[str, Any], level: str) -> list[str]:
    return [c["detail"] for c in report["checks"] if c["level"] == level]


@pytest.mark.parametrize(("delimiter", "written"), [(";", '";"'), ("\t", '"\\t"'), ("|", '"|"')])
def test_a_file_read_with_the_wrong_delimiter_gets_the_setting_that_reads_it(
    tmp_path: Path, delimiter: str, written: str
) -> None:
    rows = ["order_id,order_date,amount", "1,2024-01-01,12.50", "2,2024-01-02,3"]
    text = "\n".join(r.replace(",", delimiter) for r in rows) + "\n"
    project = _project(tmp_path, {"landing/orders/a.csv": text})
    report = check_project(project)
    data = _data(report)
    assert report["ok"] is False  # no contract column is in the header: every row would fail
    assert data.header == [rows[0].replace(",", delimiter)]
    (suggestion,) = data.suggested_settings
    assert (suggestion.setting, suggestion.value) == ("csv.delimiter", delimiter)
    assert suggestion.yaml == f"csv: {{delimiter: {written}}}"
    assert "with it 3 of 3 contract column(s) are in the header" in suggestion.reason
    assert (
        "landing/orders/a.csv: none of the contract's columns is in the header "
        f'(read as "{rows[0].replace(",", delimiter)}")'
    ) in _lines(report, "error")
    assert any(
        f"try `csv: {{delimiter: {written}}}` on object orders" in w
        for w in _lines(report, "warning")
    )

    # the setting suggested is the one that works: with it, check finds nothing wrong
    fixed = _project(
        tmp_path / "fixed", {"landing/orders/a.csv": text}, f"csv: {{delimiter: {written}}}"
    )
    report = check_project(fixed)
    assert report["ok"] is True and _lines(report, "warning") == []
    assert _data(report).suggested_settings == []


def test_a_missing_column_is_named_with_the_closest_header(tmp_path: Path) -> None:
    text = "Order ID,Order Date,amount,channel\n1,2024-01-01,5,web\n2,2024-01-02,6,shop\n"
    project = _project(tmp_path, {"landing/orders/a.csv": text})
    report = check_project(project)
    data = _data(report)
    missing = {m.column: m for m in data.missing_columns}
    assert list(missing) == ["order_id", "order_date"]
    assert missing["order_id"].required and missing["order_id"].closest[0] == "Order ID"
    assert not missing["order_date"].required and missing["order_date"].closest[0] == "Order Date"
    assert data.extra_columns == ["Order ID", "Order Date", "channel"]
    # a required column missing is an error (every row would fail), an optional one a warning
    assert report["ok"] is False
    assert _lines(report, "error") == [
        "landing/orders/a.csv: column order_id is missing from the header "
        '(required: every row would fail); closest: "Order ID", "Order Date"'
    ]
    assert (
        "landing/orders/a.csv: column order_date is missing from the header (reads as empty); "
        'closest: "Order Date", "Order ID"'
    ) in _lines(report, "warning")
    # the required column is reported once, not again as every row failing required
    assert [f.reason for f in data.rule_failures] == []


def test_a_from_that_matches_no_header_is_named_with_the_closest_to_it(tmp_path: Path) -> None:
    yml = CONTRACT.replace("CSV", "on_invalid: quarantine").replace(
        "order_date: {type: date}", 'order_date: {type: date, from: "order dt"}'
    )
    text = "order_id,Order Date,amount\n1,2024-01-01,5\n"
    project = write_project(tmp_path, yml, {"landing/orders/a.csv": text})
    report = check_project(project)
    (missing,) = _data(report).missing_columns
    assert (missing.column, missing.source_name, missing.closest) == (
        "order_date",
        "order dt",
        ["Order Date"],
    )
    assert (
        "landing/orders/a.csv: column order_date (from: 'order dt') is missing from the header "
        '(reads as empty); closest: "Order Date"'
    ) in _lines(report, "warning")


def test_the_sampled_failure_share_per_rule(tmp_path: Path) -> None:
    # 5,000 rows: every 8th has an amount that is not a number, every 10th a negative one
    lines = ["order_id,order_date,amount"]
    for i in range(1, 5001):
        amount = "abc" if i % 8 == 0 else ("-1" if i % 10 == 0 else "1.50")
        lines.append(f"{i},2024-01-01,{amount}")
    project = _project(tmp_path, {"landing/orders/a.csv": "\n".join(lines) + "\n"})
    report = check_project(project)
    data = _data(report)
    assert report["ok"] is True  # failing rows are warnings: a run quarantines them
    assert data.sample_rows == 1_000 and data.sample_complete is False
    shares = {f.reason: (f.rows, f.share) for f in data.rule_failures}
    # rows 8, 16 ... 1000 fail type (125); rows 10, 20 ... not a multiple of 40 fail min (75)
    assert shares == {"type:amount": (125, 0.125), "min:amount": (75, 0.075)}
    (warning,) = [c for c in report["checks"] if "would fail a rule" in c["detail"]]
    assert warning["detail"] == (
        "landing/orders/a.csv: 200 of 1,000 sampled row(s) would fail a rule (20.0%); per rule:"
    )
    assert [" ".join(d.split()) for d in warning["details"]] == [
        'type:amount 125 12.5% e.g. "abc"',
        'min:amount 75 7.5% e.g. "-1"',
    ]
    assert "landing/orders/a.csv: sampled its first 1,000 record(s)" in _lines(report, "ok")
    # a larger sample when asked for
    assert _data(check_project(project, sample_rows=4000)).sample_rows == 4_000


def test_the_sample_counts_what_a_run_quarantines(tmp_path: Path) -> None:
    lines = [
        "order_id,order_date,amount",
        "1,2024-01-01,1",
        "2,2024-02-30,1",
        "x,,",
        "4,2024-01-04",
    ]
    project = _project(tmp_path, {"landing/orders/a.csv": "\n".join(lines) + "\n"})
    data = _data(check_project(project))
    assert data.sample_complete and data.sample_rows == 4
    assert {f.reason: f.rows for f in data.rule_failures} == {
        "type:order_date": 1,
        "type:order_id": 1,
    }
    assert data.malformed == 1
    penstock.run(project)
    reasons = query(project, "SELECT _reasons FROM quarantine.orders ORDER BY _row_number")
    assert reasons == [(["type:order_date"],), (["type:order_id"],), (["malformed"],)]


def test_a_file_in_another_encoding_is_an_error_with_the_setting_that_reads_it(
    tmp_path: Path,
) -> None:
    # every record holds a latin-1 byte: the file is in another encoding (one damaged record
    # among good ones would be quarantined: test_encoding_share.py)
    text = "order_id,order_date,amount\n1,2024-01-01,1 é\n2,2024-01-02,2 café\n".encode("latin-1")
    project = _project(tmp_path, {"landing/orders/a.csv": text})
    report = check_project(project)
    assert report["ok"] is False
    assert _lines(report, "error") == [
        "landing/orders/a.csv:2: not valid utf-8 text; set `csv: {encoding: ...}` on object "
        "'orders' (utf-8, utf-16, latin-1 or windows-1252); 2 of 2 records hold invalid bytes, "
        "more than max_encoding_errors allows (1% of the records, at most 1,000)"
    ]
    (suggestion,) = _data(report).suggested_settings
    assert suggestion.yaml == "csv: {encoding: latin-1}"


def test_a_check_that_fails_on_the_values_is_named_with_its_line(tmp_path: Path) -> None:
    yml = """
    name: shop
    sources: {landing: {kind: files, path: ./landing, settle: 0s}}
    objects:
      orders:
        source: landing
        files: "orders/*.csv"
        columns:
          order_id: {type: integer}
          code: {type: text}
        checks:
          - {row_count: {min: 1}}
          - {name: numeric_code, expression: "CAST(code AS INTEGER) > 0"}
    """
    project = write_project(tmp_path, yml, {"landing/orders/a.csv": "order_id,code\n1,7\n2,x\n"})
    report = check_project(project)
    (error,) = _lines(report, "error")
    assert error.startswith(
        "penstock.yml:13: objects.orders.checks[1].expression: check 'numeric_code' fails on "
        "landing/orders/a.csv: Conversion Error: Could not convert string 'x' to INT32"
    )


def test_only_the_head_of_a_large_file_is_read(tmp_path: Path) -> None:
    """A gzip file whose tail is damaged: the sample, read from the head, stages; a run, which
    reads the whole file, fails it. (Also: quoted values holding line breaks are not cut.)"""
    head = "order_id,order_date,amount\n" + "".join(
        f'{i},2024-01-01,"{i}\n0"\n' for i in range(1, 200_001)
    )
    data = gzip.compress(head.encode())
    damaged = data[: len(data) // 2] + b"\x00" * 64
    yml = CONTRACT.replace("CSV", "on_invalid: quarantine").replace("*.csv", "*.csv.gz")
    project = write_project(tmp_path, yml, {"landing/orders/a.csv.gz": damaged})
    report = check_project(project)
    data_check = _data(report)
    assert data_check.sample_rows == 1_000 and data_check.malformed == 0
    # "1\n" is not a decimal: every sampled row fails type, and only that
    assert [(f.reason, f.rows) for f in data_check.rule_failures] == [("type:amount", 1_000)]
    result = penstock.run(project)
    assert [o.status for o in result.failures] == ["failed"]


def test_parquet_and_jsonl_files_are_sampled_too(tmp_path: Path) -> None:
    yml = """
    name: shop
    sources: {landing: {kind: files, path: ./landing, settle: 0s}}
    objects:
      events:
        source: landing
        files: "events/*.parquet"
        columns: {id: {type: integer, required: true}, kind: {type: text, in: [a, b]}}
      people:
        source: landing
        files: "people/*.jsonl"
        columns: {id: {type: integer}, name: {type: text, required: true}}
    """
    project = write_project(
        tmp_path,
        yml,
        {"landing/people/a.jsonl": '{"id": 1, "name": "x"}\n{"id": 2}\n[1]\n'},
    )
    (project / "landing" / "events").mkdir()
    conn = duckdb.connect()
    target = project / "landing" / "events" / "a.parquet"
    conn.execute(
        f"COPY (SELECT i AS id, CASE WHEN i % 4 = 0 THEN 'c' ELSE 'a' END AS kind "
        f"FROM range(1, 3001) t(i)) TO '{target}' (FORMAT parquet)"
    )
    conn.close()
    report = check_project(project)
    events, people = _data(report, "events"), _data(report, "people")
    assert (events.sample_rows, events.sample_complete) == (1_000, False)
    assert [(f.reason, f.rows) for f in events.rule_failures] == [("in:kind", 250)]
    assert (people.sample_rows, people.sample_complete, people.malformed) == (3, True, 1)
    assert [(f.reason, f.rows) for f in people.rule_failures] == [("required:name", 1)]


def test_on_invalid_fail_and_row_count_do_not_hide_the_shares(tmp_path: Path) -> None:
    rows = "".join(f"{i},2024-01-01,{'-1' if i % 2 else '1'}\n" for i in range(1, 3001))
    csv = "on_invalid: fail\n    checks: [{row_count: {max: 10}}]"
    project = _project(
        tmp_path, {"landing/orders/a.csv": "order_id,order_date,amount\n" + rows}, csv
    )
    data = _data(check_project(project))
    # every failing row is counted (fail would stop at the first); row_count judges whole
    # files, not a sample of 1,000 records
    assert [(f.reason, f.rows) for f in data.rule_failures] == [("min:amount", 500)]


def test_a_header_without_records_still_shows_what_is_missing(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        {"landing/orders/a.csv": "order_id,order_dt,amount\n", "landing/orders/b.csv": ""},
    )
    report = check_project(project)
    data = _data(report)
    assert (data.file, data.sample_rows, data.sample_complete) == ("landing/orders/a.csv", 0, True)
    assert [(m.column, m.closest) for m in data.missing_columns] == [("order_date", ["order_dt"])]
    # no record would fail: a warning, not an error
    assert report["ok"] is True
    assert "landing/orders/a.csv: no records" in _lines(report, "warning")
