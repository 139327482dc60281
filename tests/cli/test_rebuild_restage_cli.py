"""`penstock rebuild --restage` on the command line: what it prints, its `--json`, its help,
and exit code 1 naming the file when the new settings cannot read it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

YML = """
name: shop
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    load: merge
    columns:
      id:     {type: integer, required: true}
      amount: {type: "decimal(10,2)"}
  people:
    source: landing
    files: "people/*.csv"
    columns:
      id: {type: integer, required: true}
"""

FILES: dict[str, str | bytes] = {
    "landing/orders/2024-01.csv": "id;amount\n1;1.50\n2;2.00\n",
    "landing/orders/2024-02.csv": "id;amount\n3;3.00\n",
    "landing/people/p.csv": "id\n1\n",
}


def fix_delimiter(project: Path, csv: str = 'csv: {delimiter: ";"}') -> None:
    yml = (project / "penstock.yml").read_text()
    (project / "penstock.yml").write_text(
        yml.replace("    load: merge\n", f"    load: merge\n    {csv}\n")
    )


def test_restage_prints_what_it_reparsed_and_what_replayed_as_staged(
    tmp_path: Path, cli: Cli
) -> None:
    project = write_project(tmp_path, YML, FILES)
    assert cli("run", "-p", project)[0] == 0
    assert query(project, "SELECT count(*) FROM orders") == [(0,)]
    (project / "landing" / "orders" / "2024-02.csv").unlink()
    fix_delimiter(project)

    code, out, err = cli("rebuild", "-p", project, "--restage", "--select", "orders")
    assert code == 0, err
    assert "Restaged 1 of 2 batch(es) with the current settings (orders)." in out
    assert re.search(
        r"replayed as staged orders landing/orders/2024-02\.csv \(batch orders-[0-9a-f]{20}\): "
        r"no longer in the landing zone",
        out,
    )
    assert query(project, "SELECT id, amount::VARCHAR FROM orders ORDER BY id") == [
        (1, "1.50"),
        (2, "2.00"),
    ]

    code, out, err = cli("rebuild", "-p", project, "--restage", "-s", "orders", "--json")
    assert code == 0, err
    report = json.loads(out)["restage"]
    assert [(r["object"], r["source_file"], r["status"]) for r in report] == [
        ("orders", "landing/orders/2024-01.csv", "restaged"),
        ("orders", "landing/orders/2024-02.csv", "gone"),
    ]
    assert all(r["batch_id"].startswith("orders-") for r in report)
    # a plain rebuild says nothing about restaging
    code, out, _ = cli("rebuild", "-p", project, "--json")
    assert code == 0 and "restage" not in json.loads(out)


def test_a_file_the_new_settings_cannot_read_fails_the_command_naming_it(
    tmp_path: Path, cli: Cli
) -> None:
    legacy = "id;amount\n4;4.00 ¤\n5;5.00 ¤\n".encode("latin-1")  # a latin-1 file
    project = write_project(tmp_path, YML, {**FILES, "landing/orders/2023-12.csv": legacy})
    fix_delimiter(project, "csv: {encoding: latin-1}")
    assert cli("run", "-p", project)[0] == 0
    yml = (project / "penstock.yml").read_text()
    (project / "penstock.yml").write_text(
        yml.replace("csv: {encoding: latin-1}", 'csv: {delimiter: ";"}')  # utf-8 again
    )
    code, out, err = cli("rebuild", "-p", project, "--restage")
    assert code == 1
    err = " ".join(err.split())  # as one line, however the console wrapped it
    assert (
        "failed orders restage landing/orders/2023-12.csv: landing/orders/2023-12.csv:2: "
        "not valid utf-8 text" in err
    )
    assert "keeps its previous parse" in err
    assert (
        "not rebuilt orders: a file cannot be read with the current settings; its stage zone "
        "and table are as they were" in err
    )
    assert "Restaged 1 of 4 batch(es) with the current settings (people)." in out
    assert query(project, "SELECT count(*) FROM orders") == [(0,)]  # left as it was


def test_help_shows_the_flag_and_an_example(cli: Cli) -> None:
    code, out, _ = cli("rebuild", "--help")
    assert code == 0
    assert "--restage" in out and "First parse each staged batch's" in out
    assert "penstock rebuild --restage --select orders" in out
