"""The identities of the datasets a run reads and writes, as events carry them
(`penstock.observe.Dataset`), named the OpenLineage way: a namespace for the datasource, a
name for the dataset in it.

| dataset | namespace | name |
| --- | --- | --- |
| a landing file | `file` | its absolute path |
| a database relation | `postgres://host:port/db` (`mysql://`) | `table`, `query:<object>` |
| a staged batch | `file` | its directory in the lake (absolute) |
| an object's table | `duckdb://<absolute warehouse file>` (`duckdb://:memory:`) | `main.<table>` |
| its quarantine table | the same | `quarantine.<object>` |

A PostgreSQL warehouse would be `postgres://host:port` and `<database>.<schema>.<table>`.
Schemas: a landing file and a staged batch carry the batch's raw columns as staged; a table
the contract's columns with their declared types.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from penstock.catalog import ObjectSpec, Project
from penstock.lake import Manifest, StagedBatch
from penstock.observe import Dataset, SchemaField

QUARANTINE_SCHEMA = "quarantine"
DEFAULT_SCHEMA = "main"


@lru_cache(maxsize=64)
def _resolved(path: Path) -> Path:
    """`path` resolved once (every event of a run names the warehouse)."""
    return path.resolve()


def warehouse_namespace(project: Project) -> str:
    path = project.warehouse_path
    if path is not None:
        return f"duckdb://{_resolved(path)}"
    scheme = project.warehouse.split(":", 1)[0]
    if scheme == "duckdb":
        return "duckdb://:memory:"
    return scheme  # another engine: the scheme only (a URL may hold credentials)


def raw_fields(schema: Mapping[str, str]) -> tuple[SchemaField, ...]:
    return _fields(tuple(schema.items()))


@lru_cache(maxsize=64)
def _fields(schema: tuple[tuple[str, str], ...]) -> tuple[SchemaField, ...]:
    """A schema's fields, built once (the batches of an object share theirs; every batch's
    events name its landing file and staged batch with their fields)."""
    return tuple(SchemaField(name=name, type=kind) for name, kind in schema)


def contract_fields(obj: ObjectSpec) -> tuple[SchemaField, ...]:
    """The object table's columns as stored: a dropped column is not there, a hashed or
    masked one holds text (`pii:`)."""
    return tuple(
        SchemaField(
            name=name,
            type="text" if spec.pii in ("hash", "mask") else spec.type,
            description=spec.description,
        )
        for name, spec in obj.columns.items()
        if spec.pii != "drop"
    )


def landing_file(project: Project, source_file: str, schema: Mapping[str, str] = {}) -> Dataset:
    """A landing file, named by its path relative to the project (as batches record it)."""
    path = Path(source_file)
    absolute = path if path.is_absolute() else project.root / path
    return Dataset(namespace="file", name=str(absolute), role="landing", fields=raw_fields(schema))


def batch_origin(project: Project, manifest: Manifest) -> Dataset:
    """Where a staged batch came from: its landing file, or its database relation."""
    if manifest.window is None:
        return landing_file(project, manifest.source_file, manifest.schema)
    return database_relation(project, manifest.source, manifest.object, manifest.schema)


def database_relation(
    project: Project, source: str, object_name: str, schema: Mapping[str, str] = {}
) -> Dataset:
    """A database object's table or query, or a REST object's endpoint, named without
    credentials."""
    from urllib.parse import urlsplit

    from penstock.catalog.database import DatabaseSource
    from penstock.catalog.rest import RestSource

    spec = project.sources.get(source)
    obj = project.objects.get(object_name)
    namespace, name = source, f"query:{object_name}"
    if isinstance(spec, RestSource):
        endpoint = obj.endpoint if obj is not None and obj.endpoint else object_name
        return Dataset(
            namespace=spec.display(), name=endpoint, role="landing", fields=raw_fields(schema)
        )
    if isinstance(spec, DatabaseSource):
        parts = urlsplit(spec.url)
        port = f":{parts.port}" if parts.port else ""
        namespace = f"{spec.kind}://{parts.hostname or 'localhost'}{port}{parts.path}"
    if obj is not None and obj.table is not None:
        name = obj.table
    return Dataset(namespace=namespace, name=name, role="landing", fields=raw_fields(schema))


def staged_batch(batch: StagedBatch) -> Dataset:
    return Dataset(
        namespace="file",
        name=str(batch.directory.absolute()),  # the lake's path is the project's, absolute
        role="stage",
        fields=raw_fields(batch.manifest.schema),
    )


def object_table(project: Project, obj: ObjectSpec) -> Dataset:
    return Dataset(
        namespace=warehouse_namespace(project),
        name=f"{DEFAULT_SCHEMA}.{obj.table_name}",
        role="table",
        fields=contract_fields(obj),
    )


def quarantine_table(project: Project, obj: ObjectSpec) -> Dataset:
    return Dataset(
        namespace=warehouse_namespace(project),
        name=f"{QUARANTINE_SCHEMA}.{obj.name}",
        role="quarantine",
    )


def source_directory(path: Path) -> Dataset:
    return Dataset(namespace="file", name=str(path.resolve()), role="landing")
