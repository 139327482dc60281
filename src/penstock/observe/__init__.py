"""Observability: typed events, the bus sinks subscribe to, the metadata store, retention.

- events.py: the event types a run emits (and `EVENT_KINDS`, `event_dict`);
- bus.py: `EventBus`: plain, guarded and queued sinks, `DeliveryPolicy`; queue.py its queue;
- hooks.py: the project's `hooks:` (user code called with keyword-only arguments);
- sinks.py: what a session attaches to its bus besides the store (the registry of sinks);
- store.py: the metadata store sink and read API (SQLAlchemy Core; SQLite or PostgreSQL);
- retention.py: `penstock gc` and the pruning after every run;
- status_reads.py, follow.py, sql.py: what `status`, `runs`, `logs --follow` and `sql` read.

The metadata store's names load on first use (PEP 562): it needs SQLAlchemy, which
`penstock status` and `penstock runs` do without on a SQLite store (observe/status_reads.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from penstock.lazy import lazy_attributes
from penstock.observe.bus import DeliveryPolicy, EventBus, Handler, Sink
from penstock.observe.catalog_snapshot import AttributeRow, CatalogSnapshot, ObjectRow, SourceRow
from penstock.observe.events import (
    EVENT_KINDS,
    EVENT_TYPES,
    LOG_LEVELS,
    OBJECT_STEP,
    Anomaly,
    BatchLoaded,
    BatchStaged,
    CheckResult,
    ChecksEvaluated,
    Dataset,
    Event,
    LogLevel,
    LogRecord,
    ObjectCounted,
    RunFinished,
    RunStarted,
    RunStatus,
    SchemaDrift,
    SchemaField,
    SlaMissed,
    SourceChecked,
    StepFinished,
    StepRetried,
    StepStarted,
    StepStatus,
    event_dict,
    event_fields,
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
    "EVENT_KINDS",
    "EVENT_TYPES",
    "LOG_LEVELS",
    "OBJECT_STEP",
    "Anomaly",
    "AttributeRow",
    "BatchAttempt",
    "BatchDecision",
    "BatchLoaded",
    "BatchStaged",
    "CatalogSnapshot",
    "CheckResult",
    "ChecksEvaluated",
    "Dataset",
    "DeliveryPolicy",
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
    "SchemaDrift",
    "SchemaField",
    "Sink",
    "SlaMissed",
    "SourceChecked",
    "SourceRow",
    "StepFinished",
    "StepRetried",
    "StepRow",
    "StepStarted",
    "StepStatus",
    "event_dict",
    "event_fields",
    "new_id",
    "to_jsonable",
    "utcnow",
]
