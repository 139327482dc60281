"""How a line of CSV text splits, by the rules DuckDB's reader applies (strict mode), as
regular expressions over one line at a time.

With quote `Q`, escape `E`, delimiter `D` and comment `C` (each one character):

- a field is quoted when it starts with `Q`, or with one space and `Q` (two spaces and `Q`
  start an unquoted field); inside, `E` followed by any character stands for that character
  (when `E` is `Q`: `QQ` stands for one `Q`), and the next lone `Q` closes it; after the
  closing quote only spaces may come before `D`, the end of the line or `C`, except that when
  `E` is `Q`, spaces and a `Q` open the value again (`"a" "b"` reads `a b`). A line break
  inside a quoted field belongs to its value.
- any other field runs to the next `D` (a `Q` inside it is an ordinary character); a CR in it
  is refused (DuckDB refuses it whatever the line breaks are).
- outside quotes, `C` ends the record (the rest of the line is a comment); a line whose first
  character other than spaces is `C` is a comment line, not a record.

`Grammar.start` classifies a line that starts a record and `Grammar.cont` a line that continues
a quoted value: CLOSED (the record ends with this line), OPEN (a quoted value runs on into the
next line) or BROKEN (no reading of the line fits the rules). The expressions use possessive
quantifiers, so a line is matched in one pass, without backtracking. These rules decide record
boundaries in penstock's own passes; DuckDB still parses every record that loads, so the values
are the same whichever pass found the record.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache

from penstock.catalog import CsvOptions


class Line(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    BROKEN = "broken"


class FieldError(ValueError):
    """A record that does not split into fields (the header's, when penstock reads it)."""


@dataclass(frozen=True)
class Grammar:
    quote: str
    escape: str
    delimiter: str
    comment: str | None
    start_closed: re.Pattern[str]
    start_open: re.Pattern[str]
    cont_closed: re.Pattern[str]
    cont_open: re.Pattern[str]

    @staticmethod
    def of(csv: CsvOptions) -> Grammar:
        return _grammar(csv.quote, csv.escape, csv.delimiter, csv.comment)

    def is_comment(self, line: str) -> bool:
        return self.comment is not None and line.lstrip(" ").startswith(self.comment)

    def start(self, line: str) -> Line:
        """A line that starts a record."""
        if self.quote not in line:
            cr = line.find("\r")
            return Line.CLOSED if cr < 0 or cr == len(line) - 1 else Line.BROKEN
        if self.start_closed.fullmatch(line):
            return Line.CLOSED
        return Line.OPEN if self.start_open.fullmatch(line) else Line.BROKEN

    def cont(self, line: str) -> Line:
        """A line that continues a quoted value opened on an earlier line."""
        if self.cont_open.fullmatch(line):
            return Line.OPEN
        return Line.CLOSED if self.cont_closed.fullmatch(line) else Line.BROKEN

    def without_comment(self, line: str, in_quotes: bool) -> str:
        """A CLOSED line without its trailing comment (and CR). DuckDB drops a whole record
        whose comment follows a field of spaces (`1,2, # note`), so the record-by-record pass
        hands DuckDB its records without comments."""
        if self.comment is None or self.comment not in line:
            return line.removesuffix("\r")
        match = (self.cont_closed if in_quotes else self.start_closed).fullmatch(line)
        if match is None or match.start("comment") < 0:
            return line.removesuffix("\r")
        return line[: match.start("comment")]

    def fields(self, record: str) -> list[str]:
        """The fields of a whole record (its lines joined with LF), as DuckDB reads them."""
        text = record.removesuffix("\r")
        q, d, c = self.quote, self.delimiter, self.comment
        out: list[str] = []
        start, n = 0, len(text)
        while True:
            i = start + 1 if text[start : start + 2] == f" {q}" else start
            if i < n and text[i] == q:
                value, i = self._quoted(text, i + 1)
                while True:
                    j = i
                    while j < n and text[j] == " ":
                        j += 1
                    if self.escape == q and i < j < n and text[j] == q:
                        more, end = self._quoted(text, j + 1)  # `"a" "b"` reads `a b`
                        value += text[i:j] + more
                        i = end
                        continue
                    i = j
                    break
                out.append(value)
            else:
                i = start
                while i < n and text[i] != d and text[i] != c:
                    i += 1
                out.append(text[start:i])
            if i >= n or text[i] == c:
                return out
            if text[i] != d:
                raise FieldError(f"text after a closing quote at character {i + 1}")
            start = i + 1

    def _quoted(self, text: str, i: int) -> tuple[str, int]:
        q, e, n = self.quote, self.escape, len(text)
        value: list[str] = []
        while i < n:
            char = text[i]
            if char == e and e != q and i + 1 < n:
                value.append(text[i + 1])
                i += 2
            elif char == q:
                if e == q and i + 1 < n and text[i + 1] == q:
                    value.append(q)
                    i += 2
                else:
                    return "".join(value), i + 1
            else:
                value.append(char)
                i += 1
        raise FieldError("a quoted value is not closed")

    def problem(self, line: str, in_quotes: bool) -> str:
        """Why a BROKEN line breaks the rules, for the rejects file."""
        text = line.removesuffix("\r")
        q, e, d, c = self.quote, self.escape, self.delimiter, self.comment
        i, n = 0, len(text)
        quoted = in_quotes
        at_field_start = not in_quotes
        closed = False
        while i < n:
            char = text[i]
            if quoted:
                if char == e and e != q:
                    i += 2
                    continue
                if char == q:
                    if e == q and i + 1 < n and text[i + 1] == q:
                        i += 2
                        continue
                    quoted, closed = False, True
                i += 1
                continue
            if char == c:
                break
            if char == d:
                at_field_start, closed = True, False
            elif char == "\r":
                return f"a carriage return outside quotes at character {i + 1}"
            elif closed and char != " ":
                return f"text after a closing quote at character {i + 1}"
            elif at_field_start and char == q:
                quoted, at_field_start = True, False
            elif char != " ":
                at_field_start = False
            i += 1
        return "the line does not split into fields"


@lru_cache(maxsize=32)
def _grammar(quote: str, escape: str, delimiter: str, comment: str | None) -> Grammar:
    q, e, d = re.escape(quote), re.escape(escape), re.escape(delimiter)
    c = re.escape(comment) if comment is not None else None
    if quote == escape:
        # a closing quote, spaces and a quote open the value again: part of the value
        inside = f"(?:[^{q}]|{q}{q}|{q} ++{q})*+"
        inside_open = inside
    else:
        inside = f"(?:[^{q}{e}]|{e}.)*+"
        inside_open = f"{inside}{e}?"  # an escape last on the line escapes the line break
    unquoted = f"(?! ?{q})[^{d}{c or ''}\\r\\n]*+"
    quoted = f" ?{q}{inside}{q} *+"
    field = f"(?>{quoted}|{unquoted})"
    # DuckDB ends a comment at a CR as at a line break: a CR inside one breaks the line
    tail = f"(?P<comment>{c}[^\\r]*+)?\\r?" if c is not None else "\\r?"
    opening = f"(?:{field}{d})*+ ?{q}{inside_open}"

    def compiled(pattern: str) -> re.Pattern[str]:
        return re.compile(pattern, re.DOTALL)

    return Grammar(
        quote=quote,
        escape=escape,
        delimiter=delimiter,
        comment=comment,
        start_closed=compiled(f"(?:{field}{d})*+{field}{tail}"),
        start_open=compiled(opening),
        cont_closed=compiled(f"{inside}{q} *+(?:{d}{field})*+{tail}"),
        cont_open=compiled(f"{inside_open}|{inside}{q} *+{d}{opening}"),
    )
