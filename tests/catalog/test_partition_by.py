"""`partition_by:` (catalog/partitioning.py): its shapes, the grain, the partition keys, and
what it refuses, each with a message naming the fix."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from penstock.catalog import ObjectSpec
from penstock.catalog.partitioning import (
    key_of,
    parse_instant,
    partition_starts,
    path_regex,
)

COLUMNS = {
    "id": {"type": "bigint"},
    "day": {"type": "date"},
    "at": {"type": "timestamptz"},
    "name": {"type": "text"},
}


def spec(**fields: Any) -> ObjectSpec:
    data: dict[str, Any] = {"name": "orders", "source": "landing", "columns": COLUMNS}
    data.update(fields)
    return ObjectSpec.model_validate(data)


def refused(**fields: Any) -> str:
    with pytest.raises(ValidationError) as exc:
        spec(**fields)
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.value.errors())


def test_the_shapes_and_their_grain() -> None:
    by_path = spec(partition_by={"path": "orders/{date:%Y-%m-%d}/*.csv"})
    assert by_path.partition_by is not None
    assert (by_path.files, by_path.format, by_path.partition_by.unit) == (
        "orders/*/*.csv",  # the files a plain run reads: those the pattern names
        "csv",
        "day",
    )
    hourly = spec(partition_by={"path": "events_{date:%Y%m%d%H}.jsonl", "column": "at"})
    assert hourly.partition_by is not None and hourly.partition_by.unit == "hour"
    monthly = spec(partition_by={"path": "{date:%Y/%m}/*.csv", "grain": "month"})
    assert monthly.partition_by is not None and monthly.partition_by.unit == "month"
    coarser = spec(partition_by={"path": "d={date:%Y-%m-%d}/*.csv", "grain": "month"})
    assert coarser.partition_by is not None and coarser.partition_by.unit == "month"
    database = spec(table="orders", key=["id"], partition_by={"column": "day"})
    assert database.partition_by is not None and database.partition_by.unit == "day"
    regex, fmt = path_regex("orders/{date:%Y-%m-%d}/**/*.csv")
    match = regex.match("orders/2026-01-03/eu/a.csv")
    assert match is not None and (match["date"], fmt) == ("2026-01-03", "%Y-%m-%d")
    assert regex.match("orders/2026-1-3/a.csv") is None


def test_partition_keys() -> None:
    assert [
        key_of(s, "day")
        for s in partition_starts(datetime(2026, 1, 30, 7), datetime(2026, 2, 1), "day")
    ] == ["2026-01-30", "2026-01-31", "2026-02-01"]
    assert [
        key_of(s, "month")
        for s in partition_starts(datetime(2025, 11, 5), datetime(2026, 1, 1), "month")
    ] == ["2025-11", "2025-12", "2026-01"]
    assert [
        key_of(s, "hour")
        for s in partition_starts(
            parse_instant("2026-01-03T22"), parse_instant("2026-01-04 00:30"), "hour"
        )
    ] == ["2026-01-03T22", "2026-01-03T23", "2026-01-04T00"]
    assert parse_instant("2026-01") == datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="is not a date"):
        parse_instant("soon")


def test_what_partition_by_refuses() -> None:
    assert "give column:" in refused(partition_by={})
    assert "exactly one {date:FORMAT}" in refused(partition_by={"path": "orders/*.csv"})
    assert "must name a year" in refused(partition_by={"path": "{date:%m-%d}.csv"})
    assert "'%Q' is not one of" in refused(partition_by={"path": "{date:%Y%Q}.csv"})
    assert "finer than the path's date format" in refused(
        partition_by={"path": "{date:%Y-%m}.csv", "grain": "day"}
    )
    assert "not a declared column" in refused(partition_by={"path": "{date:%Y}.csv", "column": "x"})
    assert "is text: a partition column is a date" in refused(
        partition_by={"path": "{date:%Y-%m-%d}.csv", "column": "name"}
    )
    assert "cannot hold hour partitions" in refused(
        table="orders", key=["id"], partition_by={"column": "day", "grain": "hour"}
    )
    assert "a files object partitions by the path" in refused(partition_by={"column": "day"})
    assert "a database object partitions by column" in refused(
        table="orders", key=["id"], partition_by={"path": "{date:%Y-%m-%d}.csv"}
    )
    assert "load: append or merge" in refused(
        load="replace", partition_by={"path": "{date:%Y-%m-%d}.csv"}
    )
    assert "load: append or merge" in refused(
        load="scd2", key=["id"], partition_by={"path": "{date:%Y-%m-%d}.csv"}
    )
