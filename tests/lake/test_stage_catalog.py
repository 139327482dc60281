"""The stage catalog (`<lake>/index/<object>.batches.json`) is a cache of the batches'
manifests and skip markers: every command sees what the batch directories hold, whether the
catalog is there, stale, damaged or gone; only a command holding the warehouse lock writes it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import penstock
from penstock import load_project
from penstock.engine.batches import skip_batch, unskip_batch
from penstock.lake import Lake, Manifest, StagedBatch
from penstock.lake import stage as stage_module
from penstock.lake.skip import SKIP_NAME, SkipMarker
from penstock.lake.stage import manifest_state
from penstock.lake.stage_catalog import catalog_path

from helpers import orders_project, query, write_project

PROJECT = orders_project("catalog")


def _view(batches: list[StagedBatch]) -> list[tuple[object, ...]]:
    """What a command takes from the batches: directory, manifest and skip marker."""
    return [(b.directory, b.manifest, b.skip) for b in batches]


def _from_files(lake_root: Path) -> list[tuple[object, ...]]:
    """The batches as their own files hold them (no catalog)."""
    path = catalog_path(lake_root, "orders")
    saved = path.read_bytes() if path.exists() else None
    path.unlink(missing_ok=True)
    try:
        return _view(Lake(lake_root).batches("orders"))
    finally:
        if saved is not None:
            path.write_bytes(saved)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    files = {f"landing/orders/o{i}.csv": f"id,qty\n{i},{i}\n{i + 10},x\n" for i in range(3)}
    root = write_project(tmp_path / "p", PROJECT, files)
    assert penstock.run(str(root)).status == "success"
    # the catalog is written by the next command that lists the batches holding the lock
    assert not catalog_path(root / "lake", "orders").exists()
    assert penstock.run(str(root)).status == "success"
    return root


def test_a_run_writes_the_catalog_and_a_reader_gets_the_same_batches(project: Path) -> None:
    lake_root = project / "lake"
    path = catalog_path(lake_root, "orders")
    assert path.is_file()
    data = json.loads(path.read_text())
    assert data["object"] == "orders" and len(data["batches"]) == 3
    # the column list, the schema and the CSV read are stored once for the three batches
    assert sorted(key for key, _ in data["shared"]) == [
        "columns",
        "csv_read",
        "schema",
        "warnings",
        "window",
    ]
    read = Lake(lake_root).batches("orders")
    assert [b.manifest.source_file for b in read] == [f"landing/orders/o{i}.csv" for i in range(3)]
    assert _view(read) == _from_files(lake_root)
    # a reader without the warehouse lock never writes it
    path.unlink()
    assert _view(Lake(lake_root).batches("orders")) == _from_files(lake_root)
    assert not path.exists()


def test_batches_staged_later_are_read_from_their_files_and_added(project: Path) -> None:
    path = catalog_path(project / "lake", "orders")
    before = json.loads(path.read_text())["batches"]
    (project / "landing/orders/o9.csv").write_text("id,qty\n9,9\n")
    assert penstock.run(str(project)).status == "success"
    assert penstock.run(str(project)).status == "success"  # nothing new: read from the catalog
    after = json.loads(path.read_text())["batches"]
    assert len(after) == 4
    assert [row for row in after if row in before] == before  # kept as they were written
    assert _view(Lake(project / "lake").batches("orders")) == _from_files(project / "lake")
    assert query(project, "SELECT count(*) FROM orders") == [(4,)]


def test_skip_and_unskip_are_seen_at_once(project: Path) -> None:
    from penstock.engine.session import Session

    proj = load_project(project)
    lake_root = project / "lake"
    with Session(proj, record_catalog=False) as session:
        batch = session.lake.batches("orders")[2]  # cataloged as it is
        marker = SkipMarker(reason="a test", by="me", at=batch.manifest.extracted_at)
        session.lake.skip_batch(batch, marker)
        (skipped,) = [b for b in Lake(lake_root).batches("orders") if b.skip is not None]
        assert (skipped.batch_id, skipped.skip) == (batch.batch_id, marker)
        assert [b.skip for b in session.lake.batches("orders")] == [None, None, marker]
    rows = json.loads(catalog_path(lake_root, "orders").read_text())["batches"]
    assert [row[2] for row in rows if row[0] == batch.directory.name] == [marker.to_dict()]
    with Session(proj, record_catalog=False) as session:
        session.lake.unskip_batch(session.lake.batches("orders")[2])
        assert not [b for b in Lake(lake_root).batches("orders") if b.skip]
    assert _view(Lake(lake_root).batches("orders")) == _from_files(lake_root)


def test_the_batch_commands_skip_through_the_catalog(tmp_path: Path) -> None:
    yml = PROJECT.replace("load: merge", "load: merge\n    on_invalid: fail")
    root = write_project(tmp_path / "p", yml, {"landing/orders/a.csv": "id,qty\n1,1\n"})
    assert penstock.run(str(root)).status == "success"
    (root / "landing/orders/b.csv").write_text("id,qty\n2,-1\n")
    assert penstock.run(str(root)).status == "failed"  # b is staged, not loaded
    assert catalog_path(root / "lake", "orders").is_file()
    proj = load_project(root)
    (failed,) = [
        b for b in Lake(root / "lake").batches("orders") if "b.csv" in b.manifest.source_file
    ]
    skip_batch(proj, "orders", failed.batch_id, "bad quantity")
    assert penstock.run(str(root)).status == "success"  # the skip is honoured
    assert [b.skip.reason for b in Lake(root / "lake").batches("orders") if b.skip] == [
        "bad quantity"
    ]
    unskip_batch(proj, "orders", failed.batch_id)
    assert penstock.run(str(root)).status == "failed"  # it is pending again
    assert query(root, "SELECT id FROM orders") == [(1,)]


def test_a_batch_directory_changed_by_hand_is_read_again(project: Path) -> None:
    lake_root = project / "lake"
    lake = Lake(lake_root)
    batch = lake.batches("orders")[1]
    # its directory as old as can be, then cataloged (a run holding the lock writes it)
    os.utime(batch.directory, ns=(0, 0))
    catalog_path(lake_root, "orders").unlink()
    assert penstock.run(str(project)).status == "success"
    marker = SkipMarker(reason="by hand", by="someone", at=batch.manifest.extracted_at)
    (batch.directory / SKIP_NAME).write_text(json.dumps(marker.to_dict()))
    (again,) = [b for b in Lake(lake_root).batches("orders") if b.batch_id == batch.batch_id]
    assert again.skip == marker
    assert _view(Lake(lake_root).batches("orders")) == _from_files(lake_root)


def test_a_deleted_batch_directory_is_gone_from_the_catalog_too(project: Path) -> None:
    lake_root = project / "lake"
    gone = Lake(lake_root).batches("orders")[0]
    shutil.rmtree(gone.directory)
    assert gone.batch_id not in [b.batch_id for b in Lake(lake_root).batches("orders")]
    assert penstock.run(str(project)).status == "success"  # catalogs the two, stages it again
    rows = json.loads(catalog_path(lake_root, "orders").read_text())["batches"]
    assert len(rows) == 2 and gone.directory.name not in [row[0] for row in rows]
    assert penstock.run(str(project)).status == "success"
    rows = json.loads(catalog_path(lake_root, "orders").read_text())["batches"]
    assert len(rows) == 3 and gone.directory.name in [row[0] for row in rows]
    assert _view(Lake(lake_root).batches("orders")) == _from_files(lake_root)


@pytest.mark.parametrize(
    "damage",
    [b"", b"\0" * 4096, b'{"version": 1, "object": "orders", "batches": [', b"not json"],
    ids=["empty", "zeros", "cut", "text"],
)
def test_a_damaged_catalog_is_ignored_and_written_again(project: Path, damage: bytes) -> None:
    lake_root = project / "lake"
    expected = _from_files(lake_root)
    path = catalog_path(lake_root, "orders")
    path.write_bytes(damage)
    assert _view(Lake(lake_root).batches("orders")) == expected
    assert path.read_bytes() == damage  # a reader leaves it
    assert penstock.run(str(project)).status == "success"
    assert json.loads(path.read_text())["object"] == "orders"
    assert _view(Lake(lake_root).batches("orders")) == expected


@pytest.mark.parametrize("change", ["one_fewer", "renamed"])
def test_a_catalog_of_other_manifest_fields_is_ignored(project: Path, change: str) -> None:
    lake_root = project / "lake"
    path = catalog_path(lake_root, "orders")
    data = json.loads(path.read_text())
    fields = data["fields"]
    if change == "one_fewer":
        data["fields"] = fields[:-1]
    else:  # as many fields, two of them in each other's place: rows of another version
        a, b = fields.index("source"), fields.index("source_file")
        fields[a], fields[b] = fields[b], fields[a]
    # rows that would give every batch another source file, if they were taken
    for row in data["batches"]:
        row[3][data["fields"].index("source_file")] = "elsewhere.csv"
    path.write_text(json.dumps(data))
    assert _view(Lake(lake_root).batches("orders")) == _from_files(lake_root)


def test_a_restaged_batch_is_read_anew(project: Path) -> None:
    from penstock.engine.session import Session

    proj = load_project(project)
    with Session(proj, record_catalog=False) as session:
        assert session.lake.keep_catalog
        before = session.lake.batches("orders")
    result = penstock.rebuild(str(project), restage=True)
    assert result.status == "success"
    after = Lake(project / "lake").batches("orders")
    assert [b.batch_id for b in after] == [b.batch_id for b in before]
    assert all(b.manifest.restaged_at is not None for b in after)
    assert _view(after) == _from_files(project / "lake")


def test_the_temp_sweep_leaves_batch_directories_alone_until_their_next_skip(
    project: Path,
) -> None:
    lake_root = project / "lake"
    lake = Lake(lake_root)
    batch = lake.batches("orders")[0]
    left = {
        "in_batch": batch.directory / ".tmp-123-skipped.json",
        "staging": lake.stage_dir("orders") / ".tmp-123-abc",
        "index": lake_root / "index" / ".tmp-123-orders.json",
        "quarantine": lake.quarantine_dir("orders") / ".tmp-123-q.parquet",
    }
    for name, path in left.items():
        if name == "staging":
            path.mkdir()
            (path / "data.csv").write_text("id\n1\n")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{")
    assert penstock.run(str(project)).status == "success"  # its session sweeps the temps
    assert [n for n, p in left.items() if p.exists()] == ["in_batch"]
    assert _view(Lake(lake_root).batches("orders")) == _from_files(lake_root)
    marker = SkipMarker(reason="r", by="b", at=batch.manifest.extracted_at)
    lake.skip_batch(batch, marker)
    assert not left["in_batch"].exists()
    assert sorted(p.name for p in batch.directory.iterdir() if p.name.startswith(".")) == []


def test_the_file_index_is_written_only_when_it_changes(project: Path) -> None:
    lake_root = project / "lake"
    path = Lake(lake_root).file_index_path("orders")
    stamp = path.stat().st_mtime_ns, path.stat().st_ino
    assert penstock.run(str(project)).status == "success"
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp
    lake = Lake(lake_root)
    assert lake.read_file_index("orders") == []  # the manifests record the three files' states
    staged = lake.batches("orders")
    # states no manifest records: the same files as they would be after a touch
    seen = [replace(manifest_state(b), mtime_ns=b.manifest.mtime_ns + 1) for b in staged]
    lake.write_file_index("orders", [manifest_state(b) for b in staged], staged)
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp  # nothing to keep: no write
    lake.write_file_index("orders", seen, staged)
    assert Lake(lake_root).read_file_index("orders") == seen
    stamp = path.stat().st_mtime_ns, path.stat().st_ino
    lake.write_file_index("orders", reversed(seen), staged)  # the same entries: nothing written
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp
    lake.write_file_index("orders", seen[:2], staged)
    assert Lake(lake_root).read_file_index("orders") == seen[:2]


def _manifest(batch_id: str, n: int, schema: dict[str, str]) -> Manifest:
    return Manifest(
        batch_id=batch_id,
        object="orders",
        source="landing",
        source_file=f"landing/orders/f{n:03d}.csv",
        content_hash=f"{n:064x}",
        size_bytes=10 + n,
        mtime_ns=1_000_000 + n,
        format="csv",
        rows=n % 7,
        rows_malformed=n % 2,
        columns=tuple(schema),
        schema=dict(schema),
        extracted_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=n),
        ctime_ns=2_000_000 + n,
        inode=n,
        data_file="data.csv",
        warnings=("a warning",) if n % 5 == 0 else (),
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("coarse", [False, True], ids=["stat", "coarse_clock"])
def test_any_sequence_of_changes_reads_as_the_files_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, coarse: bool
) -> None:
    """Batches staged, skipped, unskipped, restaged, deleted or changed by hand, and the
    catalog damaged, in a random order: a command holding the lock (which writes the
    catalog) and one that does not both read exactly what the batch directories hold.
    `coarse_clock`: a file system whose times never move (a change within one tick of its
    clock), where only the catalog's being dropped before a change keeps it right; changes by
    hand are then left out (they are seen by the directory's times alone)."""
    if coarse:
        monkeypatch.setattr(stage_module, "dir_stamp", lambda entry: (entry.inode(), 0, 0))
    rng = random.Random(seed)
    root = tmp_path / "lake"
    writer = Lake(root)
    writer.keep_catalog = True
    schemas = [{"id": "VARCHAR"}, {"id": "VARCHAR", "qty": "VARCHAR"}]
    made = 0
    for _ in range(60):
        ops = ["stage", "stage", "skip", "unskip", "restage", "delete", "damage"]
        op = rng.choice(ops if coarse else [*ops, "hand", "hand"])
        batches = writer.batches("orders")
        if op == "stage" or not batches:
            staged = []
            for _ in range(rng.randint(1, 4)):
                made += 1
                staging = writer.staging_dir("orders")
                (staging / "data.csv").write_text("id\n1\n")
                staged.append((staging, _manifest(f"orders-{made:04d}", made, schemas[made % 2])))
            writer.commit_batches(staged)
        elif op == "skip":
            batch = rng.choice(batches)
            marker = SkipMarker(reason=f"r{made}", by="t", at=batch.manifest.extracted_at)
            writer.skip_batch(batch, marker)
        elif op == "unskip":
            writer.unskip_batch(rng.choice(batches))
        elif op == "restage":
            old = rng.choice(batches)
            staging = writer.staging_dir("orders")
            (staging / "data.csv").write_text("id\n2\n")
            parse = replace(
                old.manifest, rows=old.manifest.rows + 1, schema=dict(schemas[rng.randint(0, 1)])
            )
            writer.replace_batch(old, StagedBatch(parse, staging))
        elif op == "delete":
            shutil.rmtree(rng.choice(batches).directory)
        elif op == "hand":  # a marker written or removed by hand, the directory's times moved
            batch = rng.choice(batches)
            marker_path = batch.directory / SKIP_NAME
            if marker_path.exists():
                marker_path.unlink()
            else:
                marker = SkipMarker(reason="hand", by="h", at=batch.manifest.extracted_at)
                marker_path.write_text(json.dumps(marker.to_dict()))
            made += 1
            os.utime(batch.directory, ns=(made * 10**9, made * 10**9))
        else:
            path = catalog_path(root, "orders")
            if path.exists():
                data = path.read_bytes()
                path.write_bytes(data[: rng.randint(0, len(data))])
        expected = _from_files(root)
        assert _view(Lake(root).batches("orders")) == expected, op
        assert _view(writer.batches("orders")) == expected, op
        assert _view(writer.batches("orders")) == expected, op  # from the catalog just written
