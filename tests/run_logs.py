"""Read what a run logged, for tests that assert on the messages a user sees."""

from __future__ import annotations

from pathlib import Path

from penstock.catalog import load_project
from penstock.observe import MetadataStore


def log_messages(project: Path, run_id: str) -> list[str]:
    """Every message the run logged at info level and above, in order."""
    with MetadataStore(load_project(project).metadata_url) as store:
        return [row.message for row in store.logs(run_id, "info")]
