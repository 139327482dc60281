"""What `penstock partitions OBJECT` shows: per partition, the warehouse's record of it
(`penstock.partitions`: its batches, rows and the run that loaded it) beside the latest
backfill's `partition` step in the metadata store (its status and error: a partition that
failed has a step, and keeps the rows it held before)."""

from __future__ import annotations

from typing import Any

from penstock.catalog import Project
from penstock.observe import status_reads

_STEPS = """
SELECT source_file, status, run_id, error, started_at, ended_at FROM step_runs
WHERE object = :o AND step = 'partition' AND source_file IS NOT NULL
ORDER BY started_at, step_id
"""
_WORDS = {"skipped": "unchanged"}  # a partition step `skipped`: its data had not changed


def partition_status(project: Project, name: str) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per partition the warehouse or the store knows, in key order; and notes on
    what could not be read."""
    from penstock.engine.partition_plan import partition_spec
    from penstock.engine.status import open_for_reading

    partition_spec(project, name)  # a UsageError unless it is partitioned
    notes: list[str] = []
    recorded: dict[str, dict[str, Any]] = {}
    warehouse = open_for_reading(project, notes)
    if warehouse is not None:
        try:
            recorded = warehouse.partitions(name)
        finally:
            warehouse.close()
    steps: dict[str, dict[str, Any]] = {}
    with status_reads.reading(project.metadata_url) as rows:
        if rows is not None:
            for row in rows(_STEPS, {"o": name}):
                steps[str(row["source_file"])] = row  # the latest wins
    out = []
    for key in sorted({*recorded, *steps}):
        held = recorded.get(key)
        step = steps.get(key)
        status = None if step is None else _WORDS.get(step["status"], step["status"])
        out.append(
            {
                "partition": key,
                "status": status,
                "error": None if step is None else step["error"],
                "last_run_id": None if step is None else step["run_id"],
                "ended_at": None if step is None else status_reads.utc(step["ended_at"]),
                "batch_ids": None if held is None else held["batch_ids"],
                "rows_loaded": None if held is None else held["rows_loaded"],
                "rows_quarantined": None if held is None else held["rows_quarantined"],
                "run_id": None if held is None else held["run_id"],
                "loaded_at": None if held is None else held["loaded_at"],
            }
        )
    return out, notes
