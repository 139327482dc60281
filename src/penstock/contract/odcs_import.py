"""Turn an ODCS contract into penstock objects, one per ODCS schema object, reporting what
cannot be mapped.

Columns come from the properties (types by odcs_types, required, key from primaryKey and its
position, min/max/pattern from logicalTypeOptions, `from:` from a physicalName), checks from
the quality rules (odcs_quality). What penstock has no place for (servers, SLA properties,
team members, tags, relationships, rules it cannot enforce...) is a warning naming its ODCS
path, never dropped silently. The objects are validated as the loader would: a value that
does not fit (a pattern RE2 refuses, a bound of the wrong type) is left out with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from penstock.contract.odcs_object import ImportedObject, ImportWarning, ObjectReader
from penstock.errors import UsageError

__all__ = ["ImportResult", "ImportWarning", "ImportedObject", "import_odcs"]

_ROOT_READ = {"apiVersion", "kind", "id", "version", "status", "name", "schema", "description"}


@dataclass
class ImportResult:
    objects: list[ImportedObject]
    warnings: list[ImportWarning]  # every warning, the objects' included


def import_odcs(data: Any, *, source: str = "landing") -> ImportResult:
    """The penstock objects an ODCS contract declares, and what could not be mapped."""
    if not isinstance(data, dict):
        raise UsageError("not an ODCS contract: the document is not a mapping")
    if data.get("kind", "DataContract") != "DataContract":
        raise UsageError(f"not an ODCS data contract (kind: {data.get('kind')})")
    warnings: list[ImportWarning] = []
    version = data.get("apiVersion")
    if not (isinstance(version, str) and version.startswith("v3.")):
        warnings.append(ImportWarning("apiVersion", f"{version!r} is not ODCS v3: read as v3.1.0"))
    owner = _team(data.get("team"), warnings)
    purpose = _description(data.get("description"), warnings)
    for key, value in data.items():
        if key in _ROOT_READ or key == "team":
            continue
        if key == "servers" and isinstance(value, list):
            for index, server in enumerate(value):
                what = server.get("type", "?") if isinstance(server, dict) else "?"
                warnings.append(
                    ImportWarning(
                        f"servers[{index}]",
                        f"a {what} server is not imported: penstock reads the object's files "
                        "from its source",
                    )
                )
        elif key == "slaProperties" and isinstance(value, list):
            for index, item in enumerate(value):
                what = item.get("property", "?") if isinstance(item, dict) else "?"
                warnings.append(
                    ImportWarning(
                        f"slaProperties[{index}]",
                        f"SLA property {what} is not mapped (declare sla: on the object)",
                    )
                )
        elif key == "customProperties" and isinstance(value, list):
            for index, item in enumerate(value):
                name = item.get("property") if isinstance(item, dict) else None
                if not (isinstance(name, str) and name.startswith("penstock")):
                    warnings.append(
                        ImportWarning(f"{key}[{index}]", f"custom property {name!r} is not kept")
                    )
        else:
            warnings.append(ImportWarning(key, "not kept: penstock has no place for it"))
    schema = data.get("schema") or []
    if not isinstance(schema, list):
        raise UsageError("not an ODCS contract: schema is not a list")
    objects: list[ImportedObject] = []
    taken: set[str] = set()
    for index, element in enumerate(schema):
        path = f"schema[{index}]"
        if not isinstance(element, dict) or not isinstance(element.get("name"), str):
            warnings.append(ImportWarning(path, "a schema object without a name: skipped"))
            continue
        reader = ObjectReader(element, path, source, taken)
        imported = reader.read(owner=owner, purpose=purpose)
        taken.add(imported.name.lower())
        objects.append(imported)
        warnings.extend(imported.warnings)
    return ImportResult(objects, warnings)


def _team(team: Any, warnings: list[ImportWarning]) -> str | None:
    if isinstance(team, dict):
        for key in team:
            if key != "name":
                warnings.append(
                    ImportWarning(f"team.{key}", "not kept: the owner is the team's name")
                )
        name = team.get("name")
        return name if isinstance(name, str) else None
    if team is not None:
        warnings.append(ImportWarning("team", "not kept: a list of members names no owner"))
    return None


def _description(description: Any, warnings: list[ImportWarning]) -> str | None:
    if isinstance(description, str):
        return description
    if not isinstance(description, dict):
        return None
    for key in description:
        if key != "purpose":
            warnings.append(ImportWarning(f"description.{key}", "not kept"))
    purpose = description.get("purpose")
    return purpose if isinstance(purpose, str) else None
