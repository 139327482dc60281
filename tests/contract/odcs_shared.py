"""The ODCS v3.1.0 JSON schema and examples in shared/data/odcs (see shared/data/README.md):
$PENSTOCK_SHARED, else a `shared/` beside the repository or beside one of its parent folders
(a worktree), as tests/observe/openlineage_schema.py finds the OpenLineage schemas."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft201909Validator

HERE = Path(__file__).resolve()
SCHEMA = "odcs-json-schema-v3.1.0.json"


def odcs_dir() -> Path:
    given = os.environ.get("PENSTOCK_SHARED")
    candidates = [Path(given)] if given else []
    candidates += [parent / "shared" for parent in HERE.parents]
    for shared in candidates:
        folder = shared / "data" / "odcs"
        if (folder / SCHEMA).is_file():
            return folder
    raise AssertionError(
        "the ODCS schema (shared/data/odcs) is not beside the repository; "
        "set PENSTOCK_SHARED to the shared/ folder"
    )


def examples() -> list[Path]:
    return sorted((odcs_dir() / "examples").glob("*.odcs.yaml"))


@cache
def validator() -> Draft201909Validator:
    schema = json.loads((odcs_dir() / SCHEMA).read_text())
    Draft201909Validator.check_schema(schema)
    return Draft201909Validator(schema)


def schema_errors(contract: dict[str, Any]) -> list[str]:
    """Every way `contract` breaks the ODCS schema, as `path: message` lines."""
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator().iter_errors(json.loads(json.dumps(contract)))
    ]
