"""A session opens what a command needs — lake, warehouse, metadata store, event bus — once.

Before the warehouse it takes the project's lease (engine/lease.py): a second session on the
project waits for it up to `wait` seconds, then raises `LeaseHeld` naming the holder (the CLI
defers: exit 0). The lease is released after the warehouse is closed.

The bus feeds the metadata store through a queue (a slow store never slows a load; the
runner flushes it when a run ends) and every sink of observe/sinks.py (the project's
`hooks:`...). Closing the session flushes and stops the sinks, and, after a run or a
rebuild, deletes the metadata older than the project's `retention:` (observe/retention.py;
at most once an hour).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType

from penstock import heap
from penstock.catalog import Project
from penstock.catalog.observability import RETENTION_KINDS
from penstock.defaults import DEFAULT_WAIT_SECONDS
from penstock.engine.lease import PROJECT_LEASE, Lease
from penstock.engine.runner import Runner
from penstock.errors import first_line
from penstock.lake import Lake
from penstock.observe import (
    AttributeRow,
    CatalogSnapshot,
    EventBus,
    LedgerLoad,
    MetadataStore,
    ObjectRow,
    RunStarted,
    SourceRow,
    utcnow,
)
from penstock.observe.names import METADATA_SINK
from penstock.observe.sinks import attach_sinks
from penstock.observe.store import RECORDED_EVENTS
from penstock.quality.privacy_sql import install_key
from penstock.secrets import redact
from penstock.warehouse import Warehouse, connect_warehouse, is_server


def retention_periods(project: Project) -> dict[str, timedelta]:
    """How long the metadata store keeps each kind of record (`retention:`)."""
    return {kind: project.retention_period(kind) for kind in RETENTION_KINDS}


def catalog_snapshot(project: Project) -> CatalogSnapshot:
    """The project as catalog rows for the metadata store (versioned by the project hash)."""
    objects = project.objects_in_order()
    return CatalogSnapshot(
        project=project.name,
        project_hash=project.project_hash,
        sources=tuple(
            SourceRow(name, spec.kind, spec.owner, spec.description)
            for name, spec in project.sources.items()
        ),
        objects=tuple(
            ObjectRow(
                name=o.name,
                source=o.source,
                group=o.group,
                load=o.load,
                key=tuple(o.key),
                order_by=o.order_by,
                on_invalid=o.on_invalid,
                table=o.table_name,
                description=o.description,
                owner=o.owner,
            )
            for o in objects
        ),
        attributes=tuple(
            AttributeRow(
                object=o.name,
                name=name,
                ordinal=index,
                type=spec.type,
                required=o.is_required(name),
                description=spec.description,
                pii=spec.pii,
            )
            for o in objects
            for index, (name, spec) in enumerate(o.columns.items(), start=1)
        ),
        groups=tuple(sorted({o.group for o in objects})),
    )


class Session:
    """Use as a context manager; `bus` already feeds the metadata store."""

    def __init__(
        self,
        project: Project,
        *,
        record_catalog: bool = True,
        wait: float = DEFAULT_WAIT_SECONDS,
        on_wait: Callable[[str], None] | None = None,
        command: str = "run",
    ) -> None:
        """Open everything; while another run holds the project's lease or the warehouse,
        wait up to `wait` seconds in all (then `LeaseHeld` or `WarehouseLocked`)."""
        self.project = project
        self.holds_heap = False  # see the end of __init__
        self.lake = Lake(project.lake_path)
        self.store = MetadataStore(project.metadata_url)
        # the project's lease before the warehouse (engine/lease.py): a second run on the
        # project waits for the first's lease, naming it, instead of meeting its DuckDB lock
        self.lease = Lease(
            self.store, project.name, PROJECT_LEASE, command=command, on_lost=_say_lost
        )
        try:
            waited = self.lease.acquire(wait, on_wait)
            left = max(wait - waited, 0.0)  # one --wait in all
            self.warehouse: Warehouse = connect_warehouse(project, wait=left, on_wait=on_wait)
        except BaseException:
            self._release_lease()
            self.store.close()
            raise
        # `pii: hash` reads its key from this connection's temp table (quality/privacy_sql.py)
        install_key(self.warehouse.conn, project.privacy.key)
        self.lake.remove_stale_temps()  # the warehouse lock is held: no other run writes here
        self.lake.keep_catalog = True  # and none changes a batch: the catalogs may be written
        self.reconciled_batches: list[str] = []
        try:
            # the ledger is the truth for what loaded: record the loads the store missed
            # only the retention window: older batches' steps may be pruned (filtered in SQL,
            # so a run reads the ledger rows of the window, not the whole history); and of
            # that, the loads since the last session's check (observe/ledger_checks.py)
            since = self.store.ledger_check_from(
                project.name, utcnow() - project.retention_period("runs")
            )
            self.reconciled_batches = self.store.reconcile_loads(
                project.name,
                project.project_hash,
                [LedgerLoad(**row) for row in self.warehouse.ledger(since)],
                since=since,
            )
            if project.warehouse_path is not None or is_server(project):
                # the lock is the evidence (a server warehouse has none: the project's lease,
                # held since above, is): a run still `running` has no live process behind it
                self.store.mark_abandoned(project.name)
        except BaseException:
            self.close()
            raise
        self.bus = EventBus()
        self.bus.subscribe(
            self.lease.note_run_started, guarded=True, events=(RunStarted,), name="the lease"
        )
        self.bus.subscribe(
            _StoreSink(self.store), queued=True, name=METADATA_SINK, events=RECORDED_EVENTS
        )
        self.collect_garbage = False  # a session that did not open has nothing to collect
        try:
            attach_sinks(self.bus, project=project, store=self.store)
            if record_catalog:
                self.store.record_catalog(catalog_snapshot(project))
        except BaseException:
            self.close()
            raise
        self.collect_garbage = record_catalog  # runs and rebuilds: retention when they close
        self.runner = Runner(project, self.bus, self.warehouse, self.lake)
        # what is imported and open now lives as long as the session: out of the cycle
        # collector's walks until it closes (penstock/heap.py)
        heap.hold()
        self.holds_heap = True

    def close(self) -> None:
        try:
            bus = getattr(self, "bus", None)
            if bus is not None:
                bus.close()
                if self.collect_garbage:
                    self._collect_garbage()
        finally:
            try:
                self.warehouse.close()
            finally:
                try:
                    self._release_lease()
                finally:
                    try:
                        self.store.close()
                    finally:
                        if self.holds_heap:
                            self.holds_heap = False
                            heap.release()

    def _release_lease(self) -> None:
        """Give the project's lease back; if the store fails now, it expires on its own."""
        try:
            self.lease.release()
        except Exception as exc:
            _say_lost(f"the project's lease was not released (it expires): {first_line(exc)}")

    def _collect_garbage(self) -> None:
        """Retention after a run (at most once an hour: observe/retention.py): never fails
        the command (said on stderr)."""
        from penstock.observe.retention import collect, collection_due

        self.collect_garbage = False
        project = self.project
        try:
            periods = retention_periods(project)
            if collection_due(self.store, periods, project=project.name):
                collect(
                    self.store,
                    periods,
                    project=project.name,
                    project_hash=project.project_hash,
                    objects=list(project.objects),
                )
        except Exception as exc:
            with contextlib.suppress(Exception):
                print(
                    redact(f"penstock: retention: old metadata not deleted: {first_line(exc)}"),
                    file=sys.stderr,
                    flush=True,
                )

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _say_lost(message: str) -> None:
    with contextlib.suppress(Exception):
        print(redact(f"penstock: {message}"), file=sys.stderr, flush=True)


class _StoreSink:
    """The metadata store as a queued sink: one event, or several queued at once in one
    transaction (the store itself outlives the bus: it is not the sink's to close)."""

    def __init__(self, store: MetadataStore) -> None:
        self.handle = store.handle
        self.handle_many = store.handle_many
