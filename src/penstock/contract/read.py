"""Read the contracts to compare: a whole project (penstock.yml with its includes), one
object file (an included file: `objects:` and perhaps `sources:`) or an ODCS contract, each
object validated as the loader validates it, errors naming the file and line as the user gave
them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from penstock.catalog.columns import IDENTIFIER, IDENTIFIER_RULE
from penstock.catalog.diagnostics import describe, make_error
from penstock.catalog.loader import PROJECT_FILE, load_project
from penstock.catalog.models import ObjectSpec
from penstock.catalog.references import resolve_references
from penstock.catalog.yaml_lines import KeyPath, YamlDocument, load_yaml
from penstock.errors import ProjectError, ProjectErrors

_OBJECT_FILE_KEYS = ("objects", "sources")


def read_contracts(path: str | Path) -> dict[str, ObjectSpec]:
    """The objects declared at `path`: a project directory, a penstock.yml (or any file with
    a top-level `name:`, read as a project with its includes), or an object file.

    Raises ProjectErrors (exit 2) whose every line names the file as given and its line.
    """
    given = Path(path).expanduser()
    if not given.exists():
        raise ProjectError("no such file or directory", file=str(given))
    if given.is_dir() or given.name == PROJECT_FILE:
        return _project(given)
    document = _document(given)
    if document.data.get("kind") == "DataContract":
        return _odcs(document)
    if "name" in document.data:
        return _project(given)
    return _object_file(given, document)


def _odcs(document: YamlDocument) -> dict[str, ObjectSpec]:
    """The objects of an ODCS contract, as `contract import` reads them (what it cannot map
    is left out of the comparison too)."""
    from penstock.contract.odcs_import import import_odcs

    result = import_odcs(document.data)
    return {o.name: ObjectSpec.model_validate({**o.spec, "name": o.name}) for o in result.objects}


def _project(given: Path) -> dict[str, ObjectSpec]:
    folder = given if given.is_dir() else given.parent
    try:
        project = load_project(given)
    except ProjectErrors as exc:
        raise ProjectErrors([_relocated(e, folder) for e in exc.errors]) from None
    except ProjectError as exc:
        raise _relocated(exc, folder) from None
    return dict(project.objects)


def _relocated(error: ProjectError, folder: Path) -> ProjectError:
    """`error` with its file named as the user reaches it (`old/penstock.yml`)."""
    file = error.fields.get("file")
    if not file:
        return error
    return ProjectError(
        error.detail,
        file=str(folder / file),
        line=error.fields.get("line"),
        key_path=error.fields.get("key_path"),
    )


def _document(given: Path) -> YamlDocument:
    document = load_yaml(given, str(given))
    data, errors = resolve_references(
        document.data, file=document.file, lines=document.lines, root=given.parent
    )
    if errors:
        raise ProjectErrors(errors)
    return YamlDocument(file=document.file, data=data, lines=document.lines)


def _object_file(given: Path, document: YamlDocument) -> dict[str, ObjectSpec]:
    file = document.file
    locations = {path: (file, line) for path, line in document.lines.items()}
    errors: list[ProjectError] = []
    for key in document.data:
        if key not in _OBJECT_FILE_KEYS:
            errors.append(
                make_error(
                    "unknown key (an object file holds objects: and sources:; a project "
                    "file has name:)",
                    (key,),
                    locations,
                    file,
                )
            )
    entries: Any = document.data.get("objects")
    if not isinstance(entries, dict) or not entries:
        errors.append(make_error("no objects: declared", ("objects",), locations, file))
        raise ProjectErrors(errors)
    objects: dict[str, ObjectSpec] = {}
    for name, spec in entries.items():
        prefix: KeyPath = ("objects", name)
        if not isinstance(spec, dict):
            errors.append(make_error("expected a mapping", prefix, locations, file))
            continue
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            errors.append(
                make_error(f"object name '{name}' {IDENTIFIER_RULE}", prefix, locations, file)
            )
            continue
        if "name" in spec:
            errors.append(
                make_error(
                    "unknown key (an object's name is its key under objects:)",
                    (*prefix, "name"),
                    locations,
                    file,
                )
            )
            continue
        try:
            objects[name] = ObjectSpec.model_validate({**spec, "name": name})
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                for sub, message in describe(error, ObjectSpec):
                    errors.append(make_error(message, (*prefix, *sub), locations, file))
    if errors:
        raise ProjectErrors(errors)
    return objects
