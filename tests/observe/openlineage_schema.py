"""Validate OpenLineage events against the spec's JSON schemas in shared/data/openlineage/
(copied unchanged from the OpenLineage repository; see shared/data/README.md).

The event is validated against OpenLineage.json, and each facet it carries against the schema
of that facet (by the facet's key: `parent`, `schema`, `columnLineage`...), formats checked
(uuid, date-time, uri). A facet without a published schema there is an error: penstock emits
only facets the spec defines.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

HERE = Path(__file__).resolve()


def schema_dir() -> Path:
    """shared/data/openlineage: $PENSTOCK_SHARED, else a `shared/` beside the repository or
    beside one of its parent folders (a worktree)."""
    given = os.environ.get("PENSTOCK_SHARED")
    candidates = [Path(given)] if given else []
    candidates += [parent / "shared" for parent in HERE.parents]
    for shared in candidates:
        folder = shared / "data" / "openlineage"
        if (folder / "OpenLineage.json").is_file():
            return folder
    raise AssertionError(
        "the OpenLineage schemas (shared/data/openlineage) are not beside the repository; "
        "set PENSTOCK_SHARED to the shared/ folder"
    )


@cache
def validators() -> tuple[Draft202012Validator, dict[str, tuple[str, Draft202012Validator]]]:
    folder = schema_dir()
    schemas = [
        json.loads(p.read_text())
        for p in [folder / "OpenLineage.json", *sorted(folder.glob("facets/*.json"))]
    ]
    registry: Registry[Any] = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas
    )
    checker = FormatChecker()
    event = Draft202012Validator(schemas[0], registry=registry, format_checker=checker)
    facets = {}
    for s in schemas[1:]:
        (key,) = s["properties"]
        facets[key] = (s["$id"], Draft202012Validator(s, registry=registry, format_checker=checker))
    return event, facets


def validate_event(event: dict[str, Any]) -> list[str]:
    """Validate one event and its facets; returns the facet keys it carries."""
    event_validator, facet_validators = validators()
    event_validator.validate(event)
    seen = []
    groups: list[dict[str, Any]] = [event["run"].get("facets", {}), event["job"].get("facets", {})]
    for d in event.get("inputs", []):
        groups += [d.get("facets", {}), d.get("inputFacets", {})]
    for d in event.get("outputs", []):
        groups += [d.get("facets", {}), d.get("outputFacets", {})]
    for group in groups:
        for key, facet in group.items():
            assert key in facet_validators, f"facet {key!r} has no schema in shared/"
            schema_id, validator = facet_validators[key]
            validator.validate({key: facet})
            assert facet["_schemaURL"].startswith(schema_id + "#"), (key, facet["_schemaURL"])
            seen.append(key)
    return seen
