"""Benchmarks time penstock as installed on a user's machine, where Python keeps compiled
bytecode: a `pip install` compiles site-packages, and a source checkout writes `__pycache__`
on first import. This machine exports PYTHONDONTWRITEBYTECODE=1, under which every fresh
process compiles penstock's ~150 modules again (~50 ms of `penstock --help`, ~25 ms of a
run). `allow_bytecode()` drops it for the benchmark's child processes."""

from __future__ import annotations

import os


def allow_bytecode() -> None:
    """Let this process's children write and reuse .pyc files."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
