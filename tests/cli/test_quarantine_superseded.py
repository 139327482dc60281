"""A quarantined row is `superseded` when the object table holds its key from a batch loaded
after the row's batch; `--hide-superseded` leaves such rows out. What that means per load
mode (penstock.warehouse.quarantine): merge and append-with-key compare the stored row's
batch, scd2 any version's batch, replace the snapshot's batch (key or not); append without a
key supersedes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]


def project_yml(load: str, key: str = "key: [id]", order_by: str = "") -> str:
    return f"""
name: superseded
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  items:
    source: landing
    files: "items/*.csv"
    {key}
    {order_by}
    load: {load}
    columns:
      id:     {{type: bigint, required: true}}
      amount: {{type: "decimal(8,2)", min: 0}}
      day:    {{type: date}}
"""


def deliver(cli: Cli, project: Path, name: str, body: str) -> None:
    """Each file in its own run, so load order is delivery order."""
    path = project / "landing/items" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id,amount,day\n" + body)
    code, _, err = cli("run", "-p", project)
    assert code == 0, err


def marks(cli: Cli, project: Path, *args: str) -> list[tuple[str, int, bool]]:
    code, out, err = cli("quarantine", "items", "-p", project, "--json", *args)
    assert code == 0, err
    return [
        (Path(r["_source_file"]).name, r["_row_number"], r["_superseded"])
        for r in json.loads(out)["rows"]
    ]


def test_merge_a_key_loaded_by_a_later_batch_supersedes(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, project_yml("merge"))
    # a: id 1 (written 1.00: still bigint 1) and 3 fail; id 5 fails and loads in the same file
    deliver(cli, project, "a.csv", "1.00,bad,\n2,2.00,\n3,bad,\n5,bad,\n5,5.00,\n")
    # b: the fix for id 1; id 4 fails here
    deliver(cli, project, "b.csv", "1,1.00,\n4,bad,\n")
    assert marks(cli, project) == [
        ("a.csv", 1, True),  # id 1 loaded from b, a later batch
        ("a.csv", 3, False),  # id 3 never loaded
        ("a.csv", 4, False),  # id 5 loaded, but from the same batch
        ("b.csv", 2, False),
    ]
    assert marks(cli, project, "--hide-superseded") == [
        ("a.csv", 3, False),
        ("a.csv", 4, False),
        ("b.csv", 2, False),
    ]
    code, out, _ = cli("quarantine", "items", "-p", project, "--json", "--hide-superseded")
    assert (json.loads(out)["total"], json.loads(out)["superseded"]) == (3, 0)
    code, out, _ = cli("quarantine", "items", "-p", project, "--json")
    assert (json.loads(out)["total"], json.loads(out)["superseded"]) == (4, 1)

    # the table: a superseded column, and the count with the option to hide them
    code, out, _ = cli("quarantine", "items", "-p", project)
    assert code == 0
    rows = [
        [c.strip() for c in line.strip("│").split("│")]
        for line in out.splitlines()
        if line.startswith("│")
    ]
    assert [(r[1].rsplit("/", 1)[-1], r[2], r[4]) for r in rows] == [
        ("a.csv", "1", "yes"),
        ("a.csv", "3", "no"),
        ("a.csv", "4", "no"),
        ("b.csv", "2", "no"),
    ]
    assert "4 rows; 1 superseded by a later batch: --hide-superseded leaves them out" in out
    code, out, _ = cli("quarantine", "items", "-p", project, "--hide-superseded")
    assert sum(line.startswith("│") for line in out.splitlines()) == 3


def test_merge_an_unchanged_later_delivery_supersedes_nothing(tmp_path: Path, cli: Cli) -> None:
    """The stored row keeps the batch that first loaded it, so a failed row in between stays
    unsuperseded: the table's row is older than the failure."""
    project = write_project(tmp_path, project_yml("merge"))
    deliver(cli, project, "a.csv", "2,2.00,\n")
    deliver(cli, project, "b.csv", "2,bad,\n")
    deliver(cli, project, "c.csv", "2,2.00,\n9,9.00,\n")  # id 2 unchanged: keeps batch a
    assert marks(cli, project) == [("b.csv", 1, False)]


def test_scd2_any_later_version_supersedes(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, project_yml("scd2", order_by="order_by: day"))
    deliver(cli, project, "a.csv", "1,1.00,2024-01-01\n2,2.00,2024-01-01\n")
    deliver(cli, project, "b.csv", "1,bad,2024-02-01\n2,bad,2024-02-01\n")
    deliver(cli, project, "c.csv", "1,3.00,2024-03-01\n")  # a new version of id 1 only
    assert marks(cli, project) == [("b.csv", 1, True), ("b.csv", 2, False)]


def test_append_with_a_key_compares_keys(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, project_yml("append"))
    deliver(cli, project, "a.csv", "1,bad,\n2,bad,\n")
    deliver(cli, project, "b.csv", "1,1.00,\n")
    assert marks(cli, project) == [("a.csv", 1, True), ("a.csv", 2, False)]


def test_append_without_a_key_supersedes_nothing(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, project_yml("append", key=""))
    deliver(cli, project, "a.csv", "1,bad,\n")
    deliver(cli, project, "b.csv", "1,1.00,\n")
    assert marks(cli, project) == [("a.csv", 1, False)]
    assert marks(cli, project, "--hide-superseded") == [("a.csv", 1, False)]


def test_replace_a_later_snapshot_supersedes_every_older_row(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, project_yml("replace", key=""))
    deliver(cli, project, "a.csv", "1,bad,\n2,2.00,\n")
    deliver(cli, project, "b.csv", "7,7.00,\n")  # id 1 is not in it: still superseded
    deliver(cli, project, "c.csv", "8,bad,\n")  # nothing to load: the table keeps snapshot b
    assert marks(cli, project) == [("a.csv", 1, True), ("c.csv", 1, False)]
    assert marks(cli, project, "--hide-superseded") == [("c.csv", 1, False)]
