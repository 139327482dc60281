"""Observability: typed events, the bus sinks subscribe to, the metadata store, retention.

- events.py: the event types a run emits (and `EVENT_KINDS`, `event_dict`);
- bus.py: `EventBus`: plain, guarded and queued sinks, `DeliveryPolicy`; queue.py its queue;
- hooks.py: the project's `hooks:` (user code called with keyword-only arguments);
- sinks.py: what a session attaches to its bus besides the store (the registry of sinks);
- store.py: the metadata store sink and read API (SQLAlchemy Core; SQLite or PostgreSQL);
- retention.py: `penstock gc` and the pruning after every run;
- status_reads.py, log_reads.py, sql.py: what `status`, `runs`, `logs [--follow]` and `sql`
  read (plain SQL; sqlite3 on a SQLite store).

Every name here loads on first use (PEP 562): the store needs SQLAlchemy, which `penstock
status` and `runs` do without on a SQLite store, and the event types (a few dozen
dataclasses) cost ~10 ms to define, which those commands need not pay either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from penstock.lazy import lazy_attributes

if TYPE_CHECKING:
    from penstock.observe.bus import (
        DeliveryPolicy,
        EventBus,
        Handler,
        Sink,
    )
    from penstock.observe.catalog_snapshot import (
        AttributeRow,
        CatalogSnapshot,
        ObjectRow,
        SourceRow,
    )
    from penstock.observe.events import (
        EVENT_KINDS,
        EVENT_TYPES,
        LOG_LEVELS,
        OBJECT_STEP,
        Anomaly,
        BatchLoaded,
        BatchMeasured,
        BatchStaged,
        CheckResult,
        ChecksEvaluated,
        Dataset,
        DimensionScore,
        Event,
        LogLevel,
        LogRecord,
        ObjectCounted,
        RunFinished,
        RunStarted,
        RunStatus,
        SchemaDrift,
        SchemaField,
        SchemaVersionSeen,
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
    from penstock.observe.jsonable import (
        to_jsonable,
    )
    from penstock.observe.records import (
        BatchAttempt,
        BatchDecision,
        LedgerLoad,
        LogRow,
        ObjectStatus,
        RunSummary,
        StepRow,
    )
    from penstock.observe.store import (
        MetadataStore,
        MetadataStoreError,
        MetadataStoreUnavailable,
    )

_LAZY = {
    "Anomaly": "penstock.observe.events",
    "AttributeRow": "penstock.observe.catalog_snapshot",
    "BatchAttempt": "penstock.observe.records",
    "BatchDecision": "penstock.observe.records",
    "BatchLoaded": "penstock.observe.events",
    "BatchMeasured": "penstock.observe.events",
    "DimensionScore": "penstock.observe.events",
    "BatchStaged": "penstock.observe.events",
    "CatalogSnapshot": "penstock.observe.catalog_snapshot",
    "CheckResult": "penstock.observe.events",
    "ChecksEvaluated": "penstock.observe.events",
    "Dataset": "penstock.observe.events",
    "DeliveryPolicy": "penstock.observe.bus",
    "EVENT_KINDS": "penstock.observe.events",
    "EVENT_TYPES": "penstock.observe.events",
    "Event": "penstock.observe.events",
    "EventBus": "penstock.observe.bus",
    "Handler": "penstock.observe.bus",
    "LOG_LEVELS": "penstock.observe.events",
    "LedgerLoad": "penstock.observe.records",
    "LogLevel": "penstock.observe.events",
    "LogRecord": "penstock.observe.events",
    "LogRow": "penstock.observe.records",
    "MetadataStore": "penstock.observe.store",
    "MetadataStoreError": "penstock.observe.store",
    "MetadataStoreUnavailable": "penstock.observe.store",
    "OBJECT_STEP": "penstock.observe.events",
    "ObjectCounted": "penstock.observe.events",
    "ObjectRow": "penstock.observe.catalog_snapshot",
    "ObjectStatus": "penstock.observe.records",
    "RunFinished": "penstock.observe.events",
    "RunStarted": "penstock.observe.events",
    "RunStatus": "penstock.observe.events",
    "RunSummary": "penstock.observe.records",
    "SchemaDrift": "penstock.observe.events",
    "SchemaVersionSeen": "penstock.observe.events",
    "SchemaField": "penstock.observe.events",
    "Sink": "penstock.observe.bus",
    "SlaMissed": "penstock.observe.events",
    "SourceChecked": "penstock.observe.events",
    "SourceRow": "penstock.observe.catalog_snapshot",
    "StepFinished": "penstock.observe.events",
    "StepRetried": "penstock.observe.events",
    "StepRow": "penstock.observe.records",
    "StepStarted": "penstock.observe.events",
    "StepStatus": "penstock.observe.events",
    "event_dict": "penstock.observe.events",
    "event_fields": "penstock.observe.events",
    "new_id": "penstock.observe.events",
    "to_jsonable": "penstock.observe.jsonable",
    "utcnow": "penstock.observe.events",
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
    "BatchMeasured",
    "BatchStaged",
    "CatalogSnapshot",
    "CheckResult",
    "ChecksEvaluated",
    "Dataset",
    "DeliveryPolicy",
    "DimensionScore",
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
    "SchemaVersionSeen",
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
