"""Planning and running steps: the sequential runner, sessions, results, fault points."""

from penstock.engine.results import BatchOutcome, ObjectSummary, RunResult
from penstock.engine.runner import Runner
from penstock.engine.session import Session, catalog_snapshot

__all__ = ["BatchOutcome", "ObjectSummary", "RunResult", "Runner", "Session", "catalog_snapshot"]
