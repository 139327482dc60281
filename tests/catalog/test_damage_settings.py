"""The settings for damaged files: `csv: {max_line_span}` and `max_encoding_errors`, their
defaults, source-level defaults, and mistakes reported with file, line and key path."""

from collections.abc import Callable
from pathlib import Path

import pytest

from penstock.catalog import load_project
from penstock.catalog.encoding_limit import EncodingErrorLimit

LoadErrors = Callable[[Path], list[str]]
WriteFiles = Callable[..., Path]

PROJECT = """
name: shop
sources:
  landing: {kind: files, path: ./landing, csv: {max_line_span: 3}}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    SETTINGS
    columns:
      id: {type: integer}
"""


def project(write_files: WriteFiles, settings: str) -> Path:
    return write_files({"penstock.yml": PROJECT.replace("SETTINGS", settings)})


def test_defaults(write_files: WriteFiles) -> None:
    root = write_files(
        {"penstock.yml": PROJECT.replace("SETTINGS", "").replace(", csv: {max_line_span: 3}", "")}
    )
    orders = load_project(root).objects["orders"]
    assert orders.csv is not None and orders.csv.max_line_span == 8
    assert orders.max_encoding_errors is None
    assert orders.encoding_limit == EncodingErrorLimit(share="1%", count=1000)


def test_max_line_span_comes_from_the_source_unless_the_object_sets_it(
    write_files: WriteFiles,
) -> None:
    inherited = load_project(project(write_files, "")).objects["orders"]
    assert inherited.csv is not None and inherited.csv.max_line_span == 3
    own = load_project(project(write_files, "csv: {max_line_span: 12}")).objects["orders"]
    assert own.csv is not None and own.csv.max_line_span == 12


def test_max_encoding_errors_forms(write_files: WriteFiles) -> None:
    root = project(write_files, "max_encoding_errors: {share: 0.5%, count: 20}")
    limit = load_project(root).objects["orders"].encoding_limit
    assert (limit.share, limit.count) == ("0.5%", 20)
    root = project(write_files, "max_encoding_errors: {count: 0}")
    assert load_project(root).objects["orders"].encoding_limit.allowed(1000) == 0


@pytest.mark.parametrize(
    ("records", "allowed"),
    [(1, 0), (2, 1), (20, 1), (100, 1), (101, 2), (150, 2), (100_000, 1000), (10**7, 1000)],
)
def test_the_default_share_rounds_up_and_never_allows_every_record(
    records: int, allowed: int
) -> None:
    assert EncodingErrorLimit().allowed(records) == allowed


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            "csv: {max_line_span: 0}",
            "penstock.yml:8: objects.orders.csv.max_line_span: must be at least 1",
        ),
        (
            "max_encoding_errors: {share: 1}",
            "penstock.yml:8: objects.orders.max_encoding_errors.share: expected a percentage "
            "such as 1% or 0.5%, got 1",
        ),
        (
            "max_encoding_errors: {share: 120%}",
            "penstock.yml:8: objects.orders.max_encoding_errors.share: a share is at most "
            "100%, got '120%'",
        ),
        (
            "max_encoding_errors: {count: -1}",
            "penstock.yml:8: objects.orders.max_encoding_errors.count: must be at least 0",
        ),
        (
            "max_encoding_errors: {ratio: 1%}",
            "penstock.yml:8: objects.orders.max_encoding_errors.ratio: unknown key",
        ),
    ],
)
def test_mistakes_name_file_line_and_key(
    write_files: WriteFiles, load_errors: LoadErrors, settings: str, expected: str
) -> None:
    assert load_errors(project(write_files, settings)) == [expected]


def test_max_encoding_errors_is_for_text_formats(
    write_files: WriteFiles, load_errors: LoadErrors
) -> None:
    root = write_files(
        {
            "penstock.yml": PROJECT.replace('"orders/*.csv"', '"orders/*.parquet"').replace(
                "SETTINGS", "max_encoding_errors: {count: 5}"
            )
        }
    )
    assert load_errors(root) == [
        "penstock.yml:8: objects.orders.max_encoding_errors: max_encoding_errors applies to "
        "CSV, JSON Lines and JSON objects, not parquet"
    ]
    jsonl = PROJECT.replace('"orders/*.csv"', '"orders/*.jsonl"').replace(
        "csv: {max_line_span: 3}", "settle: 0s"
    )
    root = write_files(
        {"penstock.yml": jsonl.replace("SETTINGS", "max_encoding_errors: {count: 5}")}
    )
    limit = load_project(root).objects["orders"].encoding_limit
    assert (limit.count, limit.share) == (5, "1%")
