"""Planning and running steps: the sequential runner, sessions, results, fault points.

The names below load on first use (PEP 562), so that the read-only commands that import one
submodule (`penstock status` imports `penstock.engine.status`) do not load the runner, the
sources and the lake's writers with it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from penstock.engine.results import BatchOutcome, ObjectSummary, RunResult
    from penstock.engine.runner import Runner
    from penstock.engine.session import Session, catalog_snapshot

_LAZY = {
    "BatchOutcome": "penstock.engine.results",
    "ObjectSummary": "penstock.engine.results",
    "RunResult": "penstock.engine.results",
    "Runner": "penstock.engine.runner",
    "Session": "penstock.engine.session",
    "catalog_snapshot": "penstock.engine.session",
}

if not TYPE_CHECKING:  # hidden from mypy, so that a misspelt name stays an error

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'penstock.engine' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # once loaded, a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_LAZY})


__all__ = ["BatchOutcome", "ObjectSummary", "RunResult", "Runner", "Session", "catalog_snapshot"]
