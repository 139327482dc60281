"""`penstock status`: per object, where it stands, read from the metadata store.

An object's `last_status` is its outcome in the latest run that selected it (the words of
`penstock.outcomes`): `failed` if a step of the object failed there, `warning` if rows broke
its contract, `success` otherwise, also when that run had nothing new to do for it
(`last_batch_at` still says when it last loaded a batch); `running` while that run is at it,
`abandoned` if its process was killed before the object's work ended, `upstream_failed` if
that run did not run it because an object it depends on failed (engine/plan.py). The runner
records each object's work as an `object` step.

Its figures in the warehouse (rows in the table, batches in the ledger, quarantine rows held
back and loaded anyway) and in the lake (landing files rejected as unreadable, `penstock
batches` lists them) are those the runner counted when the object's work in a run ended
(`counted_at`), so status opens neither DuckDB nor SQLAlchemy (on a SQLite store) and answers
in well under 0.2 s, also while a run holds the warehouse. Only an object run before counts
were recorded (a store from an older penstock) is counted in the warehouse itself, read-only,
once: its next run records its counts. A warehouse file that does not exist has no figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from penstock.catalog import Project
    from penstock.catalog.outline import ProjectOutline
    from penstock.observe.source_health import SourceHealth
    from penstock.observe.status_reads import ObjectCounts
    from penstock.warehouse import Warehouse


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
    counted_at: datetime | None = None  # when the figures were counted
    # landing files that cannot be read, recorded as rejected batches (`penstock batches`)
    batches_rejected: int | None = None


@dataclass(frozen=True)
class ProjectStatus:
    project: str
    objects: list[ObjectState]
    notes: list[str] = field(default_factory=list)
    # each source's recent availability, from the samples runs recorded (observe/source_health)
    sources: list[SourceHealth] = field(default_factory=list)


def warehouse_file(project: Project | ProjectOutline, notes: list[str]) -> Path | None:
    """The warehouse's DuckDB file to read, or None with the reason appended to `notes` (an
    in-memory warehouse, or one no run has created yet)."""
    path = project.warehouse_path
    if path is None:
        notes.append("the warehouse is in memory: it holds nothing between commands")
        return None
    if not path.exists():
        notes.append("the warehouse does not exist yet: `penstock run` creates it")
        return None
    return path


def open_for_reading(project: Project | ProjectOutline, notes: list[str]) -> Warehouse | None:
    """The warehouse, read-only (through its engine's adapter), or None with the reason
    appended to `notes`."""
    from penstock.errors import WarehouseError, WarehouseLocked
    from penstock.warehouse import connect_warehouse, is_server

    if not is_server(project) and warehouse_file(project, notes) is None:
        return None
    try:
        return connect_warehouse(project, read_only=True)
    except (WarehouseError, WarehouseLocked) as exc:
        notes.append(f"warehouse figures unavailable (is a run holding it?): {exc.message}")
        return None


def project_status(project: ProjectOutline) -> ProjectStatus:
    from penstock.observe import status_reads

    objects = project.objects_in_order()
    names = [o.name for o in objects]
    from penstock.observe.source_health import source_health

    with status_reads.reading(project.metadata_url) as rows:
        states = status_reads.object_status(rows, names, totals=False)
        counts = status_reads.object_counts(rows, project.name, names)
        sources = source_health(rows, project.name, project.sources)
    from penstock.catalog.locations import is_server_warehouse

    notes: list[str] = []
    path = project.warehouse_path
    if path is None and not is_server_warehouse(project.warehouse):
        notes.append("the warehouse is in memory: it holds nothing between commands")
        counts = {}
    elif path is not None and not path.exists():
        notes.append("the warehouse does not exist yet: `penstock run` creates it")
        counts = {}
    else:
        tables = {o.name: o.table_name for o in objects}
        # counts of another table (`table:` changed since) do not describe this one
        counts = {n: c for n, c in counts.items() if c.table_name == tables[n]}
        uncounted = [n for n in names if n not in counts and states[n].last_run_id is not None]
        if uncounted:
            counts |= _count_in_warehouse(project, uncounted, notes)
    out = []
    for obj in objects:
        state, counted = states[obj.name], counts.get(obj.name)
        out.append(
            ObjectState(
                object=obj.name,
                table=obj.table_name,
                load=obj.load,
                last_run_id=state.last_run_id,
                last_status=state.last_status,
                last_run_at=state.last_run_at,
                last_batch_at=state.last_batch_at,
                batches_loaded=counted.batches_loaded if counted else None,
                rows=counted.rows if counted else None,
                rows_quarantined=counted.rows_quarantined if counted else None,
                rows_warned=counted.rows_warned if counted else None,
                counted_at=counted.counted_at if counted else None,
                batches_rejected=counted.batches_rejected if counted else None,
            )
        )
    return ProjectStatus(project.name, out, notes, sources)


def _count_in_warehouse(
    outline: ProjectOutline, names: list[str], notes: list[str]
) -> dict[str, ObjectCounts]:
    """Count objects in the warehouse itself (read-only): the objects whose runs recorded no
    counts. Loads the whole project (the warehouse reads take its object specs)."""
    from penstock.catalog import load_project
    from penstock.lake import Lake
    from penstock.observe.events import utcnow
    from penstock.observe.status_reads import ObjectCounts

    project = load_project(outline.file)
    warehouse = open_for_reading(project, notes)
    if warehouse is None:
        return {}
    lake = Lake(project.lake_path)
    out = {}
    try:
        for name in names:
            obj = project.objects[name]
            out[name] = ObjectCounts(
                object=name,
                table_name=obj.table_name,
                run_id=None,
                counted_at=utcnow(),
                rows=warehouse.table_rows(obj),
                batches_loaded=len(warehouse.loaded_batches(name)),
                rows_quarantined=warehouse.quarantine_count(obj, loaded=False),
                rows_warned=warehouse.quarantine_count(obj, loaded=True),
                batches_rejected=lake.rejected_count(name),
            )
    finally:
        warehouse.close()
    return out
