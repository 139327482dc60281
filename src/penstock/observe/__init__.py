"""Observability: the typed event bus and the metadata store sink."""

from penstock.observe.bus import EventBus, Handler
from penstock.observe.catalog_snapshot import AttributeRow, CatalogSnapshot, ObjectRow, SourceRow
from penstock.observe.events import (
    LOG_LEVELS,
    OBJECT_STEP,
    Event,
    LogLevel,
    LogRecord,
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
from penstock.observe.store import MetadataStore, MetadataStoreError, MetadataStoreUnavailable

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
