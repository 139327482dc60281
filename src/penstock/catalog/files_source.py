"""A `kind: files` source, and what an object's file glob and durations mean."""

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from penstock.catalog.base import Model
from penstock.catalog.columns import CsvOptions
from penstock.catalog.dialect import ValueDialect
from penstock.catalog.orchestration import Duration, Retry

FileFormat = Literal["csv", "jsonl", "json", "parquet"]
# the compressions sources/compression.py reads (not imported: the catalog does not import
# the sources package, which imports the catalog)
_COMPRESSION_SUFFIXES = (".gz", ".zst", ".bz2")
_FORMAT_SUFFIXES: dict[str, FileFormat] = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
}


def infer_format(files: str) -> FileFormat | None:
    """The file format implied by a glob's extension (`orders/*.csv.gz` is csv), or None."""
    name = files.lower()
    for suffix in _COMPRESSION_SUFFIXES:
        name = name.removesuffix(suffix)
    for suffix, file_format in _FORMAT_SUFFIXES.items():
        if name.endswith(suffix):
            return file_format
    return None


_DURATION = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DEFAULT_SETTLE = "2s"


def duration_seconds(text: str) -> float:
    """Seconds in a duration such as `2s`, `500ms`, `1.5m` or `1h`."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"expected a duration such as 2s, 500ms, 1m or 0s, got '{text}'")
    return float(match["amount"]) * _DURATION_UNITS[match["unit"]]


class FilesSource(Model, ValueDialect):
    """Files in a directory (local, for now): objects pick theirs with a glob.

    `settle`: a file modified more recently than this is still being delivered and waits for
    a later run (a writer that is still copying it would otherwise be read half).
    Value-dialect keys (`null_values`, `date_format`...) are defaults for its objects.
    """

    kind: Literal["files"]
    path: str
    settle: str = DEFAULT_SETTLE
    csv: CsvOptions | None = None
    """Defaults for the CSV objects of this source; an object's own `csv:` wins key by key."""
    owner: str | None = None
    description: str | None = None
    retry: Retry | None = None  # for its objects that set none (catalog/orchestration.py)
    timeout: Duration | None = None
    # how many partitions of a backfill may read from it at once (engine/backfill.py)
    max_connections: Annotated[int, Field(ge=1, le=256)] | None = None

    @field_validator("path")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("settle", mode="before")
    @classmethod
    def _check_settle(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value == 0:
                return "0s"
            number = f"{value:g}"
            raise ValueError(
                f"give the unit: '{number}s', '{number}ms', '{number}m' or '{number}h'"
            )
        if isinstance(value, str):
            duration_seconds(value)
        return value

    @property
    def settle_seconds(self) -> float:
        return duration_seconds(self.settle)
