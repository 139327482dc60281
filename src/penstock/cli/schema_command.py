"""`penstock schema OBJECT`: the schema versions an object's staged batches were seen with."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from penstock.cli.render import console, print_json, table
from penstock.cli.shared import JsonOpt, ProjectOpt, app, example, when
from penstock.errors import UsageError


@app.command(epilog=example("penstock schema orders", "penstock schema orders --json"))
def schema(
    object_name: Annotated[str, typer.Argument(help="The object.", show_default=False)],
    project: ProjectOpt = Path(),
    as_json: JsonOpt = False,
) -> None:
    """Schema versions: each set of columns and types an object's files came with.

    Each version with the batch and file it was first seen in, and how it differs from the
    contract (new and missing columns, type changes) under the object's schema_drift policy."""
    from penstock.cli.shared import load
    from penstock.observe.store import MetadataStore

    proj = load(project)
    if object_name not in proj.objects:
        names = ", ".join(proj.objects) or "none"
        raise UsageError(f"unknown object '{object_name}' (objects: {names})")
    with MetadataStore(proj.metadata_url) as store:
        versions = store.schema_versions(proj.name, object_name)
    if as_json:
        print_json(
            {
                "project": proj.name,
                "object": object_name,
                "schema_drift": proj.objects[object_name].schema_drift.model_dump(),
                "versions": [v.as_dict() for v in versions],
            }
        )
        return
    if not versions:
        console.print(f"no schema seen yet for {object_name}: `penstock run` stages its files")
        return
    rows = []
    for v in versions:
        drift = [f"new: {', '.join(v.new_columns)}"] if v.new_columns else []
        drift += [f"missing: {', '.join(v.missing_columns)}"] if v.missing_columns else []
        drift += [f"{c}: {d} → {o}" for c, (d, o) in v.type_changes.items()]
        rows.append(
            (
                str(v.version),
                when(v.extracted_at),
                escape(v.source_file),
                v.batch_id[:12],
                escape(", ".join(f"{n} {t}" for n, t in v.columns)),
                escape("; ".join(drift) or "as the contract"),
            )
        )
    policy = proj.objects[object_name].schema_drift
    console.print(
        table(
            f"Schema versions of {object_name} (first seen)",
            ["version", "extracted", "file", "batch", "columns", "against the contract"],
            rows,
            text_columns=["file", "columns", "against the contract"],
        )
    )
    console.print(
        f"schema_drift: new_columns {policy.new_columns}, missing_columns "
        f"{policy.missing_columns}, type_changes {policy.type_changes}",
        highlight=False,
    )
