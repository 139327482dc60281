"""Python's cycle collector during a session: the long-lived objects a run builds kept out of it.

A run builds a few large structures in bulk and keeps them to its end: the stage catalog's
manifests (lake/stage_catalog.py), the file index, the landing listing. Every few hundred
container objects allocated start a collection, and every so often a full one, which walks
every tracked object in the process: the run's structures and every imported module's
objects (SQLAlchemy, pydantic, DuckDB's Python side). None of it is garbage. On a stage zone
of 10,000 batches a run with nothing new spent 0.22-0.26 s of its 0.83-0.88 s in such
collections, and they freed nothing (bench/README.md, "The cycle collector").

So:
- `hold()`: a session, once open, freezes what exists (`gc.freeze`: moved to the permanent
  generation, which no collection walks). `release()`: when the last session open in the
  process closes, it thaws them (`gc.unfreeze`: back in the oldest generation); a later
  session collects in full what they left once the heap has grown by a quarter (`hold`);
- `bulk()`, around building such a structure: no automatic collection while it is built, and
  what was built joins the frozen objects while a session holds them.

Freezing hides objects from the cycle collector only: reference counting frees what it frees
as before, and a cycle frozen as garbage, or become garbage since, is collected after the thaw
(a run of 1,000 small files peaked 10-30 MB higher). A process that froze objects itself (a
server that freezes before it forks) is left alone: no session freezes or thaws, `bulk()` only
holds the collection back.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0  # sessions open in this process that hold the heap frozen
_ours = False  # whether the freeze is penstock's (nothing was frozen before the first hold)
_thawed = False  # a thaw put objects back that no full collection has walked since
_collected = 0  # tracked objects after the last full collection `hold` made (0: none yet)
GROWTH = 1.25  # the heap's growth since then that makes the next session collect


def hold() -> None:
    """A session is open: freeze every object that exists now.

    Objects a thaw puts back do not count toward the collector's next full collection: in a
    process that runs session after session (the scheduler) the garbage they leave piled up
    (3,180 objects and 1.2 MB a run, 15 runs in a row on 5,189 batches) with none coming. So
    the first session after a thaw collects in full when the heap has grown by a quarter since
    the last such collection (the collector's own rule for its oldest generation), or when none
    was made yet; a process that runs one session, as the CLI does, never pays for it."""
    global _holders, _ours, _thawed, _collected
    with _lock:
        if _holders == 0:
            _ours = gc.get_freeze_count() == 0
        _holders += 1
        if not _ours:
            return
        gc.freeze()
        if _holders == 1 and _thawed:
            _thawed = False
            if gc.get_freeze_count() > _collected * GROWTH:
                gc.unfreeze()
                gc.collect()
                gc.freeze()
                _collected = gc.get_freeze_count()


def release() -> None:
    """A session closed: when it was the last one holding, thaw the frozen objects."""
    global _holders, _thawed
    with _lock:
        if _holders == 0:
            return
        _holders -= 1
        if _holders == 0 and _ours:
            gc.unfreeze()
            _thawed = True


def holders() -> int:
    """How many sessions hold the heap frozen now."""
    return _holders


@contextmanager
def bulk() -> Iterator[None]:
    """Build long-lived objects without automatic collections (a collector the process
    disabled stays disabled); then, while a session holds the heap, freeze them too."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        with _lock:
            if _holders and _ours:
                gc.freeze()
