"""Secret redaction applied to nested values (strings inside dicts, lists, tuples)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from penstock.secrets import redact


def redact_value(value: Any) -> Any:
    """`redact` every string in `value`, recursing into mappings, lists and tuples."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


def redact_opt(text: str | None) -> str | None:
    return None if text is None else redact(text)
