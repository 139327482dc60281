"""`micro_batch`: how many staged batches of an object validate and load together.

    micro_batch: {rows: 1000000, bytes: 256MB, files: 1000}     # the default

A landing zone of many small files (per-minute drops) loads in chunks of consecutive batches:
one validation pass and one transaction per chunk, each batch keeping its own ledger row and
row accounting. A chunk takes batches until the next one would pass any of the three targets
(records, bytes of the landing files, batches); a batch larger than the target is a chunk of
its own, so large files load exactly as before. `{files: 1}` loads one batch at a time.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

_SIZE = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[kmgt]?i?b)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def size_bytes(text: str) -> int:
    """A size as written ('256MB', '1GiB', '500kB', '2048b') in bytes."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"a size such as '256MB' or '1GiB', got {text!r}")
    unit = match["unit"].lower()
    scale = 1024 ** ("kmgt".index(unit[0]) + 1) if unit.endswith("ib") else _UNITS[unit[:-1]]
    return round(float(match["number"]) * scale)


class MicroBatch(BaseModel):
    """The targets a chunk of batches stays within (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: Annotated[StrictInt, Field(ge=1)] = 1_000_000
    bytes: Annotated[StrictInt, Field(ge=1)] = 256 * 1024**2
    files: Annotated[StrictInt, Field(ge=1)] = 1000

    @field_validator("bytes", mode="before")
    @classmethod
    def _check_bytes(cls, value: Any) -> Any:
        return size_bytes(value) if isinstance(value, str) else value
