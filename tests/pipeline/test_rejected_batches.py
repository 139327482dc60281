"""A landing file that cannot be read at all is a `rejected` batch, recorded once.

The run that first meets it fails naming it, while the object's other files load; later runs
do not read it again and end `success` with a warning (the object's outcome is `warning`),
until its content changes (a new attempt), the object's read settings change (read again with
them), or `penstock batches retry` asks for it. The landing file is never touched; rebuilds do
not see it (it was never staged).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import penstock
from penstock import load_project
from penstock.engine.batches import list_batches, retry_batch
from penstock.engine.results import RejectedFile
from penstock.lake import Lake
from penstock.lake.rejected import Rejection
from penstock.observe import MetadataStore
from penstock.sources import batch_id_for, source_for

from helpers import log_messages, query, write_project

YML = """
name: damaged
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
"""


def csv_gz(first: int, count: int) -> bytes:
    body = "id,qty\n" + "".join(f"{i},{i % 7}\n" for i in range(first, first + count))
    return gzip.compress(body.encode(), mtime=0)


def truncated(first: int, count: int) -> bytes:
    packed = csv_gz(first, count)
    return packed[: len(packed) // 2]


def ids(project: Path) -> list[int]:
    return [r[0] for r in query(project, "SELECT id FROM orders ORDER BY id")]


def records(project: Path, obj: str = "orders") -> list[dict[str, object]]:
    directory = project / "lake" / "rejected" / obj
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def steps(project: Path, run_id: str) -> list[tuple[str, str, str | None]]:
    with MetadataStore(load_project(project).metadata_url) as store:
        return [(s.step, s.status, s.batch_id) for s in store.steps(run_id)]


def object_status(project: Path) -> str | None:
    with MetadataStore(load_project(project).metadata_url) as store:
        return store.object_status(["orders"])["orders"].last_status


@pytest.fixture
def rejected(tmp_path: Path) -> tuple[Path, bytes]:
    """a.csv.gz and c.csv.gz load; b.csv.gz (cut short in transfer) is rejected."""
    bad = truncated(100, 4000)
    project = write_project(
        tmp_path,
        YML,
        {
            "landing/orders/a.csv.gz": csv_gz(1, 3),
            "landing/orders/b.csv.gz": bad,
            "landing/orders/c.csv.gz": csv_gz(10, 2),
        },
    )
    return project, bad


def test_the_first_run_fails_naming_the_file_and_loads_the_others(
    rejected: tuple[Path, bytes],
) -> None:
    project, bad = rejected
    result = penstock.run(project)
    assert result.status == "failed"
    (failure,) = result.failures
    assert failure.step == "stage" and failure.source_file == "landing/orders/b.csv.gz"
    assert str(failure.error).startswith(
        "landing/orders/b.csv.gz: cannot read as gzip-compressed CSV: "
    )
    # the other files loaded: a rejected file is not a batch, it holds nothing back
    assert ids(project) == [1, 2, 3, 10, 11]
    assert result.rejected == [
        RejectedFile("orders", failure.batch_id or "", failure.source_file, failure.error, True)
    ]

    # recorded once, in the lake, with its reason and content hash; never staged
    (record,) = records(project)
    digest = hashlib.sha256(bad).hexdigest()
    assert record["batch_id"] == failure.batch_id == f"orders-{digest[:20]}"
    assert record["content_hash"] == digest
    assert record["source_file"] == "landing/orders/b.csv.gz"
    assert record["size_bytes"] == len(bad)
    assert record["reason"] == failure.error
    assert record["run_id"] == result.run_id
    assert record["format"] == "csv"
    assert not (project / "lake" / "stage" / "orders" / str(failure.batch_id)).exists()
    assert (project / "landing" / "orders" / "b.csv.gz").read_bytes() == bad  # untouched

    # the metadata store has the failed stage step with the batch id, and the logs say why
    assert ("stage", "failed", failure.batch_id) in steps(project, result.run_id)
    messages = log_messages(project, result.run_id)
    assert failure.error in messages
    assert (
        "landing/orders/b.csv.gz cannot be read at all: rejected, not read again until its "
        "content or the read settings of 'orders' change (or `penstock batches retry orders "
        f"{failure.batch_id}`); the object's other files load"
    ) in messages
    assert object_status(project) == "failed"


def test_later_runs_do_not_read_it_again_and_succeed_with_a_warning(
    rejected: tuple[Path, bytes],
) -> None:
    project, bad = rejected
    first = penstock.run(project)
    (record,) = records(project)

    again = penstock.run(project)
    assert again.status == "success" and again.outcome == "warning"
    assert again.failures == []
    (met,) = again.rejected
    assert (met.batch_id, met.source_file, met.new) == (
        record["batch_id"],
        "landing/orders/b.csv.gz",
        False,
    )
    assert met.reason == record["reason"]
    # not read: no stage step at all (the file's state is known), and the record is as it was
    assert [s for s in steps(project, again.run_id) if s[0] == "stage"] == []
    assert records(project) == [record]
    warning = next(m for m in log_messages(project, again.run_id) if "rejected earlier, not" in m)
    assert warning == (
        "orders: 1 file(s) rejected earlier, not read again until their content or the read "
        f"settings of 'orders' change (or `penstock batches retry orders {record['batch_id']}`): "
        f"{record['reason']}"
    )
    assert again.notes == [
        "orders: 1 file(s) rejected earlier, not read again (reasons: penstock batches orders)"
    ]
    assert object_status(project) == "warning"

    # a new file still loads; the rejected one still only warns
    (project / "landing" / "orders" / "d.csv.gz").write_bytes(csv_gz(20, 1))
    third = penstock.run(project)
    assert third.status == "success" and third.outcome == "warning"
    assert [o.source_file for o in third.loads()] == ["landing/orders/d.csv.gz"]
    assert ids(project) == [1, 2, 3, 10, 11, 20]
    assert first.run_id != again.run_id != third.run_id
    assert (project / "landing" / "orders" / "b.csv.gz").read_bytes() == bad


def test_the_same_content_under_another_name_is_recognised(rejected: tuple[Path, bytes]) -> None:
    project, bad = rejected
    penstock.run(project)
    (record,) = records(project)
    (project / "landing" / "orders" / "b-resent.csv.gz").write_bytes(bad)
    result = penstock.run(project)
    assert result.status == "success" and result.outcome == "warning"
    assert sorted(r.source_file for r in result.rejected) == [
        "landing/orders/b-resent.csv.gz",
        "landing/orders/b.csv.gz",
    ]
    resent = next(r for r in result.rejected if r.source_file.endswith("b-resent.csv.gz"))
    assert resent.reason.startswith("landing/orders/b-resent.csv.gz: cannot read as gzip")
    # read once to hash it, not parsed: its stage step warns, nothing new is recorded
    assert [s for s in steps(project, result.run_id) if s[0] == "stage"] == [
        ("stage", "warning", record["batch_id"])
    ]
    assert records(project) == [record]
    # from now on its state is known too: not read at all
    later = penstock.run(project)
    assert [s for s in steps(project, later.run_id) if s[0] == "stage"] == []
    assert len(later.rejected) == 2 and later.outcome == "warning"


def test_new_content_is_a_new_attempt_and_closes_the_rejection(
    rejected: tuple[Path, bytes],
) -> None:
    project, _ = rejected
    penstock.run(project)
    (project / "landing" / "orders" / "b.csv.gz").write_bytes(csv_gz(100, 5))  # resent whole
    result = penstock.run(project)
    assert result.status == "success" and result.outcome == "success"
    assert [o.source_file for o in result.loads()] == ["landing/orders/b.csv.gz"]
    assert ids(project) == [1, 2, 3, 10, 11, 100, 101, 102, 103, 104]
    assert records(project) == []  # no landing file holds the rejected content any more
    assert any(
        "is no longer in the landing zone; its rejection is closed" in m
        for m in log_messages(project, result.run_id)
    )
    statuses = {
        b.source_file: b.status for b in list_batches(load_project(project), "orders").batches
    }
    assert statuses == {
        "landing/orders/a.csv.gz": "loaded",
        "landing/orders/b.csv.gz": "loaded",
        "landing/orders/c.csv.gz": "loaded",
    }


def test_a_removed_rejected_file_stops_the_warnings(rejected: tuple[Path, bytes]) -> None:
    project, _ = rejected
    penstock.run(project)
    (project / "landing" / "orders" / "b.csv.gz").unlink()
    result = penstock.run(project)
    assert result.status == "success" and result.outcome == "success"
    assert result.rejected == [] and records(project) == []


def test_retry_reads_the_file_again(rejected: tuple[Path, bytes]) -> None:
    project, bad = rejected
    first = penstock.run(project)
    (record,) = records(project)
    proj = load_project(project)
    state = retry_batch(proj, "orders", str(record["batch_id"])[len("orders-") :][:6])
    assert state.batch_id == record["batch_id"] and state.status == "pending"
    assert state.reason == record["reason"]
    assert records(project) == []
    with MetadataStore(proj.metadata_url) as store:
        decision = store.batch_decisions("orders")[state.batch_id]
    assert decision.action == "retry" and decision.reason == record["reason"]

    # the bytes are the same: the next run reads them, and rejects them again, anew
    again = penstock.run(project)
    assert again.status == "failed"
    assert [f.source_file for f in again.failures] == ["landing/orders/b.csv.gz"]
    (anew,) = records(project)
    assert anew["run_id"] == again.run_id != first.run_id
    assert anew["content_hash"] == record["content_hash"]
    assert ids(project) == [1, 2, 3, 10, 11]
    assert (project / "landing" / "orders" / "b.csv.gz").read_bytes() == bad


def test_retry_loads_a_file_this_penstock_can_read(tmp_path: Path) -> None:
    """A rejection recorded for bytes that read now (say, by an older penstock that could not
    read them): runs leave the file alone until the retry; then it loads."""
    project = write_project(tmp_path, YML, {"landing/orders/a.csv.gz": csv_gz(1, 2)})
    proj = load_project(project)
    obj = proj.objects["orders"]
    path = project / "landing" / "orders" / "a.csv.gz"
    stat, digest = path.stat(), hashlib.sha256(path.read_bytes()).hexdigest()
    lake = Lake(proj.lake_path)
    lake.reject(
        Rejection(
            batch_id=batch_id_for("orders", digest),
            object="orders",
            source="landing",
            source_file="landing/orders/a.csv.gz",
            content_hash=digest,
            size_bytes=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            ctime_ns=stat.st_ctime_ns,
            inode=stat.st_ino,
            format="csv",
            reason="landing/orders/a.csv.gz: cannot read as gzip-compressed CSV: (older penstock)",
            line=None,
            read_settings=source_for(proj, obj).read_settings(obj),
            rejected_at=datetime.now(UTC),
        )
    )
    held = penstock.run(project)
    assert held.status == "success" and held.outcome == "warning"
    assert query(project, "SELECT count(*) FROM penstock.loads") == [(0,)]
    retry_batch(proj, "orders", batch_id_for("orders", digest))
    result = penstock.run(project)
    assert result.status == "success" and result.outcome == "success"
    assert ids(project) == [1, 2]
    assert lake.rejections("orders") == []


LATIN = """
name: encodings
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "people/*.csv"
    key: [id]
    columns:
      id:   {type: bigint, required: true}
      name: {type: text}
"""


def test_fixing_the_read_settings_reads_a_rejected_file_again(tmp_path: Path) -> None:
    text = "id,name\n1,Zoë\n2,José\n3,Łukasz\n".encode()
    latin = "id,name\n4,Chloé\n5,Gaël\n6,Inès\n".encode("latin-1")
    project = write_project(
        tmp_path, LATIN, {"landing/people/a.csv": text, "landing/people/b.csv": latin}
    )
    first = penstock.run(project)
    assert first.status == "failed"
    assert [f.source_file for f in first.failures] == ["landing/people/b.csv"]
    assert str(first.failures[0].error).startswith("landing/people/b.csv:2: not valid utf-8 text")
    assert query(project, "SELECT id, name FROM people ORDER BY id") == [
        (1, "Zoë"),
        (2, "José"),
        (3, "Łukasz"),
    ]
    (record,) = records(project, "people")
    assert record["line"] == 2
    assert penstock.run(project).outcome == "warning"  # same settings: not read again

    # the setting the error names: the next run reads b.csv again (a.csv stays as loaded)
    yml = LATIN.replace("    key: [id]\n", "    key: [id]\n    csv: {encoding: latin-1}\n")
    (project / "penstock.yml").write_text(yml)
    fixed = penstock.run(project)
    assert fixed.status == "success" and fixed.outcome == "success"
    assert [o.source_file for o in fixed.loads()] == ["landing/people/b.csv"]
    assert query(project, "SELECT id, name FROM people WHERE id >= 4 ORDER BY id") == [
        (4, "Chloé"),
        (5, "Gaël"),
        (6, "Inès"),
    ]
    assert records(project, "people") == []
    messages = log_messages(project, fixed.run_id)
    assert (
        "landing/people/b.csv was rejected under other read settings of 'people'; read again "
        "with the current ones"
    ) in messages


def test_a_still_wrong_setting_rejects_it_again_under_the_new_settings(tmp_path: Path) -> None:
    utf16 = "id,name\n1,Zoë\n".encode("utf-16")
    project = write_project(tmp_path, LATIN, {"landing/people/a.csv": utf16})
    assert penstock.run(project).status == "failed"
    (before,) = records(project, "people")
    yml = LATIN.replace("    key: [id]\n", "    key: [id]\n    csv: {header: false}\n")
    (project / "penstock.yml").write_text(yml)
    result = penstock.run(project)  # read again with the new settings: still not utf-8
    assert result.status == "failed"
    (after,) = records(project, "people")
    assert after["read_settings"] != before["read_settings"]
    assert after["run_id"] == result.run_id
    assert penstock.run(project).outcome == "warning"


def zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return bytes(sink.getvalue().to_pybytes())


KINDS = """
name: kinds
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.GLOB"
    FORMAT
    columns:
      id: {type: bigint, required: true}
"""


@pytest.mark.parametrize(
    ("glob", "fmt", "good", "bad", "says"),
    [
        (
            "jsonl.zst",
            "",
            zstd(b'{"id": 1}\n'),
            zstd(b"".join(b'{"id": %d}\n' % i for i in range(2, 5000)))[:-40],
            "cannot read as zstd-compressed JSON Lines: ",
        ),
        ("parquet", "", None, b"PAR1 this is not a parquet file", "cannot read as Parquet: "),
        ("json", "format: json", b'[{"id": 1}]', b'{"id": 2}\n{"id": 3}\n', "not a JSON array"),
        (
            "csv.gz",
            "",
            gzip.compress(b"id\n1\n", mtime=0),  # the same bytes (and test id) in every worker
            b"\x1f\x8b\x08\x00 not gzip inside",
            "cannot read as gzip-compressed CSV: ",
        ),
    ],
    ids=["jsonl.zst", "parquet", "json", "csv.gz"],  # not the bytes: workers must agree
)
def test_each_kind_of_unreadable_file_is_rejected_once(
    tmp_path: Path, glob: str, fmt: str, good: bytes | None, bad: bytes, says: str
) -> None:
    if good is None:  # a real Parquet file
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table({"id": [1]}), sink)
        good = bytes(sink.getvalue().to_pybytes())
    yml = KINDS.replace("GLOB", glob).replace("FORMAT", fmt or "group: default")
    project = write_project(
        tmp_path, yml, {f"landing/items/a.{glob}": good, f"landing/items/b.{glob}": bad}
    )
    first = penstock.run(project)
    assert first.status == "failed"
    (failure,) = first.failures
    assert failure.source_file == f"landing/items/b.{glob}" and says in str(failure.error)
    assert query(project, "SELECT id FROM items") == [(1,)]
    assert [r.new for r in first.rejected] == [True]
    later = penstock.run(project)
    assert later.status == "success" and later.outcome == "warning"
    assert [(r.source_file, r.new) for r in later.rejected] == [(f"landing/items/b.{glob}", False)]


def test_rebuilds_do_not_see_rejected_files(rejected: tuple[Path, bytes]) -> None:
    project, _ = rejected
    penstock.run(project)
    (record,) = records(project)
    before = query(project, "SELECT id, qty, _batch_id FROM orders ORDER BY id")
    for restage in (False, True):
        result = penstock.rebuild(project, restage=restage)
        assert result.status == "success" and result.failures == []
        assert query(project, "SELECT id, qty, _batch_id FROM orders ORDER BY id") == before
        assert records(project) == [record]


def test_load_replace_rejects_a_delivery(tmp_path: Path) -> None:
    """For `load: replace` a delivery (name, mtime, content) is the batch: the same bad bytes
    delivered again are a new attempt, and the table keeps the previous snapshot."""
    yml = YML.replace("load: merge", "load: replace")
    project = write_project(tmp_path, yml, {"landing/orders/day1.csv.gz": csv_gz(1, 2)})
    assert penstock.run(project).status == "success"
    bad = truncated(50, 4000)
    (project / "landing" / "orders" / "day2.csv.gz").write_bytes(bad)
    assert penstock.run(project).status == "failed"
    assert ids(project) == [1, 2]  # the previous snapshot stays
    (first,) = records(project)
    assert first["batch_id"] != f"orders-{first['content_hash'][:20]}"  # type: ignore[index]
    assert penstock.run(project).outcome == "warning"
    (project / "landing" / "orders" / "day3.csv.gz").write_bytes(bad)  # delivered again
    again = penstock.run(project)
    assert again.status == "failed"
    assert [f.source_file for f in again.failures] == ["landing/orders/day3.csv.gz"]
    assert len(records(project)) == 2 and ids(project) == [1, 2]


def test_two_files_with_the_same_bad_content_in_one_run_are_rejected_once(
    tmp_path: Path,
) -> None:
    bad = truncated(100, 4000)
    project = write_project(
        tmp_path,
        YML,
        {"landing/orders/b1.csv.gz": bad, "landing/orders/b2.csv.gz": bad},
    )
    result = penstock.run(project)
    assert result.status == "failed"
    assert [f.source_file for f in result.failures] == ["landing/orders/b1.csv.gz"]
    assert [(r.source_file, r.new) for r in result.rejected] == [
        ("landing/orders/b1.csv.gz", True),
        ("landing/orders/b2.csv.gz", False),
    ]
    assert len(records(project)) == 1
    later = penstock.run(project)
    assert later.outcome == "warning"
    assert sorted(r.source_file for r in later.rejected) == [
        "landing/orders/b1.csv.gz",
        "landing/orders/b2.csv.gz",
    ]
