"""`from:` maps a source name to a contract column; names match ignoring case and surrounding
spaces, in CSV headers, JSON keys and Parquet columns alike. Quarantined rows keep their raw
values under the contract names."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import penstock
from penstock.errors import ProjectErrors
from penstock.sources.csv_layout import fit_header

from helpers import query, write_project

CliRunner = Callable[..., tuple[int, str, str]]

YML = """
name: mapping
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.GLOB"
    key: [order_id]
    columns:
      order_id:   {type: bigint, required: true, from: "Order ID"}
      order_date: {type: date, from: "order date"}
      amount:     {type: "decimal(8,2)", min: 0}
"""


def run(project: Path) -> penstock.RunResult:
    result = penstock.run(project)
    assert result.status == "success", [f.error for f in result.failures]
    return result


def orders(project: Path) -> list[tuple[Any, ...]]:
    return query(project, "SELECT order_id, order_date::VARCHAR, amount FROM orders ORDER BY 1")


def test_a_header_with_spaces_is_mapped_by_from(tmp_path: Path) -> None:
    body = (
        "order id , order date ,AMOUNT\n"
        "1,2024-01-02,10.50\n"
        "2,2024-13-01,3\n"  # a month that does not exist
        "3,2024-01-04,-1\n"
    )
    project = write_project(tmp_path, YML.replace("GLOB", "csv"), {"landing/orders/a.csv": body})
    result = run(project)
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (3, 1, 2)
    assert orders(project) == [(1, "2024-01-02", Decimal("10.50"))]
    # quarantine keeps the raw values under the contract names
    assert query(
        project,
        "SELECT _row_number, _reasons, order_id, order_date, amount FROM quarantine.orders "
        "ORDER BY 1",
    ) == [
        (2, ["type:order_date"], "2", "2024-13-01", "3"),
        (3, ["min:amount"], "3", "2024-01-04", "-1"),
    ]


def test_from_maps_json_lines_keys_and_parquet_columns(tmp_path: Path) -> None:
    jsonl = (
        '{"Order ID": 1, "order date": "2024-01-02", "amount": 1}\n'
        '{" ORDER ID ": 2, "Order Date": "2024-01-03", "amount": 2}\n'
    )
    project = write_project(
        tmp_path / "jsonl", YML.replace("GLOB", "jsonl"), {"landing/orders/a.jsonl": jsonl}
    )
    run(project)
    assert [row[:2] for row in orders(project)] == [(1, "2024-01-02"), (2, "2024-01-03")]

    parquet = tmp_path / "parquet"
    write_project(parquet, YML.replace("GLOB", "parquet"), {})
    (parquet / "landing" / "orders").mkdir(parents=True)
    pq.write_table(
        pa.table({"ORDER ID": [7], "order date": ["2024-02-03"], "amount": [1.25]}),
        parquet / "landing" / "orders" / "a.parquet",
    )
    run(parquet)
    assert [row[:2] for row in orders(parquet)] == [(7, "2024-02-03")]


SWAP = """
name: mapping
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  t:
    source: landing
    files: "*.csv"
    columns:
      a: {type: text, from: b}
      b: {type: text, from: a}
      c: {type: text}
"""


def test_columns_may_swap_source_names(tmp_path: Path) -> None:
    project = write_project(tmp_path, SWAP, {"landing/x.csv": "a,b,c\n1,2,3\n"})
    run(project)
    assert query(project, "SELECT a, b, c FROM t") == [("2", "1", "3")]


def test_two_columns_reading_one_source_name_is_a_located_error(
    tmp_path: Path, cli: CliRunner
) -> None:
    yml = SWAP.replace("      b: {type: text, from: a}", "      b: {type: text, from: ' C '}")
    project = write_project(tmp_path, yml, {})
    code, out, err = cli("check", "-p", project)
    assert code == 2
    assert (
        "penstock.yml:11: objects.t.columns.b.from: column 'b' reads source column ' C ', which "
        "column 'c' already reads by its own name (give 'c' a from: of its own)"
    ) in " ".join((out + err).split())


def test_a_from_naming_another_columns_own_name_is_refused(tmp_path: Path) -> None:
    yml = SWAP.replace("      b: {type: text, from: a}", "      b: {type: text}")
    project = write_project(tmp_path, yml, {})
    with pytest.raises(ProjectErrors) as info:
        penstock.load_project(project)
    messages = [str(e) for e in info.value.errors]
    assert messages == [
        "penstock.yml:10: objects.t.columns.a.from: column 'a' reads source column 'b', which "
        "column 'b' already reads by its own name (give 'b' a from: of its own)"
    ]


def test_from_with_header_false_is_refused(tmp_path: Path) -> None:
    yml = SWAP.replace('files: "*.csv"', 'files: "*.csv"\n    csv: {header: false}')
    with pytest.raises(ProjectErrors) as info:
        penstock.load_project(write_project(tmp_path, yml, {}))
    messages = [str(e) for e in info.value.errors]
    assert messages == [
        f"penstock.yml:{line}: objects.t.columns.{c}.from: from: names a header, but this "
        "object's CSV has none (header: false): fields are read in column order"
        for line, c in ((11, "a"), (12, "b"))
    ]


def test_headers_equal_but_for_surrounding_spaces_fail_the_file(tmp_path: Path) -> None:
    project = write_project(
        tmp_path,
        SWAP,
        {"landing/x.csv": "a, A ,b,c\n1,2,3,4\n"},
    )
    result = penstock.run(project)
    assert result.status == "failed"
    assert [f.error for f in result.failures] == [
        "landing/x.csv:1: header names 'a' and ' A ' differ only in case or surrounding "
        "spaces; every record would be ambiguous (rename one in the file)"
    ]


JSONL = """
name: mapping
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "*.jsonl"
    columns:
      id:   {type: bigint, required: true}
      name: {type: text}
"""


def test_jsonl_keys_follow_the_header_rule(tmp_path: Path) -> None:
    data = (
        '{"id": 1, "Name": "a"}\n'
        '{"id": 2, " name ": "b"}\n'
        '{"id": 3, "name": "c", " NAME": "d"}\n'  # two spellings in one record
    )
    project = write_project(tmp_path, JSONL, {"landing/p.jsonl": data})
    run(project)
    assert query(project, "SELECT id, name FROM people ORDER BY id") == [(1, "a"), (2, "b")]
    assert query(project, "SELECT _row_number, _error FROM quarantine.people") == [
        (3, 'malformed: keys "name" and " NAME" differ only in case or surrounding spaces')
    ]


def test_a_key_repeated_in_one_record_is_caught_even_when_the_key_is_rare(
    tmp_path: Path,
) -> None:
    # "note" occurs twice in record 2 and nowhere else: fewer times than there are records
    data = '{"id": 1}\n{"id": 2, "note": "x", "note": "y"}\n{"id": 3}\n{"id": 4}\n'
    project = write_project(tmp_path, JSONL, {"landing/p.jsonl": data})
    run(project)
    assert query(project, "SELECT id FROM people ORDER BY id") == [(1,), (3,), (4,)]
    assert query(project, "SELECT _row_number, _error FROM quarantine.people") == [
        (2, 'malformed: key "note" appears twice')
    ]


PARQUET = """
name: mapping
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  t:
    source: landing
    files: "*.parquet"
    columns:
      amount: {type: integer}
"""


def test_parquet_columns_equal_but_for_case_or_spaces_fail_the_file(tmp_path: Path) -> None:
    project = write_project(tmp_path, PARQUET, {})
    (project / "landing").mkdir()
    pq.write_table(pa.table({"Amount": [1], " amount": [2]}), project / "landing" / "a.parquet")
    result = penstock.run(project)
    assert result.status == "failed"
    assert [f.error for f in result.failures] == [
        "landing/a.parquet: columns 'Amount' and ' amount' differ only in case or surrounding "
        "spaces; every row would be ambiguous (rename one in the file)"
    ]


@pytest.mark.parametrize(
    ("header", "records", "names"),
    [
        # BLS series files: the header line alone ends with a delimiter
        (
            ["Series id", "Year", "Value", ""],
            [["LNS1", "1959", "5.8"], ["LNS1", "1960", "5.5"]],
            ["Series id", "Year", "Value"],
        ),
        # ... even when the file holds one record
        (
            ["Series id", "Year", "Value", ""],
            [["LNS1", "1959", "5.8"]],
            ["Series id", "Year", "Value"],
        ),
        # an unnamed last column holding values keeps its place
        (["a", "b", ""], [["1", "2", "x"]], ["a", "b", "column2"]),
        # R's write.table: its row names unnamed, in front
        (
            ["Starts", "Rent", "Tax"],
            [["Aberdeen", "1142", "96.8", "712"], ["Edinburgh", "1300", "97.1", "650"]],
            ["column0", "Starts", "Rent", "Tax"],
        ),
        # one record with a field too many is a malformed record, not row names: the file
        # is not re-read from one record (a generated orders file's first record was)
        (
            ["Starts", "Rent", "Tax"],
            [["Aberdeen", "1142", "96.8", "712"]],
            ["Starts", "Rent", "Tax"],
        ),
        (
            ["order_id", "amount", "note"],
            [["1", "2.5", "a", "extra"], ["2", "3.5", "b"], ["3", "4.5", "c"]],
            ["order_id", "amount", "note"],
        ),
        # ... nor one field too few, when the header's last name is empty
        (["a", "b", ""], [["1", "2"], ["3", "4", "x"]], ["a", "b", "column2"]),
        # records ending with a delimiter: the header stays as it is
        (
            ["id", "name", "city"],
            [["1", "a", "x", ""], ["2", "b", "y", ""]],
            ["id", "name", "city"],
        ),
        # two names over three fields: too few to take the first field for row names
        (["a", "b"], [["1", "2", "3"], ["4", "5", "6"]], ["a", "b"]),
        # a first record that spans lines (or cannot be split) fits nothing
        (["a", "b", ""], [], ["a", "b", "column2"]),
    ],
)
def test_a_header_is_fitted_to_its_first_records(
    header: list[str], records: list[list[str]], names: list[str]
) -> None:
    assert fit_header(header, records) == names


ROW_NAMES_OBJECT = """
name: mapping
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  r:
    source: landing
    files: "*.csv"
    columns:
      starts: {type: text}
      rent:   {type: integer}
      tax:    {type: "decimal(5,1)"}
"""


def test_a_first_record_with_a_field_too_many_is_quarantined_alone(tmp_path: Path) -> None:
    """The header is fitted to records only when they agree: one malformed first record (a
    field too many, as the benchmark's generated orders plant) is quarantined and the rest
    load under the header's names."""
    body = "Starts,Rent,Tax\nAberdeen,1142,96.8,712\nEdinburgh,1300,97.1\nLeith,900,95.0\n"
    project = write_project(tmp_path, ROW_NAMES_OBJECT, {"landing/r.csv": body})
    (load,) = run(project).loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (3, 2, 1)
    assert query(project, "SELECT starts, rent, tax FROM r ORDER BY rent") == [
        ("Leith", 900, Decimal("95.0")),
        ("Edinburgh", 1300, Decimal("97.1")),
    ]
    assert query(project, "SELECT _row_number, _raw_line FROM quarantine.r") == [
        (1, "Aberdeen,1142,96.8,712")
    ]
