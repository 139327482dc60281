"""Read a project directory into a validated `Project`.

`penstock.yml` is read first, then every file its `include:` globs match (sorted per glob);
their `sources:` and `objects:` merge in. References are resolved per file, then the whole is
validated at once so that every problem is reported, each with file, line and key path.
"""

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from penstock.catalog.diagnostics import allowed_keys, did_you_mean, translate
from penstock.catalog.expression_cache import CACHE_FILE, remembered
from penstock.catalog.models import ObjectSpec, Project
from penstock.catalog.references import resolve_references
from penstock.catalog.yaml_lines import (
    KeyPath,
    YamlDocument,
    format_key_path,
    line_for,
    load_yaml,
)
from penstock.errors import ProjectError, ProjectErrors

PROJECT_FILE = "penstock.yml"
SECTIONS = ("sources", "objects")
_SINGULAR = {"sources": "source", "objects": "object"}


def load_project(path: str | Path = ".") -> Project:
    """Load and validate the project at `path` (its directory or its penstock.yml).

    Raises ProjectError when there is no penstock.yml, ProjectErrors listing every problem
    found in the project files otherwise.
    """
    given = Path(path).expanduser()
    project_file = given if given.is_file() else given / PROJECT_FILE
    if not project_file.is_file():
        raise ProjectError(f"no {PROJECT_FILE} in {given.resolve()}")
    project_file = project_file.resolve()
    return _Reader(project_file).read()


class _Reader:
    def __init__(self, project_file: Path) -> None:
        self.project_file = project_file
        self.root = project_file.parent
        self.main_name = project_file.name
        self.errors: list[ProjectError] = []
        self.locations: dict[KeyPath, tuple[str, int]] = {}
        self.files: list[str] = []
        self.sections: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
        self.unresolved: set[str] = set()
        self.written: list[tuple[KeyPath, str]] = []
        self.weak: list[str] = []

    def read(self) -> Project:
        main = self._document(self.project_file, self.main_name)
        if main is None:
            raise ProjectErrors(self.errors)
        data = dict(main.data)
        self._record(main, lambda path: True)
        for key in sorted(Project.internal_fields & data.keys()):
            self._error("unknown key" + did_you_mean(key, allowed_keys(Project)), (key,), main)
            del data[key]
        mergeable = [s for s in SECTIONS if isinstance(data.get(s, {}), dict | None)]
        for section in mergeable:
            self._merge(main, section, data.get(section) or {})
        for document in self._includes(data.get("include"), main):
            self._merge_included(document, mergeable)
        payload = {
            **data,
            "root": self.root,
            "origins": self._origins(),
            "written_references": tuple(self.written),
            "weak_secrets": tuple(self.weak),
        }
        payload.update({section: self.sections[section] for section in mergeable})
        try:
            with remembered(self.root / CACHE_FILE):
                project = Project.model_validate(payload)
        except ValidationError as exc:
            # A value whose reference failed is still the raw `${...}` text: its other
            # complaints would only repeat the reference error.
            self.errors.extend(
                error
                for error in translate(exc, Project, self.locations, self.main_name)
                if not _below(error.fields.get("key_path"), self.unresolved)
            )
        if self.errors:
            rank = {name: index for index, name in enumerate(self.files)}
            self.errors.sort(
                key=lambda e: (rank.get(e.fields.get("file") or "", 0), e.fields.get("line") or 0)
            )
            raise ProjectErrors(self.errors)
        return project

    def _document(self, path: Path, name: str, *, included: bool = False) -> YamlDocument | None:
        """Parse one file and resolve its references; None when it cannot be parsed. An
        included file with no document declares nothing (`penstock discover ... >
        objects/x.yml` empties the file it writes before the command loads the project)."""
        self.files.append(name)
        try:
            document = load_yaml(path, name, empty_ok=included)
        except ProjectErrors as exc:
            self.errors.extend(exc.errors)
            return None
        except ProjectError as exc:
            self.errors.append(exc)
            return None
        self.written.extend(_references_as_written(document.data, ()))
        data, errors = resolve_references(
            document.data, file=name, lines=document.lines, root=self.root, weak=self.weak
        )
        self.errors.extend(errors)
        self.unresolved.update(e.fields["key_path"] for e in errors if e.fields.get("key_path"))
        return YamlDocument(file=name, data=data, lines=document.lines)

    def _includes(self, patterns: Any, main: YamlDocument) -> list[YamlDocument]:
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list):
            return []
        seen = {self.project_file}
        documents: list[YamlDocument] = []
        for index, pattern in enumerate(patterns):
            if not isinstance(pattern, str):
                continue
            if Path(pattern).is_absolute():
                self._error(
                    "include patterns must be relative to the project directory",
                    ("include", index),
                    main,
                )
                continue
            try:
                matches = sorted(self.root.glob(pattern))
            except ValueError as exc:
                self._error(f"invalid include pattern: {exc}", ("include", index), main)
                continue
            for match in matches:
                path = match.resolve()
                if path in seen or not path.is_file():
                    continue
                seen.add(path)
                name = Path(os.path.relpath(path, self.root)).as_posix()
                document = self._document(path, name, included=True)
                if document is not None:
                    documents.append(document)
        return documents

    def _merge_included(self, document: YamlDocument, mergeable: list[str]) -> None:
        for key, value in document.data.items():
            if key not in SECTIONS:
                hint = (
                    did_you_mean(key, SECTIONS) or " (included files hold only sources and objects)"
                )
                self._error("unknown key" + hint, (key,), document)
            elif value is None:
                continue
            elif not isinstance(value, dict):
                self._error("expected a mapping", (key,), document)
            elif key in mergeable:
                self._merge(document, key, value)

    def _merge(self, document: YamlDocument, section: str, entries: dict[str, Any]) -> None:
        """Add the entries of one file's section, refusing names defined earlier."""
        merged = self.sections[section]
        for name, spec in entries.items():
            path: KeyPath = (section, name)
            if name in merged:
                first_file, first_line = self.locations[path]
                kind = _SINGULAR[section]
                self._error(
                    f"{kind} '{name}' is already defined at {first_file}:{first_line}",
                    path,
                    document,
                )
                continue
            if section == "objects" and isinstance(spec, dict):
                spec = dict(spec)
                for key in sorted(ObjectSpec.internal_fields & spec.keys()):
                    del spec[key]
                    self._error(
                        "unknown key (an object's name is its key under objects:)",
                        (*path, key),
                        document,
                    )
            merged[name] = spec
            if document.file != self.main_name:
                self._record(document, lambda p, prefix=path: p[:2] == prefix)

    def _record(self, document: YamlDocument, keep: Any) -> None:
        for path, line in document.lines.items():
            if keep(path):
                self.locations.setdefault(path, (document.file, line))

    def _origins(self) -> dict[str, tuple[str, int]]:
        """Where each source, group, object, column, check, hook, alert rule and destination
        was written."""
        origins: dict[str, tuple[str, int]] = {}
        for path, where in self.locations.items():
            top = (
                path[:1] in (("sources",), ("groups",), ("hooks",), ("alerts",)) and len(path) == 2
            )
            top = top or (path[:1] == ("alerts",) and len(path) == 4 and path[2] == "to")
            part = path[:1] == ("objects",) and (
                len(path) == 2 or (len(path) == 4 and path[2] in ("columns", "checks"))
            )
            if top or part:
                origins[format_key_path(path)] = where
        return origins

    def _error(self, message: str, path: KeyPath, document: YamlDocument) -> None:
        self.errors.append(
            ProjectError(
                message,
                file=document.file,
                line=line_for(document.lines, path),
                key_path=format_key_path(path) or None,
            )
        )


def _below(key_path: str | None, prefixes: set[str]) -> bool:
    """True when `key_path` is one of `prefixes` or lies below one of them."""
    if not key_path:
        return False
    return any(
        key_path == prefix or key_path.startswith((f"{prefix}.", f"{prefix}["))
        for prefix in prefixes
    )


def _references_as_written(value: Any, path: KeyPath) -> list[tuple[KeyPath, str]]:
    """(key path, text) of every string value holding a `${...}` reference, before resolving."""
    if isinstance(value, dict):
        return [
            found
            for key, item in value.items()
            for found in _references_as_written(item, (*path, key))
        ]
    if isinstance(value, list):
        return [
            found
            for index, item in enumerate(value)
            for found in _references_as_written(item, (*path, index))
        ]
    return [(path, value)] if isinstance(value, str) and "${" in value else []
