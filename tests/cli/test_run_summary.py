"""The run summary: the selected objects only, each with its outcome; a failed object in the
table with its error cut to the width (the whole error below it and in --json); a DQ pass
rate that never rounds a failure up to 100% nor a success down to 0%; notes under the table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from penstock.catalog import load_project
from penstock.cli.render import pass_rate
from penstock.cli.run_commands import print_run
from penstock.engine.results import BatchOutcome, RunResult

from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: summary
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    load: merge
    group: sales
    on_invalid: fail
    columns:
      id:  {type: bigint, required: true}
      qty: {type: integer, min: 0}
  items:
    source: landing
    files: "items/*.csv"
    group: sales
    columns:
      id:  {type: bigint, required: true}
      qty: {type: integer, min: 0}
  events:
    source: landing
    files: "events/*.csv"
    columns:
      id: {type: bigint, required: true}
"""
FILES = {
    "landing/orders/a.csv": "id,qty\n1,1\n2,-1\n",  # breaks its contract: on_invalid fail
    "landing/items/a.csv": "id,qty\n1,1\n2,-5\n",  # one row quarantined
    "landing/events/a.csv": "id\n1\n2\n",
}


def table_rows(out: str) -> dict[str, list[str]]:
    """The summary table as {object: [cells as printed]}."""
    rows: dict[str, list[str]] = {}
    for line in out.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip("│").split("│")]
        rows[cells[0]] = cells
    return rows


def header(out: str) -> list[str]:
    line = next(line for line in out.splitlines() if line.startswith("┃"))
    return [c.strip() for c in line.strip("┃").split("┃")]


def test_the_summary_lists_only_the_selected_objects(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT, FILES)
    code, out, _ = cli("run", "-p", project, "--select", "events")
    assert code == 0
    assert list(table_rows(out)) == ["events"]
    assert table_rows(out)["events"][1:4] == ["success", "1", "2"]  # status, batches, rows in

    code, out, _ = cli("run", "-p", project, "--select", "items", "--json")
    assert code == 0
    run = json.loads(out)
    assert [o["object"] for o in run["objects"]] == ["items"]
    assert (run["status"], run["objects"][0]["status"]) == ("warning", "warning")

    # a group selects its members, in project order; rebuild summarises alike
    code, out, _ = cli("run", "-p", project, "--select", "group:sales")
    assert code == 1  # orders cannot load
    assert list(table_rows(out)) == ["orders", "items"]
    code, out, _ = cli("rebuild", "-p", project, "--select", "group:sales")
    assert code == 1
    assert list(table_rows(out)) == ["orders", "items"]
    code, out, _ = cli("rebuild", "-p", project, "-s", "events", "--json")
    assert [o["object"] for o in json.loads(out)["objects"]] == ["events"]


def test_a_failed_object_shows_in_the_table_with_its_error(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT, FILES)
    code, out, err = cli("run", "-p", project)
    assert code == 1
    assert header(out) == [
        "object",
        "status",
        "batches",
        "rows in",
        "loaded",
        "quarantined",
        "duplicates",
        "warned",
        "DQ pass rate",
        "error",
    ]
    rows = table_rows(out)
    assert list(rows) == ["orders", "items", "events"]
    assert [rows[name][1] for name in rows] == ["failed", "warning", "success"]
    error_cell = rows["orders"][-1]
    # the reasons first; cut with … to fit the width (160 columns off a terminal)
    assert error_cell.startswith("min:qty ×1 in batch orders-") and error_cell.endswith("…")
    assert all(len(line) <= 160 for line in out.splitlines())
    assert rows["items"][-1] == rows["events"][-1] == ""
    # the whole error under the table, with the way out
    assert "failed orders load landing/orders/a.csv: object 'orders': min:qty ×1" in err
    assert "penstock batches skip orders orders-" in " ".join(err.split())

    code, out, _ = cli("run", "-p", project, "--json")
    assert code == 1
    run = json.loads(out)
    by_name = {o["object"]: o for o in run["objects"]}
    assert run["status"] == "failed"
    assert {n: o["status"] for n, o in by_name.items()} == {
        "orders": "failed",
        "items": "success",  # nothing new since the first run
        "events": "success",
    }
    assert by_name["orders"]["error"] == run["failures"][0]["error"]
    assert "skip this batch: penstock batches skip orders" in by_name["orders"]["error"]
    assert by_name["items"]["error"] is None


@pytest.mark.parametrize(
    ("passed", "total", "shown"),
    [
        (999_999, 1_000_000, "99.9999%"),  # one bad row in a million is not 100%
        (1, 1_000_000, "0.0001%"),  # one good row in a million is not 0%
        (1_000_000, 1_000_000, "100%"),
        (0, 1_000_000, "0%"),
        (985, 1_000, "98.5%"),
        (9_995, 10_000, "99.95%"),  # 99.95 would round to 100.0 at one decimal
        (19_999, 20_000, "99.995%"),
        (5, 10_000, "0.1%"),  # 0.05 rounds half up, away from 0
        (1, 3, "33.3%"),
        (2, 3, "66.7%"),
        (10**12 - 1, 10**12, "99.9999999999%"),  # exact on integers, no float rounding
    ],
)
def test_the_pass_rate_reaches_a_bound_only_when_every_row_did(
    passed: int, total: int, shown: str
) -> None:
    assert pass_rate(passed, total) == shown


def test_no_rows_have_no_pass_rate() -> None:
    assert pass_rate(0, 0) is None


def test_one_bad_row_in_twenty_thousand_is_not_shown_as_100(tmp_path: Path, cli: Cli) -> None:
    """At one decimal 19,999 of 20,000 is `100.0%` (what the summary used to print); one good
    row of 20,000 would be `0.0%`."""
    good = "".join(f"{i},1\n" for i in range(1, 20_000))
    bad_ids = "".join("\n" for _ in range(1, 20_000))
    files = {
        "landing/items/a.csv": f"id,qty\n{good}20000,-1\n",
        "landing/events/a.csv": f"id\n{bad_ids}7\n",
    }
    project = write_project(tmp_path, PROJECT, files)
    code, out, _ = cli("run", "-p", project, "-s", "items,events")
    assert code == 0
    rows = table_rows(out)
    assert rows["items"][3] == "20,000" and rows["items"][8] == "99.995%"
    assert rows["events"][3] == "20,000" and rows["events"][8] == "0.01%"  # 0.005, half up
    assert "100.0%" not in out and "0.0%" not in out

    code, out, _ = cli("rebuild", "-p", project, "-s", "items,events", "--json")
    by_name = {o["object"]: o for o in json.loads(out)["objects"]}
    assert by_name["items"]["dq_pass_rate"] == 19_999 / 20_000
    assert by_name["events"]["dq_pass_rate"] == 1 / 20_000


def test_notes_print_under_the_table_and_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`RunResult.notes` is where a run tells the person something about it (e.g. a glob
    that matched nothing): under the table, and in --json."""
    project = load_project(write_project(tmp_path, PROJECT, {}))
    result = RunResult(run_id="r1", command="run")
    result.outcomes.append(BatchOutcome("events", "b1", "a.csv", "load", "success", rows_in=2))
    result.notes.append('items: 0 files matched "items/*.cvs"')
    print_run(result, project, as_json=False, selector="items,events")
    out = capsys.readouterr().out
    lines = out.splitlines()
    end_of_table = max(i for i, line in enumerate(lines) if line.startswith("└"))
    assert lines[end_of_table + 1] == 'note: items: 0 files matched "items/*.cvs"'
    assert list(table_rows(out)) == ["items", "events"]

    print_run(result, project, as_json=True, selector="items,events")
    payload = json.loads(capsys.readouterr().out)
    assert payload["notes"] == ['items: 0 files matched "items/*.cvs"']
    assert payload["status"] == "success"
