"""Rejected files through the CLI: `run` names them (and `--json` lists them), `status` counts
them, `batches OBJECT` lists them with their reasons, `batches retry OBJECT BATCH` asks the
next run to read one again; retrying a batch that is not rejected is a usage error."""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

PROJECT = """
name: retries
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv.gz"
    key: [id]
    load: merge
    columns:
      id:  {type: bigint, required: true}
      qty: {type: integer}
  people:
    source: landing
    files: "people/*.csv"
    columns:
      id:   {type: bigint, required: true}
      name: {type: text}
"""


def flat(text: str) -> str:
    """Rich wraps long lines: compare with the wrapping undone."""
    return " ".join(text.split())


def csv_gz(first: int, count: int) -> bytes:
    body = "id,qty\n" + "".join(f"{i},{i}\n" for i in range(first, first + count))
    return gzip.compress(body.encode(), mtime=0)


def damaged_project(tmp_path: Path) -> Path:
    cut = csv_gz(100, 4000)
    return write_project(
        tmp_path,
        PROJECT,
        {
            "landing/orders/a.csv.gz": csv_gz(1, 2),
            "landing/orders/b.csv.gz": cut[: len(cut) // 2],
            "landing/people/p.csv": "id,name\n1,ann\n",
        },
    )


def as_json(cli: Cli, *args: str | Path) -> tuple[int, Any]:
    code, out, err = cli(*args, "--json")
    return code, json.loads(out) if out.strip() else err


def status_rows(cli: Cli, project: Path) -> dict[str, dict[str, Any]]:
    code, report = as_json(cli, "status", "-p", project)
    assert code == 0, report
    return {o["object"]: o for o in report["objects"]}


def test_run_status_and_batches_show_a_rejected_file(tmp_path: Path, cli: Cli) -> None:
    project = damaged_project(tmp_path)
    code, out, err = cli("run", "-p", project)
    assert code == 1
    text = flat(out + err)
    assert (
        "failed orders stage landing/orders/b.csv.gz: landing/orders/b.csv.gz: cannot read as "
        "gzip-compressed CSV:"
    ) in text
    assert (
        "note: orders: landing/orders/b.csv.gz cannot be read at all: rejected, not read again "
        "until its content or the read settings of 'orders' change (or `penstock batches retry "
        "orders orders-"
    ) in text

    code, listing = as_json(cli, "batches", "orders", "-p", project)
    assert code == 0
    loaded, rejected = listing["batches"]
    assert loaded["status"] == "loaded" and loaded["source_file"] == "landing/orders/a.csv.gz"
    assert rejected["status"] == "rejected"
    assert rejected["source_file"] == "landing/orders/b.csv.gz"
    assert rejected["reason"].startswith(
        "landing/orders/b.csv.gz: cannot read as gzip-compressed CSV:"
    )
    assert rejected["rows"] is None and rejected["rows_malformed"] is None
    assert rejected["content_hash"] and rejected["batch_id"].endswith(rejected["content_hash"][:20])
    assert rejected["rejected_run_id"] and rejected["extracted_at"]
    assert rejected["read_again"] is False
    batch = rejected["batch_id"]

    code, out, err = cli("batches", "orders", "-p", project)
    assert code == 0
    assert "Staged batches of orders (in load order), then rejected files" in flat(out)
    assert "rejected" in out and "Truncated compressed stream" in flat(out)
    assert f"penstock batches retry orders {batch}" in flat(err)

    rows = status_rows(cli, project)
    assert rows["orders"]["batches_rejected"] == 1 and rows["orders"]["last_status"] == "failed"
    assert rows["people"]["batches_rejected"] == 0 and rows["people"]["last_status"] == "success"
    code, out, _ = cli("status", "-p", project)
    assert code == 0 and "rejected" in out

    # the next run only warns: exit 0, the object's outcome is warning
    code, report = as_json(cli, "run", "-p", project)
    assert code == 0 and report["status"] == "warning"
    assert report["failures"] == []
    assert report["rejected"] == [
        {
            "object": "orders",
            "batch_id": batch,
            "source_file": "landing/orders/b.csv.gz",
            "reason": rejected["reason"],
            "new": False,
        }
    ]
    assert {o["object"]: o["status"] for o in report["objects"]} == {
        "orders": "warning",
        "people": "success",
    }
    rows = status_rows(cli, project)
    assert rows["orders"]["last_status"] == "warning" and rows["orders"]["batches_rejected"] == 1


def test_batches_retry_reads_the_file_again(tmp_path: Path, cli: Cli) -> None:
    project = damaged_project(tmp_path)
    assert cli("run", "-p", project)[0] == 1
    code, listing = as_json(cli, "batches", "orders", "-p", project)
    batch = listing["batches"][-1]["batch_id"]

    code, out, _ = cli(
        "batches", "retry", "orders", batch.removeprefix("orders-")[:6], "-p", project
    )
    assert code == 0
    assert (
        f"batch {batch} (landing/orders/b.csv.gz) is no longer rejected: the next run reads it "
        f"again (it was rejected for: landing/orders/b.csv.gz: cannot read as gzip-compressed"
    ) in flat(out)
    assert status_rows(cli, project)["orders"]["batches_rejected"] == 0
    code, listing = as_json(cli, "batches", "orders", "-p", project)
    assert [b["status"] for b in listing["batches"]] == ["loaded"]

    # same bytes: read again, rejected again (the run fails and says so)
    code, report = as_json(cli, "run", "-p", project)
    assert code == 1 and report["status"] == "failed"
    assert [(r["batch_id"], r["new"]) for r in report["rejected"]] == [(batch, True)]
    assert status_rows(cli, project)["orders"]["batches_rejected"] == 1

    # a corrected delivery replaces it: loaded, and the rejection is closed
    (project / "landing/orders/b.csv.gz").write_bytes(csv_gz(100, 3))
    code, report = as_json(cli, "run", "-p", project)
    assert code == 0 and report["status"] == "success" and report["rejected"] == []
    assert query(project, "SELECT id FROM orders ORDER BY id") == [
        (1,),
        (2,),
        (100,),
        (101,),
        (102,),
    ]
    assert status_rows(cli, project)["orders"]["batches_rejected"] == 0


def test_batches_retry_json_and_usage_errors(tmp_path: Path, cli: Cli) -> None:
    project = damaged_project(tmp_path)
    assert cli("run", "-p", project)[0] == 1
    code, listing = as_json(cli, "batches", "orders", "-p", project)
    loaded, rejected = (b["batch_id"] for b in listing["batches"])

    code, _, err = cli("batches", "retry", "orders", loaded, "-p", project)
    assert code == 2
    assert (
        f"batch {loaded} (landing/orders/a.csv.gz) of 'orders' is loaded, not rejected: only a "
        f"rejected file can be retried"
    ) in flat(err)
    code, _, err = cli("batches", "retry", "orders", "zzz", "-p", project)
    assert code == 2
    assert "object 'orders' has no rejected batch whose id starts with 'zzz'" in flat(err)
    code, _, err = cli("batches", "retry", "orders", rejected, "--reason", "x", "-p", project)
    assert code == 2 and "--reason goes with skip only" in err
    code, _, err = cli("batches", "retry", "nope", rejected, "-p", project)
    assert code == 2 and "unknown object 'nope'" in err
    code, _, err = cli("batches", "retry", "orders", "-p", project)
    assert code == 2 and "penstock batches retry OBJECT BATCH" in flat(err)

    code, report = as_json(cli, "batches", "retry", "orders", rejected, "-p", project)
    assert code == 0
    assert report["object"] == "orders" and report["action"] == "retry"
    assert report["batch"]["batch_id"] == rejected and report["batch"]["status"] == "pending"
    assert report["batch"]["reason"].startswith("landing/orders/b.csv.gz: cannot read as")
    # taken back already: a second retry finds no rejected batch
    code, _, err = cli("batches", "retry", "orders", rejected, "-p", project)
    assert code == 2 and "has no rejected batch" in flat(err)


def test_status_reads_a_store_from_before_rejected_counts(tmp_path: Path, cli: Cli) -> None:
    project = damaged_project(tmp_path)
    assert cli("run", "-p", project)[0] == 1
    store = project / ".penstock" / "metadata.db"
    with sqlite3.connect(store) as conn:
        conn.execute("ALTER TABLE object_counts DROP COLUMN batches_rejected")
    rows = status_rows(cli, project)
    assert rows["orders"]["batches_rejected"] == 0 and rows["orders"]["rows"] == 2
    # the next run adds the column back and counts
    assert cli("run", "-p", project)[0] == 0
    assert status_rows(cli, project)["orders"]["batches_rejected"] == 1
