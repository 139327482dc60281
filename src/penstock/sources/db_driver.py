"""What penstock needs of a database driver, and the errors it raises in penstock's terms.

A `DbConnection` answers catalog questions (the columns of a relation with their database
types, one scalar) and streams a SELECT as Arrow record batches. A `DbDialect` knows the
database's SQL: quoting, which types arrive natively and how the others are read (as text),
the cursor's literals. Connection errors become `SourceError` / `TransientError` with one line
naming the source without its credentials (errors pass through secret redaction too).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from penstock.errors import PenstockError, SourceError, TransientError, first_line
from penstock.secrets import redact


@dataclass(frozen=True)
class DbColumn:
    name: str
    db_type: str  # the database's name for it, lower case (`timestamptz`, `decimal(12,2)`)
    nullable: bool = True


class DbConnection(Protocol):
    def columns(self, relation: str) -> list[DbColumn]: ...

    def scalars(self, sql: str) -> tuple[str | None, ...]:
        """The first row of a query, each value as text (None for NULL)."""
        ...

    def rows(self, sql: str) -> list[tuple[Any, ...]]: ...

    def stream(
        self, sql: str, chunk_rows: int, columns: list[DbColumn]
    ) -> tuple[Any, Iterator[Any]]:
        """(Arrow schema, record batches) of a SELECT of `columns`, read as they arrive."""
        ...

    def close(self) -> None: ...


class DbDialect(Protocol):
    kind: str

    def quote(self, name: str) -> str: ...

    def select_expr(self, column: DbColumn) -> str:
        """How a column is read: as itself when it arrives natively, else as text."""
        ...

    def text(self, expr: str) -> str:
        """An expression as text (for bounds)."""
        ...

    def cursor_literal(self, value: str, column: DbColumn, lookback: float | None) -> str:
        """The lower bound `value` (minus `lookback`: seconds, or a number) as SQL."""
        ...


_NUMBER = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")


def quote_text(value: str, *, backslash: bool = False) -> str:
    """A string literal; MySQL also escapes backslashes."""
    if backslash:
        value = value.replace("\\", "\\\\")
    return "'" + value.replace("'", "''") + "'"


def number_literal(value: str, lookback: float | None) -> str:
    if not _NUMBER.match(value.strip()):
        raise SourceError(f"cursor value {value!r} is not a number")
    if lookback is None:
        return value.strip()
    return f"({value.strip()} - {lookback:g})"


def source_error(source: str, where: str, exc: BaseException) -> PenstockError:
    """A driver's error as one line: transient when the server could not be reached."""
    text = redact(first_line(exc))
    lowered = text.lower()
    message = f"source '{source}': {where}: {text}"
    unreachable = (
        "connection refused",
        "could not connect",
        "can't connect",
        "timeout",
        "timed out",
        "no route to host",
        "server closed the connection",
        "lost connection",
    )
    if any(word in lowered for word in unreachable):
        return TransientError(message, source=source)
    return SourceError(message, source=source)
