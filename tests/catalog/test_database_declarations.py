"""What a database source and a database object may declare (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from penstock.catalog import ObjectSpec, Project
from penstock.secrets import register_secret

COLUMNS = {
    "id": {"type": "bigint"},
    "amount": {"type": "decimal(12,2)"},
    "seq": {"type": "integer"},
    "updated_at": {"type": "timestamptz"},
}


def db_object(**fields: Any) -> ObjectSpec:
    data: dict[str, Any] = {"name": "orders", "source": "shop_db", "columns": COLUMNS}
    data.update(fields)
    return ObjectSpec.model_validate(data)


def message(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    (error,) = exc.value.errors()
    return str(error["msg"]).removeprefix("Value error, ")


def test_a_table_and_its_selectors() -> None:
    spec = db_object(table="sales.orders", key=["id"], cursor="updated_at", lookback="10m")
    assert (spec.table, spec.table_name, spec.reads_database) == ("sales.orders", "orders", True)
    assert db_object(query="SELECT 1 AS id", target="raw_orders").table_name == "raw_orders"
    assert db_object(table="t", key=["id"], cursor="seq", lookback=100).lookback == 100
    assert db_object(table="t", key=["id"], partitions=4).partitions == 4
    assert db_object(table="t").load == "replace"  # no key: each full read is a snapshot
    assert db_object(table="t", key=["id"]).load == "merge"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"table": "t", "query": "SELECT 1"}, "give table: or query:, not both"),
        ({"table": "a.b.c"}, "table 'a.b.c' must be a table name or schema.table"),
        ({"table": "t", "cursor": "updated_at"}, "cursor: needs a key"),
        ({"table": "t", "key": ["id"], "cursor": "amount"}, "cursor column 'amount' is"),
        ({"table": "t", "key": ["id"], "cursor": "nope"}, "cursor column 'nope' is not"),
        ({"table": "t", "lookback": "1m"}, "lookback: widens the cursor's window"),
        (
            {"table": "t", "key": ["id"], "cursor": "seq", "lookback": "1m"},
            "cursor 'seq' is a number: give lookback: as one",
        ),
        (
            {"table": "t", "key": ["id"], "cursor": "updated_at", "lookback": 5},
            "give lookback: as a duration",
        ),
        ({"table": "t", "key": ["amount"], "partitions": 2}, "partitions: splits the read"),
        ({"files": "x.csv", "cursor": "id"}, "cursor: applies to a database object"),
        ({"table": "t", "load": "append"}, "load: merge or scd2 with a key, or replace"),
        (
            {"files": "x.csv", "table": "orders_raw"},
            "table: now names the source table of a database object; the warehouse table of "
            "a files object is target: (write target: orders_raw)",
        ),
    ],
)
def test_refused(fields: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        db_object(**fields)
    assert expected in message(info)


def project(tmp_path: Path, url: str, **obj: Any) -> Project:
    return Project.model_validate(
        {
            "name": "shop",
            "root": tmp_path,
            "sources": {"shop_db": {"kind": "postgres", "url": url}},
            "objects": {"orders": {"source": "shop_db", "columns": COLUMNS, **obj}},
        }
    )


def test_a_database_object_names_what_it_reads(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        project(tmp_path, "postgresql://etl@db/shop")
    assert "give table: or query: (source 'shop_db' is a postgres database)" in str(info.value)


@pytest.mark.usefixtures("no_secrets")
def test_urls(tmp_path: Path) -> None:
    ok = project(tmp_path, "postgresql://etl@db:5432/shop", table="orders")
    assert ok.sources["shop_db"].display() == "postgresql://db:5432/shop"  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match="needs a postgresql:// url, not mysql://"):
        project(tmp_path, "mysql://etl@db/shop", table="orders")
    with pytest.raises(ValidationError, match="holds a password in clear") as info:
        project(tmp_path, "postgresql://etl:hunter2-pw@db/shop", table="orders")
    assert "hunter2-pw" not in message(info)  # (the CLI shows the message, never the input)
    register_secret("s3cret-pw")  # as `${env:PW}` resolved
    referenced = project(tmp_path, "postgresql://etl:s3cret-pw@db/shop", table="orders")
    assert referenced.objects["orders"].table == "orders"
