"""Defaults that the CLI's option declarations and the engine share.

A module of constants with no imports, so the CLI can declare its options (and answer
`--help`) without loading the engine."""

from __future__ import annotations

DEFAULT_WAIT_SECONDS = 30.0
"""How long a run waits for another process to release the warehouse (seconds)."""

CHECK_SAMPLE_ROWS = 1_000
"""How many records of each object's first file `penstock check` reads and validates."""
