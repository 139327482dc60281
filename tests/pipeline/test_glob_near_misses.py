"""A glob that matches nothing is reported with what was probably meant: another extension,
the same names in a directory named alike (or one level down), or in another letter case;
failing all of those, a few of the files that are there."""

from __future__ import annotations

from pathlib import Path

import pytest

from penstock.engine.globs import no_match

FILES = [
    "orders/2024-01.csv",
    "orders/2024-02.csv",
    "orders/2024-03.csv.gz",
    "Customers/A.CSV",
    "events/day1.jsonl",
    "notes.txt",
]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (
            "orders/*.cvs",
            'orders: 0 files matched "landing/orders/*.cvs"; did you mean '
            '"landing/orders/*.csv" (2 files) or "landing/orders/*.csv.gz" (1 file)?',
        ),
        (
            "order/*.csv",
            'orders: 0 files matched "landing/order/*.csv"; did you mean '
            '"landing/orders/*.csv" (2 files) or "landing/orders/*.csv.gz" (1 file)?',
        ),
        (
            "customers/*.CSV",
            'orders: 0 files matched "landing/customers/*.CSV"; did you mean '
            '"landing/Customers/*.CSV" (1 file)?',
        ),
        (
            "*.csv",
            'orders: 0 files matched "landing/*.csv"; did you mean "landing/orders/*.csv" '
            "(2 files)?",
        ),
        (
            "ORDERS/2024-01.csv",
            'orders: 0 files matched "landing/ORDERS/2024-01.csv"; did you mean '
            '"landing/orders/2024-01.csv" (1 file)?',
        ),
        (
            "events/*.parquet",
            'orders: 0 files matched "landing/events/*.parquet"; did you mean '
            '"landing/events/*.jsonl" (1 file)?',
        ),
        (
            "archive/*.parquet",
            'orders: 0 files matched "landing/archive/*.parquet"; the source holds 6 other '
            'file(s), e.g. "landing/notes.txt", "landing/Customers/A.CSV", '
            '"landing/events/day1.jsonl"',
        ),
    ],
)
def test_near_misses(tmp_path: Path, pattern: str, message: str) -> None:
    root = tmp_path / "landing"
    for name in FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x\n")
    assert no_match("orders", tmp_path, root, pattern).message == message


def test_an_empty_or_missing_directory_says_so(tmp_path: Path) -> None:
    (tmp_path / "landing").mkdir()
    assert no_match("t", tmp_path, tmp_path / "landing", "*.csv").message == (
        't: 0 files matched "landing/*.csv"; landing holds no files'
    )
    assert no_match("t", tmp_path, tmp_path / "gone", "*.csv").message == (
        't: 0 files matched "gone/*.csv"'
    )
