"""Named fault points for crash-safety tests: a real failure at a chosen place.

`PENSTOCK_FAULT=after_stage` kills the process (SIGKILL) right after a batch is staged, before
it is loaded; tests then prove the next run repairs everything. A mode after a colon picks
another failure: `after_stage:raise` raises a plain RuntimeError (an unexpected exception),
`after_stage:interrupt` a KeyboardInterrupt, `after_stage:hang` sleeps (a live, stuck run),
`after_stage:pause` holds the run there until a test lets it go: it writes
`$PENSTOCK_FAULT_DIR/paused` (its pid) and waits until `$PENSTOCK_FAULT_DIR/resume` exists.
`after_copy@37` fails the 37th time the point is passed (the middle of a micro-batch).
Unset, a fault point costs a dict lookup.

In-process tests may instead attach an action to a fault point (`fault_action`), e.g. a writer
appending to a landing file while it is being staged.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

FAULT_ENV = "PENSTOCK_FAULT"
FAULT_POINTS = (
    "after_copy",
    "after_extract",
    "before_manifest",
    "after_stage",
    "before_load_commit",
    "inside_load_transaction",
    "after_load",
    "inside_reset",
    "after_reset",
    "inside_restage_swap",
    "after_restage_swap",
    "inside_release_transaction",
    "inside_model_transaction",
)
FAULT_DIR_ENV = "PENSTOCK_FAULT_DIR"
FAULT_MODES = ("kill", "raise", "interrupt", "hang", "pause")
HANG_SECONDS = 300


_actions: dict[str, Callable[[], None]] = {}
_passes: dict[str, int] = {}


def fault_point(name: str) -> None:
    if _actions and (action := _actions.get(name)) is not None:
        action()
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    point, _, mode = wanted.partition(":")
    point, _, nth = point.partition("@")
    if point != name:
        return
    _passes[name] = passes = _passes.get(name, 0) + 1
    if nth and passes != int(nth):
        return
    if mode in ("", "kill"):
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "raise":
        raise RuntimeError(f"fault injected at {name}")
    elif mode == "interrupt":
        raise KeyboardInterrupt(f"fault injected at {name}")
    elif mode == "hang":
        time.sleep(HANG_SECONDS)
    elif mode == "pause":
        _pause()
    else:
        raise ValueError(f"{FAULT_ENV}: unknown mode {mode!r}; expected one of {FAULT_MODES}")


def _pause() -> None:
    """Say "paused" in the fault directory, then wait for "resume" there (bounded)."""
    folder = Path(os.environ[FAULT_DIR_ENV])
    (folder / "paused.tmp").write_text(str(os.getpid()))
    (folder / "paused.tmp").replace(folder / "paused")
    deadline = time.monotonic() + HANG_SECONDS
    while not (folder / "resume").exists() and time.monotonic() < deadline:
        time.sleep(0.02)


@contextmanager
def fault_action(name: str, action: Callable[[], None]) -> Iterator[None]:
    """Run `action` each time fault point `name` is passed, inside the `with` block."""
    if name not in FAULT_POINTS:
        raise ValueError(f"unknown fault point {name!r} (known: {', '.join(FAULT_POINTS)})")
    _actions[name] = action
    try:
        yield
    finally:
        _actions.pop(name, None)
