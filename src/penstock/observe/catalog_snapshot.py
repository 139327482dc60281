"""The project catalog as plain rows, independent of the YAML model, for the metadata store."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceRow:
    name: str
    kind: str
    owner: str | None
    description: str | None


@dataclass(frozen=True, slots=True)
class ObjectRow:
    name: str
    source: str
    group: str
    load: str
    key: tuple[str, ...]
    order_by: str | None
    on_invalid: str
    table: str
    description: str | None
    owner: str | None


@dataclass(frozen=True, slots=True)
class AttributeRow:
    object: str
    name: str
    ordinal: int
    type: str
    required: bool
    description: str | None
    pii: str | None = None


@dataclass(frozen=True, slots=True)
class CatalogSnapshot:
    project: str
    project_hash: str
    sources: tuple[SourceRow, ...]
    objects: tuple[ObjectRow, ...]
    attributes: tuple[AttributeRow, ...]
    groups: tuple[str, ...]
