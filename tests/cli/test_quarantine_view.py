"""`penstock quarantine OBJECT` is a view a person can read: batch and source file on every
row, filters by reason, batch (id, prefix or file) and file glob, --columns for wide
objects, a count of the rows not shown, raw lines cut to the width in the table (whole in
JSON), and 10,000 rows rendered as a table."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: qview
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    load: merge
    columns:
      id:      {type: bigint, required: true}
      amount:  {type: "decimal(8,2)", min: 0}
      country: {type: text, pattern: "^[A-Z]{2}$"}
      note:    {type: text}
"""
# a.csv: record 1 type:amount, 2 pattern:country, 3 both, 4 malformed (a long raw line), 5 ok
A = (
    "id,amount,country,note\n"
    "1,abc,DE,first\n"
    "2,5.00,de,second\n"
    "3,-x,zz,third\n"
    "4,1.00,DE,a note," + "x" * 300 + "\n"
    "5,1.00,DE,fine\n"
)
# b.csv: record 1 min:amount, 2 type:id
B = "id,amount,country,note\n10,-1.00,FR,neg\nten,1.00,FR,bad id\n"


def json_rows(cli: Cli, project: Path, *args: str) -> dict[str, Any]:
    code, out, err = cli("quarantine", "orders", "-p", project, "--json", *args)
    assert code == 0, err
    payload: dict[str, Any] = json.loads(out)
    return payload


def rows_of(payload: dict[str, Any]) -> list[tuple[str, int]]:
    return [(Path(r["_source_file"]).name, r["_row_number"]) for r in payload["rows"]]


def table_lines(out: str) -> list[list[str]]:
    """The body rows of the printed table, as lists of stripped cells."""
    return [
        [c.strip() for c in line.strip("│").split("│")]
        for line in out.splitlines()
        if line.startswith("│")
    ]


@pytest.fixture
def project(tmp_path: Path, cli: Cli) -> Path:
    root = write_project(tmp_path / "p", PROJECT, {"landing/orders/a.csv": A})
    assert cli("run", "-p", root)[0] == 0
    (root / "landing/orders/b.csv").write_text(B)
    assert cli("run", "-p", root)[0] == 0
    return root


def batch_ids(project: Path) -> dict[str, str]:
    return {
        Path(f).name: b
        for b, f in query(project, "SELECT batch_id, source_file FROM penstock.loads")
    }


def test_every_row_names_its_batch_and_source_file(project: Path, cli: Cli) -> None:
    ids = batch_ids(project)
    payload = json_rows(cli, project)
    assert payload["total"] == 6
    assert [
        (Path(r["_source_file"]).name, r["_batch_id"], r["_row_number"], r["_reasons"])
        for r in payload["rows"]
    ] == [
        ("a.csv", ids["a.csv"], 1, ["type:amount"]),
        ("a.csv", ids["a.csv"], 2, ["pattern:country"]),
        ("a.csv", ids["a.csv"], 3, ["type:amount", "pattern:country"]),
        ("a.csv", ids["a.csv"], 4, ["malformed"]),
        ("b.csv", ids["b.csv"], 1, ["min:amount"]),
        ("b.csv", ids["b.csv"], 2, ["type:id"]),
    ]
    code, out, _ = cli("quarantine", "orders", "-p", project)
    assert code == 0
    lines = table_lines(out)
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    assert [c.strip() for c in header.strip("┃").split("┃")][:6] == [
        "batch",
        "file",
        "row",
        "loaded",
        "superseded",
        "reasons",
    ]
    short_a = ids["a.csv"].removeprefix("orders-")[:10]
    assert lines[0][:6] == [
        short_a,
        "landing/orders/a.csv",
        "1",
        "no",
        "no",
        "type:amount",
    ]
    assert lines[0][6:] == ["1", "abc", "DE", "first"]
    assert lines[4][1:3] == ["landing/orders/b.csv", "1"]
    assert "6 rows" in out


def test_reason_filters_by_name_kind_and_several(project: Path, cli: Cli) -> None:
    assert rows_of(json_rows(cli, project, "--reason", "type:amount")) == [
        ("a.csv", 1),
        ("a.csv", 3),
    ]
    # a kind, with or without the colon, matches every reason of that kind
    for kind in ("type:", "type"):
        assert rows_of(json_rows(cli, project, "--reason", kind)) == [
            ("a.csv", 1),
            ("a.csv", 3),
            ("b.csv", 2),
        ]
    # several values: comma-separated or repeated; a row with any of them matches
    expected = [("a.csv", 2), ("a.csv", 3), ("a.csv", 4), ("b.csv", 1)]
    assert rows_of(json_rows(cli, project, "--reason", "pattern:country,malformed,min")) == expected
    assert (
        rows_of(
            json_rows(cli, project, "-r", "pattern:country", "-r", "malformed", "--reason", "min:")
        )
        == expected
    )
    assert json_rows(cli, project, "--reason", "type:amount")["total"] == 2
    # the table applies the same filter
    code, out, _ = cli("quarantine", "orders", "-p", project, "--reason", "malformed")
    assert code == 0
    assert [line[2] for line in table_lines(out)] == ["4"]


def test_an_unknown_reason_kind_is_a_usage_error(project: Path, cli: Cli) -> None:
    code, _, err = cli("quarantine", "orders", "-p", project, "--reason", "typo:amount")
    assert code == 2
    assert "unknown kind 'typo'" in err and "type:amount" in err


def test_no_match_lists_the_reasons_present(project: Path, cli: Cli) -> None:
    code, out, _ = cli("quarantine", "orders", "-p", project, "--reason", "required:id")
    assert code == 0
    text = " ".join(out.split())
    assert "no rows of quarantine.orders match" in text
    assert "type:amount (2)" in text and "malformed (1)" in text
    assert json_rows(cli, project, "--reason", "required:id") == {
        "object": "orders",
        "total": 0,
        "superseded": 0,
        "rows": [],
    }


def test_batch_filter_takes_an_id_a_prefix_or_a_source_file(
    project: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = batch_ids(project)
    b_rows = [("b.csv", 1), ("b.csv", 2)]
    full = ids["b.csv"]
    short = full.removeprefix("orders-")[:10]  # what the table shows
    for value in (
        full,
        short,
        full[:12],
        "landing/orders/b.csv",
        "./landing/orders/b.csv",
        "b.csv",  # the file's name, or the end of its path
        "orders/b.csv",
    ):
        assert rows_of(json_rows(cli, project, "--batch", value)) == b_rows, value
    # a path as the shell gives it: absolute, or relative to the current directory
    assert rows_of(json_rows(cli, project, "--batch", str(project / "landing/orders/b.csv"))) == (
        b_rows
    )
    monkeypatch.chdir(project / "landing")
    assert rows_of(json_rows(cli, project, "--batch", "orders/b.csv")) == b_rows
    # the table, filtered the same way
    code, out, _ = cli("quarantine", "orders", "-p", project, "--batch", short)
    assert code == 0
    assert [line[0] for line in table_lines(out)] == [short, short]


def test_batch_filter_errors_name_the_problem(project: Path, cli: Cli) -> None:
    code, _, err = cli("quarantine", "orders", "-p", project, "--batch", "orders-")
    assert code == 2
    assert "matches 2 batches of orders" in err and "give more of the id" in err
    code, _, err = cli("quarantine", "orders", "-p", project, "--batch", "landing/orders/c.csv")
    assert code == 2
    assert "no loaded batch of orders has that id or source file" in err
    assert "penstock batches orders" in err


def test_file_filter_takes_a_path_or_a_glob(project: Path, cli: Cli) -> None:
    assert [n for _, n in rows_of(json_rows(cli, project, "--file", "b.csv"))] == [1, 2]
    assert rows_of(json_rows(cli, project, "--file", "landing/orders/a.csv"))[0] == ("a.csv", 1)
    assert json_rows(cli, project, "--file", "landing/*/a.csv")["total"] == 4
    assert json_rows(cli, project, "--file", "?.csv")["total"] == 6
    assert json_rows(cli, project, "--file", "c.csv")["total"] == 0
    # filters combine
    assert rows_of(json_rows(cli, project, "--file", "a.csv", "--reason", "pattern")) == [
        ("a.csv", 2),
        ("a.csv", 3),
    ]


def test_columns_picks_the_contract_columns_shown(project: Path, cli: Cli) -> None:
    payload = json_rows(cli, project, "--columns", "NOTE,id", "--limit", "1")
    (row,) = payload["rows"]
    contract = {k for k in row if not k.startswith("_")}
    assert contract == {"note", "id"}
    assert (row["id"], row["note"]) == ("1", "first")
    code, out, _ = cli(
        "quarantine", "orders", "-p", project, "--columns", "note,id", "--limit", "1"
    )
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    assert [c.strip() for c in header.strip("┃").split("┃")][6:] == ["note", "id"]
    assert table_lines(out)[0][6:] == ["first", "1"]


def test_an_unknown_column_is_a_usage_error_listing_the_columns(project: Path, cli: Cli) -> None:
    code, _, err = cli("quarantine", "orders", "-p", project, "--columns", "id,amout")
    assert code == 2
    assert "unknown column(s) 'amout'" in err
    assert "columns of orders: id, amount, country, note" in err


def test_limit_says_how_many_more_rows_match(project: Path, cli: Cli) -> None:
    code, out, _ = cli("quarantine", "orders", "-p", project, "--limit", "2")
    assert code == 0
    assert len(table_lines(out)) == 2
    assert "2 of 6 rows; --limit 0 for all" in out
    payload = json_rows(cli, project, "--limit", "2")
    assert payload["total"] == 6 and len(payload["rows"]) == 2
    code, out, _ = cli("quarantine", "orders", "-p", project, "--limit", "0")
    assert len(table_lines(out)) == 6 and "6 rows" in out and "--limit 0" not in out
    # the count is of the rows matching the filters
    code, out, _ = cli("quarantine", "orders", "-p", project, "--limit", "1", "--reason", "type")
    assert "1 of 3 rows; --limit 0 for all" in out


def test_a_raw_line_is_cut_to_the_width_in_the_table_and_whole_in_json(
    project: Path, cli: Cli
) -> None:
    code, out, _ = cli("quarantine", "orders", "-p", project, "--reason", "malformed")
    assert code == 0
    (line,) = [x for x in out.splitlines() if x.startswith("│")]
    assert len(line) <= 160  # off a terminal the width is 160
    assert "raw: 4,1.00,DE,a note,xxx" in line and line.rstrip("│ ").endswith("…")
    (row,) = json_rows(cli, project, "--reason", "malformed")["rows"]
    assert row["_raw_line"] == "4,1.00,DE,a note," + "x" * 300
    assert row["_error"]  # the parser's message
    # every line of the table fits the width
    code, out, _ = cli("quarantine", "orders", "-p", project)
    assert max(len(x) for x in out.splitlines() if x[:1] in "┏┃┡│└") <= 160


def test_ten_thousand_rows_render_as_a_table(tmp_path: Path, cli: Cli) -> None:
    body = "id,amount,country,note\n" + "".join(
        f"{i},bad{i},{'DE' if i % 2 else 'de'},line {i}\n" for i in range(1, 10_001)
    )
    project = write_project(tmp_path, PROJECT, {"landing/orders/big.csv": body})
    assert cli("run", "-p", project)[0] == 0
    code, out, err = cli("quarantine", "orders", "-p", project, "--limit", "0")
    assert code == 0, err
    lines = table_lines(out)
    assert len(lines) == 10_000
    assert [line[2] for line in lines[:3]] == ["1", "2", "3"]
    assert lines[-1][2] == "10000"
    assert lines[1][5] == "type:amount, pattern:country"
    assert lines[-1][6:] == ["10000", "bad10000", "de", "line 10000"]
    assert "10,000 rows" in out
    payload = json_rows(cli, project, "--limit", "0")
    assert payload["total"] == len(payload["rows"]) == 10_000
    assert payload["rows"][-1]["amount"] == "bad10000"


def test_while_a_writer_holds_the_warehouse_it_waits_then_names_it(project: Path, cli: Cli) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', "
            "flush=True); time.sleep(60)",
            str(project / "warehouse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        code, out, err = cli("quarantine", "orders", "-p", project, "--wait", "0.5")
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.communicate()
    assert code == 1 and out == ""
    assert waited >= 0.5
    assert f"PID {holder.pid}" in err and "gave up after waiting 0.5s" in err
