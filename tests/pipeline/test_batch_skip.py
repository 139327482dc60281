"""`on_invalid: fail` no longer blocks an object for ever: a failed batch can be skipped.

The skip is a marker beside the batch in the lake (honoured by run, and by rebuild even from
an empty warehouse) plus an audit record in the metadata store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import penstock
from penstock import UsageError, load_project
from penstock.engine.batches import list_batches, skip_batch, unskip_batch
from penstock.observe import MetadataStore

from helpers import log_messages, query, write_project

PROJECT = """
name: skips
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


def deliver(project: Path, name: str, body: str) -> None:
    (project / "landing" / "orders" / name).write_text(body)


def ledger_files(project: Path) -> list[str]:
    return [
        r[0] for r in query(project, "SELECT source_file FROM penstock.loads ORDER BY loaded_at")
    ]


@pytest.fixture
def blocked(tmp_path: Path) -> tuple[Path, str]:
    """A project whose second batch broke the contract; the bad file was then replaced."""
    project = write_project(tmp_path, PROJECT, {"landing/orders/a.csv": "id,qty\n1,1\n2,2\n"})
    assert penstock.run(project).status == "success"
    deliver(project, "b.csv", "id,qty\n2,-5\n3,3\n")
    result = penstock.run(project)
    (failure,) = result.failures
    (bad,) = [
        b for b in list_batches(load_project(project), "orders").batches if b.status != "loaded"
    ]
    assert failure.batch_id == bad.batch_id and failure.error is not None
    assert f"penstock batches skip orders {bad.batch_id} --reason TEXT" in failure.error
    # remove the bad file, deliver a good one: the staged bad batch still blocks the object
    (project / "landing" / "orders" / "b.csv").unlink()
    deliver(project, "c.csv", "id,qty\n2,20\n3,3\n")
    again = penstock.run(project)
    assert [f.batch_id for f in again.failures] == [bad.batch_id]
    assert ledger_files(project) == ["landing/orders/a.csv"]
    return project, bad.batch_id


def test_a_skipped_batch_is_never_loaded_and_later_batches_go_on(
    blocked: tuple[Path, str],
) -> None:
    project, bad = blocked
    proj = load_project(project)
    state = skip_batch(
        proj, "orders", bad[: len("orders-") + 6], "qty -5 was a typo; c.csv fixes it"
    )
    assert state.batch_id == bad and state.status == "skipped"
    marker = project / "lake" / "stage" / "orders" / bad / "skipped.json"
    assert marker.is_file()

    result = penstock.run(project)
    assert result.status == "success", [f.error for f in result.failures]
    assert [o.source_file for o in result.loads()] == ["landing/orders/c.csv"]
    assert ledger_files(project) == ["landing/orders/a.csv", "landing/orders/c.csv"]
    assert query(project, "SELECT id, qty FROM orders ORDER BY id") == [(1, 1), (2, 20), (3, 3)]
    statuses = {b.source_file: b.status for b in list_batches(proj, "orders").batches}
    assert statuses == {
        "landing/orders/a.csv": "loaded",
        "landing/orders/b.csv": "skipped",
        "landing/orders/c.csv": "loaded",
    }
    # a later run leaves it skipped and finds nothing to do: a skipped batch is not pending
    later = penstock.run(project)
    assert later.loads() == []
    messages = log_messages(project, later.run_id)
    assert "orders: 0 batch(es) to load" in messages
    assert not any("is skipped, not loaded" in m for m in messages)

    # the decision is in the metadata store for audit
    with MetadataStore(proj.metadata_url) as store:
        decision = store.batch_decisions("orders")[bad]
    assert decision.action == "skip" and decision.reason == "qty -5 was a typo; c.csv fixes it"
    assert decision.decided_by

    # a rebuild from an empty warehouse honours the skip (the marker lives in the lake)
    before = query(project, "SELECT id, qty, _batch_id FROM orders ORDER BY id")
    (project / "warehouse.duckdb").unlink()
    rebuilt = penstock.rebuild(project)
    assert rebuilt.status == "success"
    assert query(project, "SELECT id, qty, _batch_id FROM orders ORDER BY id") == before
    assert bad not in {r[0] for r in query(project, "SELECT batch_id FROM penstock.loads")}


def test_skipping_a_loaded_batch_is_refused_and_a_skip_can_be_undone(
    blocked: tuple[Path, str],
) -> None:
    project, bad = blocked
    proj = load_project(project)
    loaded = next(b for b in list_batches(proj, "orders").batches if b.status == "loaded")
    with pytest.raises(UsageError, match="already loaded") as refused:
        skip_batch(proj, "orders", loaded.batch_id, "no")
    assert "deliver a file with the corrected rows" in refused.value.message
    with pytest.raises(UsageError, match="say why"):
        skip_batch(proj, "orders", bad, "  ")
    with pytest.raises(UsageError, match="more than one batch"):
        skip_batch(proj, "orders", "orders-", "which?")
    with pytest.raises(UsageError, match="no staged batch"):
        skip_batch(proj, "orders", "zzzz", "none")

    skip_batch(proj, "orders", bad, "for now")
    state = unskip_batch(proj, "orders", bad)
    assert state.status == "failed" and state.skip_reason is None
    assert not (project / "lake" / "stage" / "orders" / bad / "skipped.json").exists()
    # unskipped, it is tried again in its place (and still breaks its contract)
    result = penstock.run(project)
    assert [f.batch_id for f in result.failures] == [bad]
    with MetadataStore(proj.metadata_url) as store:
        assert store.batch_decisions("orders")[bad].action == "unskip"
