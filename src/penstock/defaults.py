"""Defaults that the CLI's option declarations and the engine share.

A module of constants with no imports, so the CLI can declare its options (and answer
`--help`) without loading the engine."""

from __future__ import annotations

DEFAULT_WAIT_SECONDS = 30.0
"""How long a run waits for another process to release the warehouse (seconds)."""

CHECK_SAMPLE_ROWS = 1_000
"""How many records of each object's first file `penstock check` reads and validates."""

WORKERS_ENV = "PENSTOCK_WORKERS"
"""How many objects (or a backfill's partitions) a run works on at once when `--workers` is
not given: this variable, else the core count (engine/parallel.py)."""


def default_workers() -> int:
    """`PENSTOCK_WORKERS` when set to a whole number of at least 1, else the core count."""
    import os

    text = os.environ.get(WORKERS_ENV, "").strip()
    if text.isdigit() and int(text) >= 1:
        return int(text)
    return os.cpu_count() or 1
