"""`penstock batches OBJECT [--json]` lists staged batches with their status;
`penstock batches skip OBJECT BATCH --reason TEXT` unblocks an object whose batch failed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]


def flat(text: str) -> str:
    """Rich wraps long lines: compare with the wrapping undone."""
    return " ".join(text.split())


PROJECT = """
name: batches
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    load: merge
    on_invalid: fail
    columns:
      id:  {type: bigint, required: true}
      qty: {type: integer, min: 0}
"""


def test_batches_lists_statuses_and_skip_unblocks_the_object(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/orders/a.csv": "id,qty\n1,1\n"})
    code, out, _ = cli("batches", "orders", "-p", project, "--json")
    assert code == 0 and json.loads(out)["batches"] == []
    assert cli("run", "-p", project)[0] == 0
    (project / "landing/orders/b.csv").write_text("id,qty\n2,-1\n")
    code, out, err = cli("run", "-p", project)
    assert code == 1
    assert "penstock batches skip orders orders-" in flat(err)  # the failure names the command
    (project / "landing/orders/c.csv").write_text("id,qty\n2,2\n")
    assert cli("run", "-p", project)[0] == 1  # still blocked by the staged bad batch

    code, out, _ = cli("batches", "orders", "-p", project, "--json")
    assert code == 0
    listing = json.loads(out)
    assert listing["object"] == "orders"
    rows = {b["source_file"].rsplit("/", 1)[1]: b for b in listing["batches"]}
    assert [b["source_file"] for b in listing["batches"]] == [
        "landing/orders/a.csv",
        "landing/orders/b.csv",
        "landing/orders/c.csv",
    ]
    assert {k: v["status"] for k, v in rows.items()} == {
        "a.csv": "loaded",
        "b.csv": "failed",
        "c.csv": "pending",
    }
    assert rows["b.csv"]["rows"] == 1 and rows["b.csv"]["extracted_at"]
    assert "min:qty ×1" in rows["b.csv"]["error"]
    assert rows["a.csv"]["error"] is None

    code, out, err = cli("batches", "orders", "-p", project)
    assert code == 0
    assert "Staged batches of orders" in out and "failed" in out and "pending" in out
    bad = rows["b.csv"]["batch_id"]
    assert f"penstock batches skip orders {bad} --reason TEXT" in flat(err)

    short = bad.split("-", 1)[1][:8]  # a unique prefix of the hash is enough
    code, _, err = cli("batches", "skip", "orders", short, "-p", project)
    assert code == 2 and "--reason" in err
    code, out, _ = cli(
        "batches",
        "skip",
        "orders",
        short,
        "--reason",
        "negative qty, resent as c.csv",
        "-p",
        project,
    )
    assert code == 0, out
    assert bad in out and "skipped: negative qty, resent as c.csv" in flat(out)

    code, out, _ = cli("run", "-p", project, "--json")
    assert code == 0 and json.loads(out)["status"] == "success"
    assert query(project, "SELECT id, qty FROM orders ORDER BY id") == [(1, 1), (2, 2)]
    code, out, _ = cli("batches", "orders", "-p", project, "--json")
    states = {b["batch_id"]: b for b in json.loads(out)["batches"]}
    assert [b["status"] for b in states.values()] == ["loaded", "skipped", "loaded"]
    assert states[bad]["skip_reason"] == "negative qty, resent as c.csv"
    assert states[bad]["skipped_by"] and states[bad]["skipped_at"]

    # skipping a loaded batch is an error that says what to do instead
    loaded = rows["a.csv"]["batch_id"]
    code, _, err = cli("batches", "skip", "orders", loaded, "--reason", "x", "-p", project)
    assert code == 2 and "already loaded" in flat(err) and "corrected rows" in flat(err)

    code, out, _ = cli("batches", "unskip", "orders", bad, "-p", project, "--json")
    assert code == 0 and json.loads(out)["batch"]["status"] == "failed"


def test_batches_usage_errors(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, PROJECT, {"landing/orders/a.csv": "id,qty\n1,1\n"})
    assert cli("run", "-p", project)[0] == 0
    code, _, err = cli("batches", "nope", "-p", project)
    assert code == 2 and "unknown object 'nope'" in err
    code, _, err = cli("batches", "skip", "orders", "-p", project)
    assert code == 2 and "usage: penstock batches OBJECT" in err
    code, _, err = cli("batches", "skip", "orders", "zzz", "--reason", "r", "-p", project)
    assert code == 2 and "no staged batch whose id starts with 'zzz'" in err
    code, _, err = cli("batches", "unskip", "orders", "orders-", "-p", project)
    assert code == 2 and "is not skipped" in err
