"""Planning and running steps: the sequential runner, sessions, results, fault points.

The names below load on first use (PEP 562), so that the read-only commands that import one
submodule (`penstock status` imports `penstock.engine.status`) do not load the runner, the
sources and the lake's writers with it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from penstock.lazy import lazy_attributes

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
    __getattr__, __dir__ = lazy_attributes("penstock.engine", globals(), _LAZY)


__all__ = ["BatchOutcome", "ObjectSummary", "RunResult", "Runner", "Session", "catalog_snapshot"]
