"""Damaged records in a text file: how many records with invalid bytes a file may hold before
it counts as being in another encoding, and the escaping that keeps such a record's raw bytes.

A few records with an invalid byte sequence (a stray byte from a legacy system) are quarantined
one by one with reason `encoding`; a file with more of them than `encoding_error_limit` allows
is not in the declared encoding at all and fails whole (`SourceError(..., unreadable=True)`)
naming its first bad line.
"""

from __future__ import annotations

from penstock.catalog import ObjectSpec
from penstock.catalog.encoding_limit import EncodingErrorLimit
from penstock.errors import SourceError

MALFORMED = "malformed"
ENCODING = "encoding"


def encoding_error_limit(obj: ObjectSpec) -> EncodingErrorLimit:
    """The limit on records with invalid bytes for `obj`'s files: its `max_encoding_errors`,
    or the default (1% of the records, at most 1,000, never every record)."""
    return obj.encoding_limit


def escaped(raw: bytes) -> str:
    """A record's raw bytes as text: valid UTF-8 as is, each invalid byte as `\\xNN`."""
    return raw.decode("utf-8", "backslashreplace")


def encoding_problem(raw: bytes) -> str | None:
    """Why `raw` is not UTF-8 (`encoding: byte 0xe9 at position 23 is not valid UTF-8`), or
    None when it is. Positions count bytes from 1."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte, position = raw[exc.start], exc.start + 1
        return f"{ENCODING}: byte 0x{byte:02x} at position {position} is not valid UTF-8"
    return None


def cut_inside_character(raw: bytes) -> bool:
    """Whether `raw`'s only invalid bytes are an incomplete UTF-8 sequence at its very end:
    what a file cut short inside a character leaves in its last line."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data" and exc.end == len(raw)
    return False


class EncodingErrors:
    """Counts a file's records with invalid bytes as they are read, and refuses the file once
    they are more than its limit allows: early (past the absolute limit) while reading, by
    share at the end (`finish`)."""

    def __init__(
        self, obj: ObjectSpec, display_name: str, what: str, records_word: str = "records"
    ) -> None:
        self.limit = encoding_error_limit(obj)
        self.object_name = obj.name
        self.display_name = display_name
        self.what = what
        self.records_word = records_word
        self.count = 0
        self.first_line: int | None = None

    def add(self, count: int, first_line: int) -> None:
        """`count` more records with invalid bytes, the first at physical line `first_line`."""
        if not count:
            return
        if self.first_line is None:
            self.first_line = first_line
        self.count += count
        if self.count > self.limit.count:
            raise self._refusal(
                f"more than {self.limit.count:,} {self.records_word} hold invalid bytes; "
                f"max_encoding_errors allows at most {self.limit.count:,}"
            )

    def finish(self, records: int) -> None:
        """The file held `records` records in all: refuse it if too many were bad."""
        allowed = self.limit.allowed(records)
        if self.count > allowed:
            raise self._refusal(
                f"{self.count:,} of {records:,} {self.records_word} hold invalid bytes; "
                f"max_encoding_errors allows {allowed:,} ({self.limit.describe()})"
            )

    def _refusal(self, what: str) -> SourceError:
        line = self.first_line or 1
        return SourceError(
            f"{self.display_name}:{line}: not valid UTF-8 text ({self.what} must be UTF-8): {what}",
            file=self.display_name,
            line=line,
            object=self.object_name,
            unreadable=True,
        )
