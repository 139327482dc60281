"""Source columns can be named anything: penstock's internal names never collide with them.

Internal columns and aliases of the validation SQL carry the reserved prefix `__penstock_`;
a source column that starts with it is refused with an error naming the file and column.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import penstock

from helpers import query, write_project

PROJECT = """
name: reserved
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.%s"
    format: %s
    key: [id]
    load: merge
    columns:
      id:    {type: bigint, required: true}
      name:  {type: text, required: true}
      qty:   {type: integer, min: 0}
"""

# every internal name the SQL used, and the ones it still uses for its outputs
SYSTEM_NAMES = [
    "file_row_number",
    "_ordinal",
    "_reasons",
    "_failed",
    "__raw_0",
    "_row_number",
    "_batch_id",
    "_raw_line",
    "_error",
    "ordinality",
]


def _csv(rows: list[tuple[str, str, str]]) -> str:
    header = ",".join(["id", *SYSTEM_NAMES, "name", "qty"])
    lines = [header]
    for i, (id_, name, qty) in enumerate(rows):
        junk = [f"x{i}{j}" for j in range(len(SYSTEM_NAMES))]
        lines.append(",".join([id_, *junk, name, qty]))
    return "\n".join(lines) + "\n"


def test_source_columns_with_system_names_load_with_exact_values_and_record_numbers(
    tmp_path: Path,
) -> None:
    body = _csv([("1", "a", "5"), ("2", "", "3"), ("3", "c", "-1"), ("4", "d", "7")])
    body += "5,only,three\n"  # malformed: too few fields, record 6
    body += ",".join(["6", *["y"] * len(SYSTEM_NAMES), "f", "9"]) + "\n"
    project = write_project(tmp_path, PROJECT % ("csv", "csv"), {"landing/items/a.csv": body})
    result = penstock.run(project)
    assert result.status == "success", [f.error for f in result.failures]
    assert query(project, "SELECT id, name, qty FROM items ORDER BY id") == [
        (1, "a", 5),
        (4, "d", 7),
        (6, "f", 9),
    ]
    assert query(
        project, "SELECT _row_number, _reasons, id, name, qty FROM quarantine.items ORDER BY 1"
    ) == [
        (2, ["required:name"], "2", None, "3"),
        (3, ["min:qty"], "3", "c", "-1"),
        (5, ["malformed"], None, None, None),
    ]
    assert query(
        project, "SELECT rows_in, rows_loaded, rows_quarantined, rows_duplicate FROM penstock.loads"
    ) == [(6, 3, 3, 0)]


def test_parquet_source_with_a_file_row_number_column_loads(tmp_path: Path) -> None:
    project = write_project(tmp_path, PROJECT % ("parquet", "parquet"))
    table = pa.table(
        {
            "file_row_number": pa.array([100, 200, 300], pa.int64()),
            "id": pa.array([3, 1, 2], pa.int64()),
            "name": ["c", "a", None],
            "qty": pa.array([1, 2, 3], pa.int32()),
            "_ordinal": pa.array([9, 9, 9], pa.int64()),
        }
    )
    path = project / "landing" / "items" / "a.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    result = penstock.run(project)
    assert result.status == "success", [f.error for f in result.failures]
    assert query(project, "SELECT id, name, qty FROM items ORDER BY id") == [
        (1, "a", 2),
        (3, "c", 1),
    ]
    assert query(project, "SELECT _row_number, _reasons FROM quarantine.items") == [
        (3, ["required:name"])
    ]


def test_a_source_column_with_the_reserved_prefix_is_refused_naming_file_and_column(
    tmp_path: Path,
) -> None:
    body = "id,__penstock_ordinal,name,qty\n1,x,a,1\n"
    project = write_project(tmp_path, PROJECT % ("csv", "csv"), {"landing/items/bad.csv": body})
    result = penstock.run(project)
    assert result.status == "failed"
    (failure,) = result.failures
    assert failure.error is not None
    assert "bad.csv" in failure.error and "__penstock_ordinal" in failure.error
    assert "reserved" in failure.error
    assert query(project, "SELECT count(*) FROM penstock.loads") == [(0,)]
