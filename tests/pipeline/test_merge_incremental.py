"""merge replaces a changed row by deleting the stored one and inserting the new version (cost
in proportion to the batch); what a row holds afterwards must be what an update would leave."""

from __future__ import annotations

from pathlib import Path

import penstock

from helpers import query, write_project

YML = """
name: merge_incremental
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.csv"
    key: [shop, id]
    order_by: ts
    load: merge
    columns:
      shop: {type: text, required: true}
      id:   {type: integer, required: true}
      name: {type: text}
      note: {type: text}
      ts:   {type: timestamp}
"""


def drop(project: Path, name: str, header: str, body: str) -> penstock.RunResult:
    path = project / "landing" / "items" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + body)
    return penstock.run(project)


def test_a_column_the_contract_dropped_keeps_its_stored_value_on_update(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML)
    drop(
        project, "01.csv", "shop,id,name,note,ts", "a,1,pen,n1,2024-01-01\na,2,ink,n2,2024-01-01\n"
    )
    # the contract stops naming `note`; the table keeps the column
    write_project(tmp_path, YML.replace("      note: {type: text}\n", ""))
    result = drop(
        project, "02.csv", "shop,id,name,ts", "a,1,quill,2024-01-02\na,3,nib,2024-01-02\n"
    )
    assert result.status == "success"
    rows = query(project, "SELECT shop, id, name, note FROM items ORDER BY id")
    assert rows == [("a", 1, "quill", "n1"), ("a", 2, "ink", "n2"), ("a", 3, "nib", None)]
    (batches,) = query(project, "SELECT count(DISTINCT _batch_id) FROM items")
    assert batches == (2,)


def test_composite_keys_replace_only_their_own_rows(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML)
    header = "shop,id,name,note,ts"
    drop(
        project, "01.csv", header, "a,1,pen,,2024-01-01\nb,1,pen,,2024-01-01\na,2,ink,,2024-01-01\n"
    )
    drop(
        project, "02.csv", header, "b,1,PEN,,2024-01-02\na,2,ink,,2024-01-01\nb,2,cap,,2024-01-01\n"
    )
    assert query(project, "SELECT shop, id, name FROM items ORDER BY shop, id") == [
        ("a", 1, "pen"),
        ("a", 2, "ink"),
        ("b", 1, "PEN"),
        ("b", 2, "cap"),
    ]
    assert query(
        project,
        "SELECT rows_inserted, rows_updated, rows_unchanged, rows_stale FROM penstock.loads "
        "ORDER BY source_file",
    ) == [(3, 0, 0, 0), (1, 1, 1, 0)]


def test_many_batches_each_load_once_and_the_table_keeps_one_row_per_key(tmp_path: Path) -> None:
    project = write_project(tmp_path, YML)
    header = "shop,id,name,note,ts"
    for n in range(1, 13):
        body = "".join(f"a,{i},v{n},,2024-01-{n:02d}\n" for i in range(n, n + 5))
        assert drop(project, f"{n:02d}.csv", header, body).status == "success"
    again = penstock.run(project)  # nothing new: every batch is in the ledger already
    assert [o for o in again.outcomes if o.step == "load"] == []
    assert query(project, "SELECT count(*), count(DISTINCT id), max(id) FROM items") == [
        (16, 16, 16)
    ]
    # id 5 was delivered by batches 1..5: the last one wins
    assert query(project, "SELECT name FROM items WHERE id = 5") == [("v5",)]
    assert query(project, "SELECT count(*) FROM penstock.loads") == [(12,)]
