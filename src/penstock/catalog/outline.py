"""A project's outline: its name, sources (name, kind), objects (name, table, load mode, in
order) and where its warehouse and metadata store are. What `penstock status` and `penstock
runs` need, read fast.

Loading the whole project validates every contract: pydantic models, check expressions
compiled by sqlglot and vetted by DuckDB, ~0.4 s before anything is shown. The outline reads
the same files the same way (penstock.yml, then its `include:` globs, each sorted; the YAML
reader and `${env:…}`/`${file:…}` references of the loader, so secrets are registered for
redaction) and takes only those few keys. Whatever it does not understand (a file that does
not parse, a reference that does not resolve, a key of the wrong shape, a name defined twice,
an unknown load mode, an invalid URL) it leaves to the full load, which reports the problem
with file and line: `read_outline` then returns the full project's outline, or raises its
errors. A problem elsewhere in the contracts (a column's type, a check) does not stop the
outline: `penstock check` and `penstock run` report those.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from penstock.catalog.locations import (
    DEFAULT_METADATA,
    DEFAULT_WAREHOUSE,
    metadata_url,
    url_problem,
    warehouse_options,
    warehouse_path,
)

if TYPE_CHECKING:
    from penstock.catalog.models import Project

PROJECT_FILE = "penstock.yml"
LOAD_MODES = ("append", "merge", "scd2", "replace")
_SECTIONS = ("sources", "objects")


@dataclass(frozen=True)
class ObjectOutline:
    name: str
    table_name: str
    load: str


@dataclass(frozen=True)
class ProjectOutline:
    """The part of a project that status and runs read (same names as on `Project`)."""

    name: str
    root: Path
    file: Path  # what `load_project` reads: the project file, or its directory
    warehouse: str
    metadata: str
    objects: tuple[ObjectOutline, ...]
    sources: tuple[tuple[str, str], ...] = ()  # (name, kind), as declared

    def objects_in_order(self) -> list[ObjectOutline]:
        return list(self.objects)

    @property
    def warehouse_path(self) -> Path | None:
        return warehouse_path(self.root, self.warehouse)

    @property
    def warehouse_options(self) -> dict[str, str]:
        return warehouse_options(self.warehouse)

    @property
    def metadata_url(self) -> str:
        return metadata_url(self.root, self.metadata)


def outline_of(project: Project, file: Path | None = None) -> ProjectOutline:
    """The outline of a fully loaded project (read from `file`, default: its directory)."""
    return ProjectOutline(
        name=project.name,
        root=project.root,
        file=file or project.root,
        warehouse=project.warehouse,
        metadata=project.metadata,
        objects=tuple(
            ObjectOutline(o.name, o.table_name, o.load) for o in project.objects_in_order()
        ),
        sources=tuple((name, spec.kind) for name, spec in project.sources.items()),
    )


def read_outline(path: str | Path = ".") -> ProjectOutline:
    """The outline of the project at `path` (its directory or its penstock.yml); see above."""
    outline = _read(Path(path).expanduser())
    if outline is not None:
        return outline
    from penstock import catalog  # the full load: it raises what is wrong with the files

    return outline_of(catalog.load_project(path), Path(path))


class _Unsure(Exception):
    """Something the outline leaves to the full load."""


def _read(given: Path) -> ProjectOutline | None:
    project_file = given if given.is_file() else given / PROJECT_FILE
    if not project_file.is_file():
        return None
    project_file = project_file.resolve()
    root = project_file.parent
    try:
        main = _document(project_file, project_file.name, root)
        objects: dict[str, ObjectOutline] = {}
        sources: dict[str, str] = {}
        for section in _SECTIONS:
            _merge(objects, sources, section, main.get(section))
        for document in _includes(main.get("include"), project_file, root):
            for key, value in document.items():
                if key not in _SECTIONS:
                    raise _Unsure(key)
                _merge(objects, sources, key, value)
        name = main.get("name")
        warehouse = main.get("warehouse", DEFAULT_WAREHOUSE)
        metadata = main.get("metadata", DEFAULT_METADATA)
        if not isinstance(name, str) or not isinstance(warehouse, str):
            raise _Unsure("name or warehouse")
        if not isinstance(metadata, str):
            raise _Unsure("metadata")
        if url_problem(warehouse, DEFAULT_WAREHOUSE) or url_problem(metadata, DEFAULT_METADATA):
            raise _Unsure("url")
    except _Unsure:
        return None
    return ProjectOutline(
        name,
        root,
        project_file,
        warehouse,
        metadata,
        tuple(objects.values()),
        tuple(sources.items()),
    )


def _document(path: Path, name: str, root: Path) -> dict[str, Any]:
    from penstock.catalog.references import resolve_references
    from penstock.catalog.yaml_lines import load_yaml
    from penstock.errors import PenstockError

    try:
        document = load_yaml(path, name)
    except PenstockError:
        raise _Unsure(name) from None
    data, errors = resolve_references(
        document.data, file=name, lines=document.lines, root=root, weak=[]
    )
    if errors or not isinstance(data, dict):
        raise _Unsure(name)
    return data


def _includes(patterns: Any, project_file: Path, root: Path) -> list[dict[str, Any]]:
    """The included files' documents, in the loader's order (each glob sorted, once each)."""
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise _Unsure("include")
    seen = {project_file}
    documents = []
    for pattern in patterns:
        if Path(pattern).is_absolute():
            raise _Unsure(pattern)
        try:
            matches = sorted(root.glob(pattern))
        except ValueError:
            raise _Unsure(pattern) from None
        for match in matches:
            path = match.resolve()
            if path in seen or not path.is_file():
                continue
            seen.add(path)
            documents.append(_document(path, Path(os.path.relpath(path, root)).as_posix(), root))
    return documents


def _merge(
    objects: dict[str, ObjectOutline], sources: dict[str, str], section: str, entries: Any
) -> None:
    if entries is None:
        return
    if not isinstance(entries, dict):
        raise _Unsure(section)
    if section == "sources":
        for name, spec in entries.items():
            kind = spec.get("kind") if isinstance(spec, dict) else None
            if name in sources or not isinstance(kind, str):
                raise _Unsure(name)
            sources[name] = kind
        return
    for name, spec in entries.items():
        if name in objects or not isinstance(spec, dict):
            raise _Unsure(name)
        table = spec.get("target") or name
        load = spec.get("load")
        if load is None:  # the loader's default: merge for an object with a key, else a
            # snapshot (replace) for a database or REST object, append for files
            reread = any(spec.get(k) is not None for k in ("table", "query", "endpoint"))
            load = "merge" if spec.get("key") else "replace" if reread else "append"
        if not isinstance(table, str) or load not in LOAD_MODES:
            raise _Unsure(name)
        objects[name] = ObjectOutline(name, table, load)
