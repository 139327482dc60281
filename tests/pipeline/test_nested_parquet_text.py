"""A nested Parquet value (STRUCT, LIST, MAP) in a text column is its JSON text, not a repr;
Parquet strings follow the value dialect like CSV text, native numbers do not need it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import penstock

from helpers import query, write_project

YML = """
name: nested
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  things:
    source: landing
    files: "things.parquet"
    null_values: [NA]
    decimal_separator: ","
    columns:
      id: {type: integer, required: true}
      props: {type: text}
      tags: {type: text}
      attrs: {type: text}
      parts: {type: text}
      doc: {type: json}
      label: {type: text}
      price: {type: "decimal(8,2)"}
      amount: {type: "decimal(8,2)"}
      size: {type: integer}
"""


def _write(path: Path) -> None:
    props = pa.struct([("name", pa.string()), ("weight", pa.float64()), ("ok", pa.bool_())])
    part = pa.struct([("sku", pa.string()), ("qty", pa.int32())])
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "props": pa.array(
                [{"name": 'a "b"', "weight": 1.5, "ok": True}, None, {"name": None}], props
            ),
            "tags": pa.array([["x", "y z"], [], None], pa.list_(pa.string())),
            "attrs": pa.array(
                [[("k", 1)], None, [("j", 2), ("k", 3)]], pa.map_(pa.string(), pa.int64())
            ),
            "parts": pa.array([[{"sku": "A-1", "qty": 2}], None, None], pa.list_(part)),
            "doc": pa.array([{"name": "n", "weight": 2.0, "ok": False}, None, None], props),
            "label": pa.array(["NA", " NA ", "ok"]),
            "price": pa.array(["1,50", "NA", "2.50"]),
            "amount": pa.array([Decimal("1.50"), None, Decimal("2.50")], pa.decimal128(8, 2)),
            "size": pa.array([3, None, 4], pa.int32()),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def test_nested_values_are_json_text(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML)
    _write(project / "landing" / "things.parquet")
    penstock.run(project)
    rows = query(
        project,
        "SELECT id, props, tags, attrs, parts, doc::VARCHAR, label, price, amount, size "
        "FROM things ORDER BY id",
    )
    assert rows == [
        (
            1,
            '{"name":"a \\"b\\"","weight":1.5,"ok":true}',
            '["x","y z"]',
            '{"k":1}',
            '[{"sku":"A-1","qty":2}]',
            '{"name":"n","weight":2.0,"ok":false}',
            None,  # a Parquet string that is a null token is missing, like CSV text
            Decimal("1.50"),  # a Parquet string follows the declared decimal comma
            Decimal("1.50"),  # a native decimal needs no dialect
            3,
        ),
        (2, None, "[]", None, None, None, None, None, None, None),
    ]
    # what was stored is JSON: it parses back to the values written
    (props,) = query(project, "SELECT props FROM things WHERE id = 1")[0]
    assert json.loads(props) == {"name": 'a "b"', "weight": 1.5, "ok": True}
    # the row that failed keeps its nested raw values as JSON text in the quarantine too
    failed = query(
        project, "SELECT props, attrs, price, _reasons FROM quarantine.things ORDER BY _row_number"
    )
    assert failed == [
        ('{"name":null,"weight":null,"ok":null}', '{"j":2,"k":3}', "2.50", ["type:price"])
    ]
