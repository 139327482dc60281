"""The metadata store's `schema_versions`: each observed schema of an object, once.

Written from `schema_version` events (the store records them as they come: a version already
known keeps its first-seen batch, so a rebuild sending them again changes nothing); read by
`penstock schema OBJECT`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from penstock.observe.events import SchemaVersionSeen, utcnow
from penstock.observe.schema import schema_versions


@dataclass(frozen=True)
class SchemaVersionRow:
    """One recorded schema version (see `SchemaVersionSeen` for the fields)."""

    object: str
    version: int
    fingerprint: str
    batch_id: str
    source_file: str
    extracted_at: datetime
    recorded_at: datetime
    columns: list[tuple[str, str]]
    new_columns: list[str]
    missing_columns: list[str]
    type_changes: dict[str, tuple[str, str]]
    policy: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "version": self.version,
            "fingerprint": self.fingerprint,
            "first_batch_id": self.batch_id,
            "first_source_file": self.source_file,
            "extracted_at": self.extracted_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "columns": [{"name": n, "type": t} for n, t in self.columns],
            "new_columns": self.new_columns,
            "missing_columns": self.missing_columns,
            "type_changes": {c: list(t) for c, t in self.type_changes.items()},
            "policy": self.policy,
        }


def record_schema_version(conn: sa.Connection, event: SchemaVersionSeen) -> None:
    """Insert the version unless the store knows it already."""
    c = schema_versions.c
    known = conn.execute(
        sa.select(c.version).where(
            c.project == event.project,
            c.object == event.object,
            c.fingerprint == event.fingerprint,
        )
    ).first()
    if known is not None:
        return
    conn.execute(
        schema_versions.insert().values(
            project=event.project,
            object=event.object,
            fingerprint=event.fingerprint,
            version=event.version,
            batch_id=event.batch_id,
            source_file=event.source_file,
            extracted_at=event.extracted_at,
            run_id=event.run_id,
            recorded_at=utcnow(),
            columns=[[name, kind] for name, kind in event.columns.items()],
            new_columns=list(event.new_columns),
            missing_columns=list(event.missing_columns),
            type_changes={col: list(types) for col, types in event.type_changes.items()},
            policy=dict(event.policy),
        )
    )


def read_schema_versions(
    engine: sa.Engine, project: str, object_name: str
) -> list[SchemaVersionRow]:
    """The object's recorded versions, oldest first."""
    c = schema_versions.c
    query = (
        sa.select(schema_versions)
        .where(c.project == project, c.object == object_name)
        .order_by(c.version, c.extracted_at)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        SchemaVersionRow(
            object=row["object"],
            version=row["version"],
            fingerprint=row["fingerprint"],
            batch_id=row["batch_id"],
            source_file=row["source_file"],
            extracted_at=row["extracted_at"],
            recorded_at=row["recorded_at"],
            columns=[(str(n), str(t)) for n, t in row["columns"]],
            new_columns=list(row["new_columns"]),
            missing_columns=list(row["missing_columns"]),
            type_changes={k: (v[0], v[1]) for k, v in row["type_changes"].items()},
            policy=dict(row["policy"]),
        )
        for row in rows
    ]
