"""`max_encoding_errors`: how many records of a file may hold bytes that are not valid in its
declared encoding before the file counts as written in another encoding.

    max_encoding_errors: {share: 1%, count: 1000}     # the default

A record holding such bytes is quarantined with reason `encoding` while the file's records with
such bytes are at most `share` of its records (rounded up, so one bad record in a small file is
tolerated) and at most `count`, and not every record; past that, the file fails as written in
another encoding. `{count: 0}` (or `share: 0%`) tolerates none.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

_PERCENT = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*%\s*$")
DEFAULT_SHARE = "1%"
DEFAULT_COUNT = 1000


class EncodingErrorLimit(BaseModel):
    """How many records with invalid bytes a file may hold (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    share: str = DEFAULT_SHARE
    count: Annotated[StrictInt, Field(ge=0)] = DEFAULT_COUNT

    @field_validator("share", mode="before")
    @classmethod
    def _check_share(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return value  # pydantic names the type it expected
        match = _PERCENT.match(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"expected a percentage such as 1% or 0.5%, got {value!r}")
        if Decimal(match["number"]) > 100:
            raise ValueError(f"a share is at most 100%, got {value!r}")
        return f"{match['number']}%"

    @property
    def fraction(self) -> Decimal:
        return Decimal(self.share.rstrip("%")) / 100

    def allowed(self, records: int) -> int:
        """Records with invalid bytes tolerated in a file of `records` records."""
        by_share = math.ceil(self.fraction * records)
        return max(0, min(self.count, by_share, records - 1))

    def describe(self) -> str:
        return f"{self.share} of the records, at most {self.count:,}"
