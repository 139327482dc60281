"""`penstock rebuild --restage` parses the landing files of the staged batches again with the
objects' current settings, then replays: a fixed delimiter reaches files already staged.

Batch identity is kept (same id, extraction time and skip marker); a file that is gone or no
longer holds the batch's bytes replays as staged and is named; a file the new settings cannot
read leaves its object exactly as it was; objects not selected are not touched at all.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

import penstock
from penstock import load_project
from penstock.engine.batches import list_batches, skip_batch
from penstock.lake import Lake, StagedBatch
from penstock.sources import FilesSourceReader

from helpers import log_messages, query, write_project

YML = """
name: restage
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    load: merge
    CSV
    columns:
      id:     {type: integer, required: true}
      name:   {type: text}
      amount: {type: "decimal(10,2)", min: 0}
  people:
    source: landing
    files: "people/*.csv"
    columns:
      id:   {type: integer, required: true}
      city: {type: text}
"""

SEMICOLONS = {
    "landing/orders/a.csv": "id;name;amount\n1;ann;1.50\n2;bob;2.00\n",
    "landing/orders/b.csv": "id;name;amount\n2;bob;2.50\n3;cy;-1\n",
    "landing/people/p.csv": "id,city\n1,Oslo\n2,Pune\n",
}


def project_with(
    tmp_path: Path, csv: str = "", files: dict[str, str | bytes] | None = None
) -> Path:
    return write_project(tmp_path, YML.replace("CSV", csv), files or SEMICOLONS)


def set_csv(project: Path, csv: str) -> None:
    """Change the `orders` object's `csv:` line (the placeholder, or what it was set to)."""
    lines = (project / "penstock.yml").read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith("    load: merge"))
    if lines[index + 1].strip().startswith("csv:"):
        del lines[index + 1]
    lines.insert(index + 1, f"    {csv}\n")
    (project / "penstock.yml").write_text("".join(lines))


def batches(project: Path, name: str = "orders") -> dict[str, StagedBatch]:
    """The object's staged batches by source file."""
    return {b.manifest.source_file: b for b in Lake(project / "lake").batches(name)}


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under `directory`, byte for byte."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def lake_of(project: Path, name: str) -> dict[str, dict[str, bytes]]:
    lake = project / "lake"
    index = lake / "index" / f"{name}.json"
    return {
        "stage": tree(lake / "stage" / name),
        "quarantine": tree(lake / "quarantine" / name),
        "index": {"": index.read_bytes()} if index.exists() else {},
    }


def table_exists(project: Path, schema: str, table: str) -> bool:
    return bool(
        query(
            project,
            f"SELECT 1 FROM information_schema.tables "
            f"WHERE table_schema = '{schema}' AND table_name = '{table}'",
        )
    )


def quarantined(project: Path) -> list[tuple[Any, ...]]:
    if not table_exists(project, "quarantine", "orders"):
        return []
    return query(project, "SELECT _reasons, _row_number FROM quarantine.orders ORDER BY ALL")


def statuses(result: penstock.RunResult) -> dict[str, str]:
    assert result.restage is not None
    return {r.source_file: r.status for r in result.restage}


def test_a_fixed_delimiter_reaches_the_staged_files(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    assert penstock.run(project).status == "success"
    # read with ',' each line is one column named "id;name;amount": every row is quarantined
    assert query(project, "SELECT count(*) FROM orders") == [(0,)]
    assert len(quarantined(project)) == 4
    before = batches(project)
    assert before["landing/orders/a.csv"].manifest.columns == ("id;name;amount",)
    index = lake_of(project, "orders")["index"]

    set_csv(project, 'csv: {delimiter: ";"}')
    # the files are unchanged: a run has nothing to do, a plain rebuild replays the old parse
    assert penstock.run(project).loads() == []
    assert penstock.rebuild(project, "orders").status == "success"
    assert query(project, "SELECT count(*) FROM orders") == [(0,)]

    result = penstock.rebuild(project, "orders", restage=True)
    assert result.status == "success", [f.error for f in result.failures]
    assert statuses(result) == {
        "landing/orders/a.csv": "restaged",
        "landing/orders/b.csv": "restaged",
    }
    assert query(project, "SELECT id, name, amount::VARCHAR FROM orders ORDER BY id") == [
        (1, "ann", "1.50"),
        (2, "bob", "2.50"),  # b.csv's correction wins, as in a run
    ]
    assert quarantined(project) == [(["min:amount"], 2)]  # b.csv's second record
    after = batches(project)
    for name, old in before.items():
        new = after[name]
        # the batch keeps what belongs to it; the parse is new
        assert new.batch_id == old.batch_id
        assert new.manifest.extracted_at == old.manifest.extracted_at
        assert new.manifest.content_hash == old.manifest.content_hash
        assert new.manifest.columns == ("id", "name", "amount")
        assert new.manifest.restaged_at is not None
        assert new.manifest.restaged_at > old.manifest.extracted_at
        assert old.manifest.restaged_at is None
    # the lake's quarantine file of a.csv came from its old parse: gone with it
    a_id = after["landing/orders/a.csv"].batch_id
    assert not (project / "lake" / "quarantine" / "orders" / f"{a_id}.parquet").exists()
    assert lake_of(project, "orders")["index"] == index  # the batch ids it names still hold
    assert list((project / "lake").rglob(".tmp-*")) == []
    assert list((project / "lake").rglob(".replaced-*")) == []
    messages = log_messages(project, result.run_id)
    assert (
        "parsed landing/orders/a.csv again: 3 column(s), 2 record(s), 0 malformed "
        "(was 1 column(s), 2 record(s), 0 malformed)"
    ) in messages
    assert "orders: restaged 2 of 2 batch(es) with the current settings" in messages
    # nothing new for a run; a later plain rebuild replays the new parse
    assert penstock.run(project).loads() == []
    tables = query(project, "SELECT * FROM orders ORDER BY id")
    assert penstock.rebuild(project, "orders").status == "success"
    assert query(project, "SELECT * FROM orders ORDER BY id") == tables


def test_a_file_gone_from_landing_replays_as_staged_and_is_named(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    assert penstock.run(project).status == "success"
    gone = batches(project)["landing/orders/b.csv"]
    (project / "landing" / "orders" / "b.csv").unlink()
    set_csv(project, 'csv: {delimiter: ";"}')

    result = penstock.rebuild(project, "orders", restage=True)
    assert result.status == "success"
    assert statuses(result) == {"landing/orders/a.csv": "restaged", "landing/orders/b.csv": "gone"}
    assert result.restage is not None
    (entry,) = [r for r in result.restage if r.replayed_as_staged]
    assert (entry.object, entry.batch_id) == ("orders", gone.batch_id)
    # a.csv parsed anew; b.csv's batch replayed with its old (one-column) parse
    assert query(project, "SELECT id, name FROM orders ORDER BY id") == [(1, "ann"), (2, "bob")]
    assert [r[1] for r in quarantined(project)] == [1, 2]  # b.csv's records, required:id
    assert batches(project)["landing/orders/b.csv"].manifest == gone.manifest
    assert gone.batch_id in {r[0] for r in query(project, "SELECT batch_id FROM penstock.loads")}
    messages = log_messages(project, result.run_id)
    assert (
        f"landing/orders/b.csv: no longer in the landing zone; batch {gone.batch_id} keeps "
        f"the parse it was staged with"
    ) in messages
    assert (
        "orders: restaged 1 of 2 batch(es) with the current settings; 1 replay as staged: "
        "landing/orders/b.csv (no longer in the landing zone)"
    ) in messages


def test_objects_not_selected_are_left_alone_byte_for_byte(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    assert penstock.run(project).status == "success"
    people_lake = lake_of(project, "people")
    people_rows = query(project, "SELECT * FROM people ORDER BY ALL")
    people_loads = query(project, "SELECT * FROM penstock.loads WHERE object = 'people'")
    # people's landing file changes too: not selected, it must not even be looked at
    (project / "landing" / "people" / "p.csv").unlink()
    set_csv(project, 'csv: {delimiter: ";"}')

    result = penstock.rebuild(project, "orders", restage=True)
    assert result.status == "success"
    assert {r.object for r in result.restage or []} == {"orders"}
    assert {o.object for o in result.outcomes} == {"orders"}
    assert lake_of(project, "people") == people_lake
    assert query(project, "SELECT * FROM people ORDER BY ALL") == people_rows
    assert query(project, "SELECT * FROM penstock.loads WHERE object = 'people'") == people_loads
    assert query(project, "SELECT count(*) FROM orders") == [(2,)]


def test_without_select_every_object_is_restaged(tmp_path: Path) -> None:
    project = project_with(tmp_path)
    assert penstock.run(project).status == "success"
    set_csv(project, 'csv: {delimiter: ";"}')
    result = penstock.rebuild(project, restage=True)
    assert result.status == "success"
    assert statuses(result) == {
        "landing/orders/a.csv": "restaged",
        "landing/orders/b.csv": "restaged",
        "landing/people/p.csv": "restaged",
    }
    assert query(project, "SELECT count(*) FROM orders") == [(2,)]
    assert query(project, "SELECT id, city FROM people ORDER BY id") == [(1, "Oslo"), (2, "Pune")]


def test_a_changed_file_replays_as_staged_and_a_touched_one_is_restaged(tmp_path: Path) -> None:
    """Append, merge and scd2 batches are their content: a file rewritten with other bytes is
    another batch (a run stages it), one merely touched is still this one."""
    project = project_with(tmp_path)
    assert penstock.run(project).status == "success"
    before = batches(project)
    a, b = project / "landing" / "orders" / "a.csv", project / "landing" / "orders" / "b.csv"
    b.write_text("id;name;amount\n9;zed;9.00\n")
    later = time.time_ns() + 10**9
    os.utime(a, ns=(later, later))
    set_csv(project, 'csv: {delimiter: ";"}')

    result = penstock.rebuild(project, "orders", restage=True)
    assert result.status == "success"
    assert statuses(result) == {
        "landing/orders/a.csv": "restaged",
        "landing/orders/b.csv": "changed",
    }
    assert (
        batches(project)["landing/orders/b.csv"].manifest == before["landing/orders/b.csv"].manifest
    )
    messages = log_messages(project, result.run_id)
    b_id = before["landing/orders/b.csv"].batch_id
    assert (
        f"landing/orders/b.csv: changed since it was staged; batch {b_id} keeps the parse it "
        f"was staged with"
    ) in messages
    # the new content is a new batch for a run, parsed with the current settings
    run = penstock.run(project)
    assert [o.source_file for o in run.loads()] == ["landing/orders/b.csv"]
    assert query(project, "SELECT id FROM orders ORDER BY id") == [(1,), (2,), (9,)]


def test_a_file_rewritten_in_place_restages_its_newest_content_only(tmp_path: Path) -> None:
    """A daily export overwritten under one name: each content is a batch of that name; only
    the content still in the file can be read again."""
    project = project_with(tmp_path)
    latest = project / "landing" / "orders" / "latest.csv"
    latest.write_text("id;name;amount\n7;old;7.00\n")
    assert penstock.run(project).status == "success"
    first = batches(project)["landing/orders/latest.csv"]
    latest.write_text("id;name;amount\n7;new;7.50\n")
    assert penstock.run(project).status == "success"
    set_csv(project, 'csv: {delimiter: ";"}')
    result = penstock.rebuild(project, "orders", restage=True)
    assert result.status == "success"
    assert result.restage is not None
    mine = {r.batch_id: r.status for r in result.restage if r.source_file.endswith("latest.csv")}
    assert len(mine) == 2 and mine[first.batch_id] == "changed"
    assert sorted(mine.values()) == ["changed", "restaged"]
    assert query(project, "SELECT name, amount::VARCHAR FROM orders WHERE id = 7") == [
        ("new", "7.50")
    ]


REPLACE_YML = """
name: snaps
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  prices:
    source: landing
    files: "prices/*.csv"
    load: replace
    CSV
    columns:
      id:    {type: bigint, required: true}
      price: {type: "decimal(10,2)"}
"""

T0 = time.time_ns() - 3600 * 10**9


def deliver(project: Path, name: str, body: str, minute: int) -> Path:
    path = project / "landing" / "prices" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    stamp = T0 + minute * 60 * 10**9
    os.utime(path, ns=(stamp, stamp))
    return path


def test_replace_snapshots_keep_their_delivery_identity(tmp_path: Path) -> None:
    """For replace a batch is one delivery (content, name, mtime): day3 repeats day1's bytes
    and is its own batch; each is re-read from its own file. A delivery touched since is
    another delivery: its batch replays as staged."""
    project = write_project(tmp_path, REPLACE_YML.replace("CSV", ""))
    for minute, (name, body) in enumerate(
        [
            ("day1.csv", "id;price\n1;1.5\n"),
            ("day2.csv", "id;price\n2;2.5\n"),
            ("day3.csv", "id;price\n1;1.5\n"),
        ]
    ):
        deliver(project, name, body, minute)
        assert penstock.run(project).status == "success"
    before = batches(project, "prices")
    assert len({b.batch_id for b in before.values()}) == 3
    assert before["landing/prices/day1.csv"].manifest.content_hash == (
        before["landing/prices/day3.csv"].manifest.content_hash
    )
    assert query(project, "SELECT count(*) FROM prices") == [(0,)]  # one column: keeps none

    yml = (project / "penstock.yml").read_text()
    (project / "penstock.yml").write_text(
        yml.replace("    load: replace\n", '    load: replace\n    csv: {delimiter: ";"}\n')
    )
    result = penstock.rebuild(project, restage=True)
    assert result.status == "success", [f.error for f in result.failures]
    assert statuses(result) == {f"landing/prices/day{d}.csv": "restaged" for d in (1, 2, 3)}
    after = batches(project, "prices")
    assert {n: b.batch_id for n, b in after.items()} == {n: b.batch_id for n, b in before.items()}
    # day3, the newest snapshot, is the table
    day3 = after["landing/prices/day3.csv"].batch_id
    assert query(project, "SELECT id, price::VARCHAR, _batch_id FROM prices") == [(1, "1.50", day3)]

    # day2 delivered again (same bytes, new mtime): another delivery, not day2's batch
    deliver(project, "day2.csv", "id;price\n2;2.5\n", 10)
    again = penstock.rebuild(project, restage=True)
    assert statuses(again) == {
        "landing/prices/day1.csv": "restaged",
        "landing/prices/day2.csv": "changed",
        "landing/prices/day3.csv": "restaged",
    }


def test_a_file_the_new_settings_cannot_read_leaves_the_object_as_it_was(tmp_path: Path) -> None:
    """One command names every file that fails; nothing of the object changes (stage zone and
    table), other objects go on; moving the file out of landing lets its old parse replay."""
    files: dict[str, str | bytes] = {
        **SEMICOLONS,
        "landing/orders/c.csv": "id;name;amount\n4;Zoë;4.00\n".encode("latin-1"),
    }
    project = project_with(tmp_path, "csv: {encoding: latin-1}", files)
    assert penstock.run(project).status == "success"
    orders_lake = lake_of(project, "orders")
    orders_rows = query(project, "SELECT * FROM orders ORDER BY ALL")
    orders_quarantine = quarantined(project)
    loads = query(project, "SELECT * FROM penstock.loads WHERE object = 'orders' ORDER BY ALL")

    set_csv(project, 'csv: {delimiter: ";", encoding: utf-8}')  # c.csv is not utf-8
    result = penstock.rebuild(project, restage=True)
    assert result.status == "failed"
    assert statuses(result) == {
        "landing/orders/a.csv": "discarded",
        "landing/orders/b.csv": "discarded",
        "landing/orders/c.csv": "failed",
        "landing/people/p.csv": "restaged",
    }
    (failure,) = result.failures
    assert failure.object == "orders" and failure.step == "restage"
    assert failure.source_file == "landing/orders/c.csv"
    assert failure.error is not None
    assert failure.error.startswith("landing/orders/c.csv:2: not valid utf-8 text")
    assert "keeps its previous parse" in failure.error
    assert lake_of(project, "orders") == orders_lake
    assert query(project, "SELECT * FROM orders ORDER BY ALL") == orders_rows
    assert quarantined(project) == orders_quarantine
    assert (
        query(project, "SELECT * FROM penstock.loads WHERE object = 'orders' ORDER BY ALL") == loads
    )
    assert query(project, "SELECT count(*) FROM people") == [(2,)]  # the other object went on
    assert list((project / "lake").rglob(".tmp-*")) == []
    messages = log_messages(project, result.run_id)
    assert any(
        m.startswith(
            "orders: 1 file(s) cannot be read with the current settings (landing/orders/c.csv); "
            "nothing restaged, orders not rebuilt"
        )
        for m in messages
    )

    # the legacy file moves out of landing: its batch replays as staged, the others restage
    (project / "landing" / "orders" / "c.csv").rename(tmp_path / "c.csv")
    fixed = penstock.rebuild(project, "orders", restage=True)
    assert fixed.status == "success"
    assert statuses(fixed)["landing/orders/c.csv"] == "gone"
    assert query(project, "SELECT id FROM orders ORDER BY id") == [(1,), (2,)]


def test_a_skip_is_kept_and_a_skipped_file_that_fails_holds_nothing_back(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        **SEMICOLONS,
        "landing/orders/c.csv": "id;name;amount\n4;Zoë;4.00\n".encode("latin-1"),
    }
    project = project_with(tmp_path, "csv: {encoding: latin-1}", files)
    assert penstock.run(project).status == "success"
    proj = load_project(project)
    staged = batches(project)
    (project / "warehouse.duckdb").unlink()  # so that loaded batches can be skipped
    skip_batch(proj, "orders", staged["landing/orders/b.csv"].batch_id, "wrong prices")
    skip_batch(proj, "orders", staged["landing/orders/c.csv"].batch_id, "legacy export")
    markers = {
        n: (b.directory / "skipped.json").read_bytes()
        for n, b in batches(project).items()
        if n != "landing/orders/a.csv"
    }

    set_csv(project, 'csv: {delimiter: ";", encoding: utf-8}')
    result = penstock.rebuild(project, "orders", restage=True)
    assert result.status == "success", [f.error for f in result.failures]
    assert statuses(result) == {
        "landing/orders/a.csv": "restaged",
        "landing/orders/b.csv": "restaged",
        "landing/orders/c.csv": "failed",
    }
    warned = [o for o in result.outcomes if o.step == "restage" and o.status == "warning"]
    assert [o.source_file for o in warned] == ["landing/orders/c.csv"]
    after = batches(project)
    assert after["landing/orders/b.csv"].manifest.columns == ("id", "name", "amount")
    assert after["landing/orders/c.csv"].manifest == staged["landing/orders/c.csv"].manifest
    assert {
        n: (b.directory / "skipped.json").read_bytes() for n, b in after.items() if b.skip
    } == markers
    assert query(project, "SELECT id, name FROM orders ORDER BY id") == [(1, "ann"), (2, "bob")]
    states = {b.source_file: b.status for b in list_batches(proj, "orders").batches}
    assert states == {
        "landing/orders/a.csv": "loaded",
        "landing/orders/b.csv": "skipped",
        "landing/orders/c.csv": "skipped",
    }


def test_a_source_that_cannot_restage_replays_as_staged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seam a database source will use: it says why, and its batches replay as staged."""
    project = project_with(tmp_path)
    assert penstock.run(project).status == "success"
    before = lake_of(project, "orders")
    set_csv(project, 'csv: {delimiter: ";"}')
    monkeypatch.setattr(FilesSourceReader, "cannot_restage", "rows are staged typed")
    result = penstock.rebuild(project, "orders", restage=True)
    assert result.status == "success"
    assert result.restage is not None
    assert {(r.status, r.detail) for r in result.restage} == {
        ("unsupported", "rows are staged typed")
    }
    assert lake_of(project, "orders")["stage"] == before["stage"]
    assert query(project, "SELECT count(*) FROM orders") == [(0,)]
    assert (
        "orders: cannot restage (rows are staged typed); its 2 batch(es) replay as staged"
        in log_messages(project, result.run_id)
    )


def test_restage_with_unchanged_settings_gives_identical_tables(demo: tuple[Path, Any]) -> None:
    """On the demo (merge and scd2 objects, quarantined rows, malformed lines): restaging with
    the settings it was staged with changes nothing in the warehouse, load times included."""
    project, expected = demo
    assert penstock.run(project).status == "success"
    tables = ["orders", "customers", "quarantine.orders", "quarantine.customers"]
    state = {t: sorted(query(project, f"SELECT * FROM {t}"), key=repr) for t in tables}
    ledger = query(project, "SELECT * EXCLUDE (run_id) FROM penstock.loads ORDER BY batch_id")
    manifests = {
        name: {n: b.manifest for n, b in batches(project, name).items()}
        for name in ("orders", "customers")
    }
    result = penstock.rebuild(project, restage=True)
    assert result.status == "success", [f.error for f in result.failures]
    assert result.restage is not None
    assert len(result.restage) == sum(len(m) for m in manifests.values()) == len(expected.files)
    assert {r.status for r in result.restage} == {"restaged"}
    assert {t: sorted(query(project, f"SELECT * FROM {t}"), key=repr) for t in tables} == state
    assert (
        query(project, "SELECT * EXCLUDE (run_id) FROM penstock.loads ORDER BY batch_id") == ledger
    )
    for name, old in manifests.items():
        new = {n: b.manifest for n, b in batches(project, name).items()}
        assert {
            n: (m.batch_id, m.rows, m.rows_malformed, m.schema, m.extracted_at)
            for n, m in new.items()
        } == {
            n: (m.batch_id, m.rows, m.rows_malformed, m.schema, m.extracted_at)
            for n, m in old.items()
        }


MODES = {
    "append": "load: append",
    "replace": "load: replace",
    "merge": "key: [id]\n    order_by: changed_at\n    load: merge",
    "scd2": "key: [id]\n    order_by: changed_at\n    load: scd2",
}

MODE_YML = """
name: modes
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "people/*.csv"
    EXTRA
    columns:
      id:         {type: integer, required: true}
      city:       {type: text, pattern: "^[A-Z]"}
      changed_at: {type: date}
"""


@pytest.mark.parametrize("mode", list(MODES))
def test_unchanged_settings_give_identical_tables_in_every_mode(tmp_path: Path, mode: str) -> None:
    project = write_project(tmp_path, MODE_YML.replace("EXTRA", MODES[mode]))
    drops = [
        "1,Oslo,2024-01-01\n1,Rome,2024-03-01\n2,Pune,2024-01-01\n3,x\n",
        "1,Lima,2024-02-01\n2,Cork,2024-01-01\n4,oslo,2024-01-01\n",
        "1,Rome,2024-03-01\n1,Kyiv,2024-04-01\n1,Kyiv,2024-04-01\n",
    ]
    for minute, body in enumerate(drops):
        path = project / "landing" / "people" / f"{minute:02d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("id,city,changed_at\n" + body)
        stamp = T0 + minute * 60 * 10**9
        os.utime(path, ns=(stamp, stamp))
        assert penstock.run(project).status == "success"
    tables = ["people", "quarantine.people"]
    state = {t: sorted(query(project, f"SELECT * FROM {t}"), key=repr) for t in tables}
    ledger = query(project, "SELECT * EXCLUDE (run_id) FROM penstock.loads ORDER BY batch_id")
    result = penstock.rebuild(project, restage=True)
    assert result.status == "success", [f.error for f in result.failures]
    assert statuses(result) == {f"landing/people/{m:02d}.csv": "restaged" for m in range(3)}
    assert {t: sorted(query(project, f"SELECT * FROM {t}"), key=repr) for t in tables} == state
    assert (
        query(project, "SELECT * EXCLUDE (run_id) FROM penstock.loads ORDER BY batch_id") == ledger
    )


def test_a_replacement_killed_halfway_is_finished_by_the_next_command(tmp_path: Path) -> None:
    """In-process: the old parse moved aside, the new one not yet in place (see
    test_restage_crash.py for a real SIGKILL): readers see the old parse, the next command
    holding the lock puts it back."""
    project = project_with(tmp_path)
    assert penstock.run(project).status == "success"
    lake = Lake(project / "lake")
    batch = batches(project)["landing/orders/a.csv"]
    aside = batch.directory.with_name(f".replaced-{batch.batch_id}")
    batch.directory.rename(aside)
    # a lock-free reader (penstock batches) still sees the batch, with its old parse
    assert batches(project)["landing/orders/a.csv"].manifest == batch.manifest
    assert json.loads((aside / "manifest.json").read_text())["batch_id"] == batch.batch_id
    assert lake.finish_replacements() == 1
    assert not aside.exists() and (batch.directory / "manifest.json").is_file()
    assert batches(project)["landing/orders/a.csv"].directory == batch.directory
