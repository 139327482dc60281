"""`penstock quarantine OBJECT`: the quarantine rows a person asked for, with the context to
read them (source file, load order, superseded), from a read-only warehouse connection.

The options become a `QuarantineSelection` the warehouse runs as one query: `--batch` is
resolved here against the object's ledger rows (an id, a unique id prefix, or the source
file a batch came from), `--file` and `--reason` are checked and passed on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from penstock.catalog import ObjectSpec, Project
from penstock.engine.status import warehouse_file
from penstock.errors import UsageError
from penstock.warehouse import Warehouse, connect_warehouse, is_server
from penstock.warehouse.quarantine import (
    FIELDS,
    REASON_KINDS,
    QuarantinePage,
    QuarantineSelection,
    reason_kind,
)


@dataclass(frozen=True)
class QuarantineRequest:
    """What the command line asked for (raw option values)."""

    reasons: tuple[str, ...] = ()
    batch: str | None = None
    file: str | None = None
    columns: tuple[str, ...] | None = None
    hide_superseded: bool = False
    limit: int | None = 50


@dataclass(frozen=True)
class QuarantineView:
    object: str
    load: str
    key: tuple[str, ...]
    columns: tuple[str, ...]  # the contract columns returned
    page: QuarantinePage
    batch_ids: tuple[str, ...] | None  # what --batch resolved to
    reasons_present: list[tuple[str, int]] = field(default_factory=list)  # when none matched
    notes: list[str] = field(default_factory=list)


def object_spec(project: Project, name: str) -> ObjectSpec:
    if name not in project.objects:
        raise UsageError(f"unknown object '{name}' (objects: {', '.join(sorted(project.objects))})")
    return project.objects[name]


def pick_columns(obj: ObjectSpec, wanted: Sequence[str] | None) -> tuple[str, ...]:
    """The contract columns named by --columns (any letter case), in the order given."""
    if wanted is None:
        return tuple(obj.columns)
    by_lower = {c.lower(): c for c in obj.columns}
    picked: list[str] = []
    unknown: list[str] = []
    for name in wanted:
        column = by_lower.get(name.strip().lower())
        if column is None:
            unknown.append(name)
        elif column not in picked:
            picked.append(column)
    if unknown or not picked:
        what = f"unknown column(s) {', '.join(repr(u) for u in unknown)}" if unknown else "none"
        raise UsageError(f"--columns: {what} (columns of {obj.name}: {', '.join(obj.columns)})")
    return tuple(picked)


def check_reasons(values: Sequence[str]) -> tuple[str, ...]:
    """--reason values; an unknown kind (`typo:amount`) is a usage error listing the kinds."""
    checked = []
    for value in values:
        if not value.strip():
            continue
        if reason_kind(value) not in REASON_KINDS:
            raise UsageError(
                f"--reason {value!r}: unknown kind '{reason_kind(value)}' (kinds: "
                f"{', '.join(REASON_KINDS)}; e.g. type:amount, or type: for every type reason)"
            )
        checked.append(value.strip())
    return tuple(checked)


def project_relative(project: Project, value: str) -> str:
    """A path as the ledger records source files: relative to the project directory when it
    lies inside it (`./landing/a.csv`, an absolute path, or a path from the current directory
    all become `landing/a.csv`); anything else unchanged."""
    text = value.strip()
    if any(ch in text for ch in "*?["):
        return text.removeprefix("./")
    for candidate in (Path(text), project.root / text):
        try:
            return str(candidate.resolve().relative_to(project.root.resolve()))
        except (ValueError, OSError):
            continue
    return text.removeprefix("./")


def resolve_batches(
    project: Project, obj: ObjectSpec, value: str, ledger: Sequence[tuple[str, str | None]]
) -> tuple[str, ...]:
    """The batch ids --batch names: an id (with or without `<object>-`), a source file (every
    batch loaded from that path; a file name or the end of a path will do), or a unique
    prefix of an id."""
    text = value.strip()
    if not text:
        raise UsageError("--batch: give a batch id, a unique prefix of one, or a source file")
    ids = [b for b, _ in ledger]
    for exact in (text, f"{obj.name}-{text}"):
        if exact in ids:
            return (exact,)
    path = project_relative(project, text)
    by_file = tuple(b for b, f in ledger if f is not None and f in (text, path))
    if not by_file:  # a file name, or the end of a path: "drop_002.csv", "orders/drop_002.csv"
        tail = "/" + path.lstrip("/")
        by_file = tuple(b for b, f in ledger if f is not None and f.endswith(tail))
    if by_file:
        return by_file
    prefixed = [b for b in ids if b.startswith(text) or b.startswith(f"{obj.name}-{text}")]
    if len(prefixed) == 1:
        return (prefixed[0],)
    if prefixed:
        shown = ", ".join(prefixed[:5]) + (" …" if len(prefixed) > 5 else "")
        raise UsageError(
            f"--batch {text!r} matches {len(prefixed)} batches of {obj.name} ({shown}): "
            f"give more of the id"
        )
    raise UsageError(
        f"--batch {text!r}: no loaded batch of {obj.name} has that id or source file "
        f"(`penstock batches {obj.name}` lists them)"
    )


def open_read_only(
    project: Project, notes: list[str], *, wait: float, on_wait: Callable[[str], None] | None
) -> Warehouse | None:
    """The warehouse over a read-only connection (through its engine's adapter), waiting up
    to `wait` seconds while a run holds a DuckDB file (then WarehouseLocked names the run's
    process); None with a note when there is no warehouse file to read."""
    if not is_server(project) and warehouse_file(project, notes) is None:
        return None
    return connect_warehouse(project, wait=wait, on_wait=on_wait, read_only=True)


def read_quarantine_view(
    project: Project,
    object_name: str,
    request: QuarantineRequest,
    *,
    wait: float = 0.0,
    on_wait: Callable[[str], None] | None = None,
) -> QuarantineView:
    obj = object_spec(project, object_name)
    columns = pick_columns(obj, request.columns)
    reasons = check_reasons(request.reasons)
    notes: list[str] = []
    empty = QuarantinePage((*FIELDS, *columns), [], 0, 0)
    warehouse = open_read_only(project, notes, wait=wait, on_wait=on_wait)
    if warehouse is None:
        if request.batch:
            raise UsageError(f"--batch {request.batch!r}: {notes[0]}")
        return QuarantineView(obj.name, obj.load, obj.key, columns, empty, None, notes=notes)
    try:
        batch_ids = None
        if request.batch is not None:
            ledger = warehouse.batch_files(obj.name)
            batch_ids = resolve_batches(project, obj, request.batch, ledger)
        selection = QuarantineSelection(
            reasons=reasons,
            batch_ids=batch_ids,
            file=project_relative(project, request.file) if request.file else None,
            hide_superseded=request.hide_superseded,
            columns=columns,
            limit=request.limit,
        )
        page = warehouse.quarantine_page(obj, selection)
        present = warehouse.quarantine_reasons(obj) if page.total == 0 else []
    finally:
        warehouse.close()
    return QuarantineView(obj.name, obj.load, obj.key, columns, page, batch_ids, present, notes)
