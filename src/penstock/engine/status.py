"""`penstock status`: per object, what the metadata store and the warehouse know.

An object's `last_status` is its outcome in the latest run that selected it: `failed` if a
step of the object failed there, `warning` if rows broke its contract, `success` otherwise,
also when that run had nothing new to do for it (`last_batch_at` still says when it last
loaded a batch); `running` while that run is at it, `abandoned` if its process was killed
before the object's work ended. The runner records each object's work as an `object` step.

The warehouse is opened read-only and only if it exists. While a run holds DuckDB's file lock
the status still answers from the metadata store (the run shows as running) and says why the
warehouse figures are missing, instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from penstock.catalog import Project
from penstock.errors import WarehouseError, WarehouseLocked
from penstock.observe import MetadataStore
from penstock.warehouse import DuckDBWarehouse


@dataclass(frozen=True)
class ObjectState:
    object: str
    table: str
    load: str
    last_run_id: str | None
    last_status: str | None
    last_run_at: datetime | None
    last_batch_at: datetime | None
    batches_loaded: int | None
    rows: int | None
    rows_quarantined: int | None  # held back
    rows_warned: int | None  # in quarantine but loaded anyway (on_invalid warn)


@dataclass(frozen=True)
class ProjectStatus:
    project: str
    objects: list[ObjectState]
    notes: list[str] = field(default_factory=list)


def open_for_reading(project: Project, notes: list[str]) -> DuckDBWarehouse | None:
    """The warehouse, read-only, or None with the reason appended to `notes`."""
    path = project.warehouse_path
    if path is None:
        notes.append("the warehouse is in memory: it holds nothing between commands")
        return None
    if not path.exists():
        notes.append("the warehouse does not exist yet: `penstock run` creates it")
        return None
    try:
        return DuckDBWarehouse(path, project.warehouse_options, read_only=True)
    except (WarehouseError, WarehouseLocked) as exc:
        notes.append(f"warehouse figures unavailable (is a run holding it?): {exc.message}")
        return None


def project_status(project: Project) -> ProjectStatus:
    objects = project.objects_in_order()
    with MetadataStore(project.metadata_url) as store:
        states = store.object_status([o.name for o in objects])
    notes: list[str] = []
    warehouse = open_for_reading(project, notes)
    rows = []
    try:
        for obj in objects:
            state = states[obj.name]
            rows.append(
                ObjectState(
                    object=obj.name,
                    table=obj.table_name,
                    load=obj.load,
                    last_run_id=state.last_run_id,
                    last_status=state.last_status,
                    last_run_at=state.last_run_at,
                    last_batch_at=state.last_batch_at,
                    batches_loaded=len(warehouse.loaded_batches(obj.name)) if warehouse else None,
                    rows=warehouse.table_rows(obj) if warehouse else None,
                    rows_quarantined=(
                        warehouse.quarantine_count(obj, loaded=False) if warehouse else None
                    ),
                    rows_warned=warehouse.quarantine_count(obj, loaded=True) if warehouse else None,
                )
            )
    finally:
        if warehouse is not None:
            warehouse.close()
    return ProjectStatus(project.name, rows, notes)
