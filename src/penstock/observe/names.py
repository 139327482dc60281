"""Names the events and the store's readers share, in a module of their own: `penstock status`
and `logs` read them without defining the event types (observe/events.py)."""

from __future__ import annotations

from typing import Literal

LogLevel = Literal["debug", "info", "warning", "error"]

LOG_LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error")

OBJECT_STEP = "object"
"""The step that records one object's work in a run: started when the run takes the object
up, finished with the object's outcome (`failed` if one of its steps failed, `warning` if rows
broke its contract, else `success`). It carries no row counts (its batch steps do), and it is
what tells `penstock status` that a run with nothing new to do still processed the object."""

QUALITY_SINK = "quality"
"""The bus name of the quality sink (observe/dq.py): a run waits for it alone before its end,
so the anomalies it sends precede `run_finished`."""

METADATA_SINK = "the metadata store"
"""The bus name of the metadata store's sink (engine/session.py). An object that committed
loads waits for it once at its end, so its finished `object` step is on disk before the next
object starts: a run killed later is resumed without that object (engine/resume.py)."""
