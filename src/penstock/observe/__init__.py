"""Observability: the typed event bus and the metadata store sink.

The metadata store's names load on first use (PEP 562): it needs SQLAlchemy, which
`penstock status` and `penstock runs` do without on a SQLite store (observe/status_reads.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from penstock.lazy import lazy_attributes
from penstock.observe.bus import EventBus, Handler
from penstock.observe.catalog_snapshot import AttributeRow, CatalogSnapshot, ObjectRow, SourceRow
from penstock.observe.events import (
    LOG_LEVELS,
    OBJECT_STEP,
    Event,
    LogLevel,
    LogRecord,
    ObjectCounted,
    RunFinished,
    RunStarted,
    RunStatus,
    StepFinished,
    StepStarted,
    StepStatus,
    new_id,
    utcnow,
)
from penstock.observe.jsonable import to_jsonable
from penstock.observe.records import (
    BatchAttempt,
    BatchDecision,
    LedgerLoad,
    LogRow,
    ObjectStatus,
    RunSummary,
    StepRow,
)

if TYPE_CHECKING:
    from penstock.observe.store import (
        MetadataStore,
        MetadataStoreError,
        MetadataStoreUnavailable,
    )

_LAZY = {
    "MetadataStore": "penstock.observe.store",
    "MetadataStoreError": "penstock.observe.store",
    "MetadataStoreUnavailable": "penstock.observe.store",
}

if not TYPE_CHECKING:  # hidden from mypy, so that a misspelt name stays an error
    __getattr__, __dir__ = lazy_attributes("penstock.observe", globals(), _LAZY)

__all__ = [
    "LOG_LEVELS",
    "OBJECT_STEP",
    "AttributeRow",
    "BatchAttempt",
    "BatchDecision",
    "CatalogSnapshot",
    "Event",
    "EventBus",
    "Handler",
    "LedgerLoad",
    "LogLevel",
    "LogRecord",
    "LogRow",
    "MetadataStore",
    "MetadataStoreError",
    "MetadataStoreUnavailable",
    "ObjectCounted",
    "ObjectRow",
    "ObjectStatus",
    "RunFinished",
    "RunStarted",
    "RunStatus",
    "RunSummary",
    "SourceRow",
    "StepFinished",
    "StepRow",
    "StepStarted",
    "StepStatus",
    "new_id",
    "to_jsonable",
    "utcnow",
]
