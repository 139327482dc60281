"""`penstock quarantine OBJECT`: the rows held back, with their reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from penstock.cli.render import (
    console,
    print_json,
    table,
)
from penstock.cli.shared import JsonOpt, ProjectOpt, app, load
from penstock.errors import UsageError, WarehouseError


@app.command()
def quarantine(
    object_name: Annotated[str, typer.Argument(metavar="OBJECT", help="The object.")],
    project: ProjectOpt = Path(),
    limit: Annotated[int, typer.Option(help="How many rows at most (0: all).")] = 50,
    batch: Annotated[str | None, typer.Option(help="Only this batch id.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Quarantined rows of an object with their reasons, batch and record number; "loaded"
    says yes for a row on_invalid warn loaded anyway, no for a row held back."""
    from penstock.engine.status import open_for_reading

    proj = load(project)
    if object_name not in proj.objects:
        raise UsageError(
            f"unknown object '{object_name}' (objects: {', '.join(sorted(proj.objects))})"
        )
    obj = proj.objects[object_name]
    notes: list[str] = []
    warehouse = open_for_reading(proj, notes)
    if warehouse is None and notes and notes[0].startswith("warehouse figures unavailable"):
        raise WarehouseError(notes[0])
    total, rows = 0, []
    if warehouse is not None:
        try:
            total = warehouse.quarantine_count(obj)
            rows = warehouse.quarantine_rows(obj, limit or None, batch)
        finally:
            warehouse.close()
    if as_json:
        print_json({"object": object_name, "total": total, "rows": rows})
        return
    columns = ["batch", "row", "loaded", "reasons", *obj.columns]
    shown = [
        (
            r["_source_file"] or r["_batch_id"],
            r["_row_number"],
            "yes" if r["_loaded"] else "no",
            ", ".join(r["_reasons"]),
            *(
                (r["_raw_line"] if r["_raw_line"] is not None and i == 0 else r[c])
                for i, c in enumerate(obj.columns)
            ),
        )
        for r in rows
    ]
    console.print(
        table(
            f"quarantine.{object_name}: {len(rows)} of {total:,} row(s)",
            columns,
            shown,
            text_columns=["loaded"],
        )
    )
