"""How a CSV file's data is read by DuckDB: the declared dialect and the layout penstock found,
as one value that staging records in the manifest and every later read of the batch reuses.

A CSV batch read cleanly at staging is kept in the stage zone as the bytes delivered
(`data.csv`, decompressed when the landing file was compressed), not re-encoded as Parquet:
writing 2M rows of text as Parquet cost more than the whole validation pass. Validation, a
rebuild and `check` read those bytes again with exactly these settings, so every read of the
batch splits it into the same rows; the manifest's row count is checked on each read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from penstock.sql import literal

# The longest record penstock reads, in bytes: a longer one is malformed, with its raw text
# (staging's record-by-record path refuses the same records, csv_recover.py). DuckDB's own
# default is 2,000,000; from about 3,000,000 up its reader spends ~10-25% less CPU on the same
# file (DuckDB 2.0.1: the 2M-row orders file read as text 0.92 s -> 0.67 s, its validation
# pass 2.95 -> 2.67 s CPU; 2,500,000 was as slow as the default; bench/README.md).
MAX_LINE_BYTES = 4_000_000

_NEW_LINE_OPTION = {"\n": "\\n", "\r\n": "\\r\\n", "\r": "\\r"}


@dataclass(frozen=True)
class CsvRead:
    """DuckDB read_csv settings for the data of one file: every column text, nothing guessed."""

    names: tuple[str, ...]  # the columns in file order
    skip: int  # DuckDB's `skip`: the rows before the data
    new_line: str  # "\n", "\r\n" or "\r"
    delimiter: str
    quote: str
    escape: str
    encoding: str
    comment: str | None = None

    def options(
        self,
        *,
        compression: str | None = None,
        rejects_table: str | None = None,
        rejects_scan: str | None = None,
    ) -> list[str]:
        """The read_csv options. A record with another number of fields (or a byte invalid in
        the encoding) is never a row: it goes to the rejects table (`rejects_table` and
        `rejects_scan` name DuckDB's temp tables; its defaults when None)."""
        columns = ", ".join(f"{literal(name)}: 'VARCHAR'" for name in self.names)
        options = [
            "auto_detect = false",
            "header = false",
            f"columns = {{{columns}}}",
            "null_padding = false",
            f"delim = {literal(self.delimiter)}",
            f"quote = {literal(self.quote)}",
            f"escape = {literal(self.escape)}",
            f"encoding = {literal(self.encoding)}",
            f"compression = {literal(compression or 'none')}",
            f"skip = {self.skip}",
            f"new_line = {literal(_NEW_LINE_OPTION[self.new_line])}",
            f"max_line_size = {MAX_LINE_BYTES}",
            "store_rejects = true",
        ]
        if rejects_table is not None:
            options.append(f"rejects_table = {literal(rejects_table)}")
        if rejects_scan is not None:
            options.append(f"rejects_scan = {literal(rejects_scan)}")
        if self.comment is not None:
            options.append(f"comment = {literal(self.comment)}")
        return options

    def sql(self, path: str | Sequence[str], **kwargs: Any) -> str:
        """`read_csv(path, …)` (or of a list of files) with `options(**kwargs)`."""
        files = literal(path) if isinstance(path, str) else f"[{', '.join(map(literal, path))}]"
        return f"read_csv({files}, {', '.join(self.options(**kwargs))})"

    def to_dict(self) -> dict[str, Any]:
        # its fields are plain values (and a tuple of names): `asdict`'s deep copy is not
        # needed, and cost more than the rest of a small file's manifest
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["names"] = list(self.names)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CsvRead:
        return cls(**{**data, "names": tuple(data["names"])})
