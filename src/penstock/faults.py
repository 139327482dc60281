"""Named fault points for crash-safety tests: a real SIGKILL at a chosen place.

`PENSTOCK_FAULT=after_stage` kills the process right after a batch is staged, before it is
loaded; tests then prove the next run repairs everything. Unset, a fault point costs a dict
lookup.
"""

from __future__ import annotations

import os
import signal

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


def fault_point(name: str) -> None:
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
