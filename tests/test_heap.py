"""A session keeps the objects it lives with out of the cycle collector's walks, and gives
the collector back as it found it (penstock/heap.py)."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

import penstock
from penstock import heap, load_project
from penstock.engine.session import Session
from penstock.lake import Lake

from helpers import orders_project, write_project

PROJECT = orders_project("heap")


class Node:
    """A container object the collector tracks; two of them make a cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def _cycle() -> weakref.ref[Node]:
    """Cyclic garbage-to-be: a weak reference to one of two nodes that point at each other."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    """Each test starts and ends with nothing frozen, no session holding, the collector on."""
    gc.unfreeze()
    assert heap.holders() == 0
    assert gc.isenabled()
    yield
    while heap.holders():
        heap.release()
    gc.unfreeze()
    gc.enable()


def test_a_hold_freezes_what_exists_and_the_last_release_thaws_it() -> None:
    heap.hold()
    frozen = gc.get_freeze_count()
    assert frozen > 1000  # every imported module's objects
    heap.hold()  # a second session in the process
    assert gc.get_freeze_count() >= frozen
    heap.release()
    assert gc.get_freeze_count() >= frozen  # the first session still holds
    heap.release()
    assert gc.get_freeze_count() == 0
    heap.release()  # one release too many changes nothing
    assert heap.holders() == 0


def test_cyclic_garbage_made_while_frozen_is_collected_after_the_thaw(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(heap, "_thawed", False)  # the process's first session
    made = _cycle()
    heap.hold()  # the cycle, still alive, is frozen with everything else
    gc.collect()
    assert made() is not None  # garbage now, but hidden from the collector
    heap.release()
    gc.collect()
    assert made() is None


def test_a_session_after_a_thaw_collects_once_the_heap_grew_by_a_quarter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Objects a thaw puts back do not count toward the next full collection: in a process
    that runs session after session, their garbage would pile up with none coming."""
    monkeypatch.setattr(heap, "_collected", 0)  # no collection made here yet
    monkeypatch.setattr(heap, "_thawed", False)  # the process's first session
    gc.disable()  # no collection but the ones a session makes
    try:
        heap.hold()
        heap.release()  # a session came and went
        made = _cycle()
        heap.hold()  # the next one: the first collection here
        assert made() is None
        heap.release()
        made = _cycle()
        heap.hold()  # the heap has not grown by a quarter since: no collection
        assert made() is not None
        heap.release()
        for _ in range(int(heap._collected * 0.3) // 2 + 1):  # garbage: 30% more objects
            _cycle()
        heap.hold()
        assert made() is None
        made = _cycle()
        heap.hold()  # a second session open at once: never a collection
        assert made() is not None
        heap.release()
        heap.release()
    finally:
        gc.enable()


def test_a_process_that_froze_objects_itself_is_left_alone() -> None:
    gc.freeze()  # a server before it forks
    before = gc.get_freeze_count()
    assert before > 0
    heap.hold()
    with heap.bulk():
        kept = [Node() for _ in range(1000)]
    heap.release()
    assert gc.get_freeze_count() == before  # neither frozen more nor thawed
    assert len(kept) == 1000


def test_bulk_holds_collections_back_and_restores_the_collector() -> None:
    with heap.bulk():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), heap.bulk():
        raise RuntimeError("a failed read")
    assert gc.isenabled()
    gc.disable()  # a process that turned the collector off
    with heap.bulk():
        pass
    assert not gc.isenabled()


def test_bulk_freezes_what_it_built_only_while_a_session_holds() -> None:
    with heap.bulk():
        loose = [Node() for _ in range(2000)]
    assert gc.get_freeze_count() == 0  # no session: nothing frozen
    heap.hold()
    frozen = gc.get_freeze_count()
    with heap.bulk():
        built = [Node() for _ in range(2000)]
    assert gc.get_freeze_count() >= frozen + 2000
    heap.release()
    assert gc.get_freeze_count() == 0
    assert len(loose) == len(built) == 2000


def test_bulk_in_two_threads_leaves_the_collector_on() -> None:
    """The second thread in finds the collector held back and must not turn it off when it
    leaves last: the first, which found it on, has turned it back on by then."""
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    found: list[bool] = []  # the collector as the second thread found it inside

    def first() -> None:
        with heap.bulk():
            first_in.set()
            second_in.wait(5)
        first_out.set()

    def second() -> None:
        first_in.wait(5)
        with heap.bulk():
            found.append(gc.isenabled())
            second_in.set()
            first_out.wait(5)

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(5)
    assert first_out.is_set()
    assert found == [False]
    assert gc.isenabled()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = write_project(
        tmp_path / "p", PROJECT, {f"landing/orders/{n}.csv": f"id,qty\n{n},1\n" for n in range(3)}
    )
    assert penstock.run(str(root)).status == "success"
    return root


def test_a_session_holds_the_heap_while_open(project: Path) -> None:
    proj = load_project(project)
    with Session(proj, record_catalog=False) as session:
        assert heap.holders() == 1
        assert gc.get_freeze_count() > 1000
        assert gc.isenabled()
        batches = session.lake.batches("orders")
        assert len(batches) == 3
        # the manifests read (a bulk build) joined the frozen objects: no generation the
        # collector walks lists them
        manifest = batches[0].manifest
        assert gc.is_tracked(manifest)
        assert not any(o is manifest for o in gc.get_objects())
    assert heap.holders() == 0
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()
    assert any(o is manifest for o in gc.get_objects())  # thawed: walked again


def test_a_session_that_fails_to_open_holds_nothing(project: Path) -> None:
    proj = load_project(project)
    with Session(proj, record_catalog=False):
        # the warehouse is taken: a second session gives up at once
        with pytest.raises(penstock.PenstockError):
            Session(proj, record_catalog=False, wait=0)
        assert heap.holders() == 1
    assert heap.holders() == 0
    assert gc.get_freeze_count() == 0


def test_runs_load_the_same_rows_and_leave_the_collector_as_found(project: Path) -> None:
    (project / "landing/orders/3.csv").write_text("id,qty\n3,4\n1,-1\n")
    result = penstock.run(str(project))
    assert result.status == "success"
    (load,) = result.loads()
    assert (load.rows_loaded, load.rows_quarantined) == (1, 1)
    assert [b.batch_id for b in Lake(project / "lake").batches("orders")][-1] == load.batch_id
    assert heap.holders() == 0
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()
