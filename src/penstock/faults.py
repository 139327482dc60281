"""Named fault points for crash-safety tests: a real failure at a chosen place.

`PENSTOCK_FAULT=after_stage` kills the process (SIGKILL) right after a batch is staged, before
it is loaded; tests then prove the next run repairs everything. A mode after a colon picks
another failure: `after_stage:raise` raises a plain RuntimeError (an unexpected exception),
`after_stage:interrupt` a KeyboardInterrupt, `after_stage:hang` sleeps (a live, stuck run).
Unset, a fault point costs a dict lookup.
"""

from __future__ import annotations

import os
import signal
import time

FAULT_ENV = "PENSTOCK_FAULT"
FAULT_POINTS = (
    "before_manifest",
    "after_stage",
    "before_load_commit",
    "inside_load_transaction",
    "after_load",
    "inside_reset",
    "after_reset",
)
FAULT_MODES = ("kill", "raise", "interrupt", "hang")
HANG_SECONDS = 300


def fault_point(name: str) -> None:
    wanted = os.environ.get(FAULT_ENV)
    if not wanted:
        return
    point, _, mode = wanted.partition(":")
    if point != name:
        return
    if mode in ("", "kill"):
        os.kill(os.getpid(), signal.SIGKILL)
    elif mode == "raise":
        raise RuntimeError(f"fault injected at {name}")
    elif mode == "interrupt":
        raise KeyboardInterrupt(f"fault injected at {name}")
    elif mode == "hang":
        time.sleep(HANG_SECONDS)
    else:
        raise ValueError(f"{FAULT_ENV}: unknown mode {mode!r}; expected one of {FAULT_MODES}")
