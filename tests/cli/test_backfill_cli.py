"""`penstock backfill` and `penstock partitions` through the CLI: JSON out, the exit codes, the
line that names how to retry a failed partition."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from penstock.faults import fault_action

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

YML = """
name: shop
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    partition_by: {path: "orders/{date:%Y%m%d}.csv"}
    columns:
      order_id:   {type: bigint, required: true}
      order_date: {type: date}
  plain:
    source: landing
    files: "plain/*.csv"
    columns:
      id: {type: bigint}
"""


def test_backfill_and_partitions_through_the_cli(tmp_path: Path, cli: Cli) -> None:
    files = {
        f"landing/orders/2026010{d}.csv": f"order_id,order_date\n{d},2026-01-0{d}\n"
        for d in (1, 2, 3)
    }
    files["landing/orders/notes.csv"] = "order_id,order_date\n9,2026-01-09\n"
    root = write_project(tmp_path, YML, files)
    code, out, _ = cli(
        "backfill",
        "orders",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-03",
        "--workers",
        "2",
        "-p",
        root,
        "--json",
    )
    assert code == 0
    report = json.loads(out)
    assert (report["object"], report["grain"], report["workers"], report["status"]) == (
        "orders",
        "day",
        2,
        "success",
    )
    assert [(p["key"], p["status"], p["rows_loaded"]) for p in report["partitions"]] == [
        ("2026-01-01", "success", 1),
        ("2026-01-02", "success", 1),
        ("2026-01-03", "success", 1),
    ]
    assert report["unmatched_files"] == ["landing/orders/notes.csv"]
    assert query(root, "SELECT order_id FROM orders ORDER BY 1") == [(1,), (2,), (3,)]

    # a partition that fails: exit 1, and the line says how to retry it alone
    (root / "landing/orders/20260102.csv").write_text("order_id,order_date\n2,2026-01-02\n22,\n")

    def refuse() -> None:
        raise RuntimeError("injected")

    with fault_action("before_load_commit", refuse):
        code, out, err = cli("backfill", "orders", "--partition", "2026-01-02", "-p", root)
    assert code == 1
    assert "2026-01-02" in out and "failed" in out
    assert "penstock backfill orders --partition 2026-01-02" in err
    code, out, _ = cli("partitions", "orders", "-p", root, "--json")
    shown = {p["partition"]: p for p in json.loads(out)["partitions"]}
    assert code == 0
    assert (shown["2026-01-02"]["status"], shown["2026-01-02"]["rows_loaded"]) == ("failed", 1)
    assert shown["2026-01-01"]["status"] == "success"
    code, out, _ = cli("backfill", "orders", "--partition", "2026-01-02", "-p", root)
    assert code == 0 and "success" in out
    assert query(root, "SELECT order_id FROM orders ORDER BY 1") == [(1,), (2,), (3,), (22,)]

    # usage errors: exit 2, one line
    code, _, err = cli("backfill", "plain", "--partition", "2026-01-01", "-p", root)
    assert code == 2 and "declares no partition_by" in err
    code, _, err = cli("backfill", "orders", "-p", root)
    assert code == 2 and "--from DATE and --to DATE" in err
    code, _, err = cli("backfill", "orders", "--from", "2026-01-01", "--to", "nope", "-p", root)
    assert code == 2 and "--to: 'nope' is not a date" in err
