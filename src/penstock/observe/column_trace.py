"""`penstock lineage MODEL.COLUMN`: where a column's values come from, down to the landing
files or source tables, from the column lineage the store recorded (observe/lineage.py).

A model's column comes from columns of the tables its latest build read (its SQL's column
lineage); each of those is an object's column, traced further, or another model's, traced the
same way. An object's column comes from a column of its staged batches (its latest load's
lineage), which come from its landing files or database relation (its stage steps' inputs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from penstock.errors import UsageError
from penstock.observe.lineage_graph import latest_column_lineage
from penstock.observe.schema import lineage

MAX_ORIGINS = 20  # landing files listed per object (the newest)


@dataclass
class ColumnNode:
    """One column on the way: of a model or an object (`unit`), or where an object's rows were
    read (`kind` landing)."""

    unit: str
    kind: str  # model | object | unknown
    column: str
    dataset: str  # the warehouse table (main.orders)
    how: str | None = None  # how the column above is made of this one
    stage_column: str | None = None  # an object: the staged batches' column it is typed from
    origins: list[str] = field(default_factory=list)  # an object: its landing files / tables
    origins_total: int = 0
    sources: list[ColumnNode] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "unit": self.unit,
            "kind": self.kind,
            "column": self.column,
            "dataset": self.dataset,
            "how": self.how,
        }
        if self.kind == "object":
            out |= {
                "stage_column": self.stage_column,
                "origins": self.origins,
                "origins_total": self.origins_total,
            }
        out["sources"] = [s.as_dict() for s in self.sources]
        return out


def trace_column(
    engine: sa.Engine,
    project: str,
    unit: str,
    column: str,
    kinds: Mapping[str, str],
    tables: Mapping[str, str],
) -> ColumnNode:
    """The tree of where `unit`.`column` comes from; `kinds`: unit → object | model,
    `tables`: a warehouse table's name → its unit."""
    with engine.connect() as conn:
        recorded = latest_column_lineage(conn, project, unit)
        if recorded is None:
            raise UsageError(
                f"no column lineage recorded for '{unit}': run it first (`penstock run`)",
                object=unit,
            )
        if column not in recorded:
            known = ", ".join(sorted(recorded)) or "none recorded"
            raise UsageError(
                f"'{unit}' has no column '{column}' in its recorded lineage (columns: {known})",
                object=unit,
                column=column,
            )
        return _node(conn, project, unit, column, kinds, tables, None, set())


def _node(
    conn: sa.Connection,
    project: str,
    unit: str,
    column: str,
    kinds: Mapping[str, str],
    tables: Mapping[str, str],
    how: str | None,
    seen: set[tuple[str, str]],
) -> ColumnNode:
    kind = kinds.get(unit, "unknown")
    node = ColumnNode(unit, kind, column, f"main.{_table_of(unit, tables)}", how)
    if (unit, column) in seen or kind == "unknown":
        return node
    seen = seen | {(unit, column)}
    recorded = latest_column_lineage(conn, project, unit) or {}
    inputs = recorded.get(column, [])
    if kind == "object":
        node.stage_column = ", ".join(dict.fromkeys(i[2] for i in inputs)) or None
        node.origins, node.origins_total = _origins(conn, project, unit)
        return node
    for _namespace, name, fld, subtype in inputs:
        table = name.split(".", 1)[-1]
        source = tables.get(table, table)
        node.sources.append(_node(conn, project, source, fld, kinds, tables, subtype, seen))
    return node


def _table_of(unit: str, tables: Mapping[str, str]) -> str:
    return next((t for t, u in tables.items() if u == unit), unit)


def _origins(conn: sa.Connection, project: str, unit: str) -> tuple[list[str], int]:
    """The landing files (or database relations) an object's stage steps read, newest first."""
    c = lineage.c
    rows = conn.execute(
        sa.select(c.namespace, c.name, sa.func.max(c.at).label("last"))
        .where(
            c.project == project,
            c.object == unit,
            c.role == "landing",
            c.direction == "input",
        )
        .group_by(c.namespace, c.name)
        .order_by(sa.desc("last"), c.name)
    ).all()
    shown = [r.name if r.namespace == "file" else f"{r.namespace}/{r.name}" for r in rows]
    return shown[:MAX_ORIGINS], len(shown)
