"""The type `penstock discover` proposes for a column read as text: the narrowest contract type
(and strftime pattern) that reads every value of the sample, proven with the contract's own
strict casts; when none does, the narrowest that reads all but a few strays.

Numbers may be written with a decimal comma (`1.234,50`, European exports) or with commas
between groups of digits (`1,234.50`): `number_marks` reads the marks off the sample's text
columns and proposes the object's `decimal_separator:` / `thousands_separator:`, under which
every number column is then typed; a value either reading fits (`1,234`) decides nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb

from penstock.catalog import ColumnSpec
from penstock.catalog.dialect import ColumnDialect
from penstock.quality.casts import (
    EXPONENT,
    exponent_digits_sql,
    exponent_scale_sql,
    missing_sql,
    strict_cast_sql,
)
from penstock.sources.discover_layout import NUMBER_TEXT
from penstock.sql import ident, literal


@dataclass(frozen=True)
class NumberMarks:
    """How the sample writes numbers: the decimal mark and the group mark (None: no groups)."""

    decimal: str = "."
    thousands: str | None = None

    def plain(self, value: str) -> str:
        """`value` with the marks of a plain number: `1.234,50` is `1234.50`."""
        if self.thousands is not None:
            value = value.replace(self.thousands, "")
        return value.replace(self.decimal, ".") if self.decimal != "." else value

    def plain_sql(self, text: str) -> str:
        """The SQL of `plain` on the text expression `text`."""
        if self.thousands is not None:
            text = f"replace({text}, {literal(self.thousands)}, '')"
        return f"replace({text}, {literal(self.decimal)}, '.')" if self.decimal != "." else text

    def dialect(
        self, tokens: tuple[str, ...], formats: tuple[str, ...] | None = None
    ) -> ColumnDialect:
        return ColumnDialect(
            null_values=tokens,
            formats=formats,
            decimal_separator=self.decimal,
            thousands_separator=self.thousands,
        )


PLAIN_MARKS = NumberMarks()
# numbers with a decimal comma (1.234,50) and with a thousands comma (1,234.50)
_EU_NUMBER = r"[+-]?([0-9]{1,3}([.][0-9]{3})+|[0-9]+)(,[0-9]+)?"
_US_NUMBER = r"[+-]?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)([.][0-9]+)?"
# written so only those marks read them: `1,234` alone may be either, so it is no evidence
_EU_SURE = (
    r"[+-]?([0-9]{1,3}([.][0-9]{3}){2,}(,[0-9]+)?"  # 1.234.567
    r"|[0-9]{1,3}([.][0-9]{3})+,[0-9]+"  # 1.234,5
    r"|[0-9]+,([0-9]{1,2}|[0-9]{4,}))"  # 12,5
)
_US_SURE = r"[+-]?([0-9]{1,3}(,[0-9]{3}){2,}([.][0-9]+)?|[0-9]{1,3}(,[0-9]{3})+[.][0-9]+)"
_EU_GROUPS = r"[+-]?[0-9]{1,3}([.][0-9]{3})+(,[0-9]+)?"
_COMMA_GROUP = r"[+-]?[0-9]{1,3}(,[0-9]{3})+"  # 1,234: a group, unless the column says else
_DOT_DECIMAL = r"[+-]?[0-9]*[.][0-9]+"  # 3.5: the dot is the decimal mark
# a plain number whose dot can only be a decimal mark (3.5, 0.0001): no decimal comma here
_PLAIN_NUMBER = r"[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)"
_DOT_SURE = r"[+-]?[0-9]*[.]([0-9]{1,2}|[0-9]{4,})"
_MARK_PATTERNS = (
    _EU_NUMBER,
    _US_NUMBER,
    _EU_SURE,
    _US_SURE,
    _EU_GROUPS,
    _COMMA_GROUP,
    _DOT_DECIMAL,
    _PLAIN_NUMBER,
    _DOT_SURE,
)


def number_marks(
    conn: duckdb.DuckDBPyConnection, columns: Sequence[str], tokens: tuple[str, ...]
) -> NumberMarks:
    """How the sample's text columns write numbers. A column whose every value present is a
    number with a decimal comma (`1.234,50`, `12,5`), some of them unmistakably so, makes
    `decimal_separator: ","` (and `thousands_separator: "."` when some value groups digits
    with dots); one whose every value is a number grouped by commas (`1,234,567`, `1,234.50`,
    or `1,234` beside `3.5`) makes `thousands_separator: ","`. Values that fit both (`1,234`
    alone) decide nothing; columns that disagree (`2,3` in one, `3.5` in another) leave the
    marks plain."""
    decimal_comma = grouped_dots = grouped_commas = dot_decimal = False
    if not _marked(conn, columns):
        return PLAIN_MARKS
    for column in columns:
        col = ident(column)
        missing = missing_sql(col, True, ColumnDialect(null_values=tokens))
        counts = ", ".join(
            f"count(*) FILTER (WHERE regexp_full_match(trim({col}), {literal(pattern)}))"
            for pattern in _MARK_PATTERNS
        )
        row = conn.execute(f"SELECT count(*), {counts} FROM sample WHERE NOT {missing}").fetchall()[
            0
        ]
        present, eu, us, eu_sure, us_sure, eu_groups, comma_groups, dot_decimals = row[:8]
        plain, dot_sure = row[8:]
        if not present:
            continue
        if eu == present and eu_sure:
            decimal_comma = True
            grouped_dots = grouped_dots or bool(eu_groups)
        elif us == present and (us_sure or (comma_groups and dot_decimals)):
            grouped_commas = True
        elif plain == present and dot_sure:
            dot_decimal = True  # 3.5 beside 2,3: the comma is no decimal mark here
    if decimal_comma and not grouped_commas and not dot_decimal:
        return NumberMarks(",", "." if grouped_dots else None)
    if grouped_commas and not decimal_comma:
        return NumberMarks(".", ",")
    return PLAIN_MARKS


def _marked(conn: duckdb.DuckDBPyConnection, columns: Sequence[str]) -> bool:
    """Whether any value of `columns` has a comma or two dots: only such values make a mark
    other than plain (each pattern of evidence above holds one), so a sample without any is
    answered by one pass instead of nine per column."""
    if not columns:
        return False
    found = " OR ".join(f"regexp_matches({ident(c)}, '[,]|[.][^.]*[.]')" for c in columns)
    return bool(
        conn.execute(f"SELECT EXISTS (SELECT 1 FROM sample WHERE {found})").fetchall()[0][0]
    )


DATE_FORMATS = (
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%m/%d/%y",
    "%d/%m/%y",
    "%Y%m%d",
    "%d %b %Y",
    "%b %d %Y",
    "%b %d, %Y",
    "%d-%b-%Y",
    "%d-%b-%y",
)
TIME_PARTS = (" %H:%M:%S", " %H:%M", "T%H:%M:%S", " %I:%M:%S %p", " %I:%M %p")


def text_type(
    conn: duckdb.DuckDBPyConnection,
    column: str,
    tokens: tuple[str, ...],
    marks: NumberMarks = PLAIN_MARKS,
) -> tuple[str, str | None, int, str | None]:
    """The narrowest type (and strftime pattern) that reads every value of a text column; when
    none does, the narrowest that reads all but a few strays (at most `STRAY_SHARE` of them:
    damaged values a run would quarantine), with their count and one of them. So `42.5` among
    integers makes a decimal, while `eleven` among them stays a stray of a bigint. Candidates
    are screened in Python on a probe of the column's distinct values; those left are
    checked, in order, with the contract's strict casts against the whole sample. A column
    with a number written with leading zeros (`001`, a ZIP code `02134`) holds codes: no
    number type is proposed, since it would read `001` as 1. `marks`: how numbers are
    written (number_marks)."""
    col = ident(column)
    missing = missing_sql(col, True, ColumnDialect(null_values=tokens))
    probe = [
        str(row[0]).strip()
        for row in conn.execute(
            f"SELECT DISTINCT {col} FROM sample WHERE NOT {missing} LIMIT {PROBE_VALUES}"
        ).fetchall()
    ]
    if not probe:
        return "text", None, 0, None
    present, padded = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE regexp_full_match("
        f"{marks.plain_sql(f'trim({col})')}, {literal(_PADDED)})) FROM sample WHERE NOT {missing}"
    ).fetchall()[0]
    tolerated: tuple[str, str | None, int, str | None] | None = None
    # a number written with leading zeros (001, 02134) is a code: a number type would drop them
    numeric = not padded and any(NUMBER_TEXT.fullmatch(marks.plain(value)) for value in probe)
    for candidate in _candidates(conn, col, missing, tokens, numeric, marks):
        if padded and _is_number(candidate.contract):
            continue
        if not candidate.plausible(probe):
            continue
        stray, example = _strays(conn, column, candidate, missing)
        if stray == 0:
            return candidate.contract, candidate.pattern, 0, None
        if tolerated is None and stray <= present * STRAY_SHARE:
            tolerated = candidate.contract, candidate.pattern, stray, example
    return tolerated or ("text", None, 0, None)


STRAY_SHARE = 0.02
# a number with a leading zero before another digit (001, -02.5); 0.5 and 0 are not
_PADDED = r"[+-]?0[0-9]+([.][0-9]*)?"


def _is_number(contract: str) -> bool:
    return contract in ("boolean", "bigint", "double") or contract.startswith("decimal")


PROBE_VALUES = 64
_BOOLEAN = frozenset(("true", "false", "t", "f", "yes", "no", "y", "n", "1", "0"))
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+(\.0+)?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+)?")
_ISO_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+(Z|[+-][0-9:]+)")


@dataclass(frozen=True)
class _Candidate:
    contract: str
    pattern: str | None
    dialect: ColumnDialect
    marks: NumberMarks = PLAIN_MARKS

    def plausible(self, probe: Sequence[str]) -> bool:
        """A quick screen of the probe values (the strict cast decides): nearly all of them
        look like the type (a few may be strays)."""
        if self.contract == "boolean":
            lowered = {v.lower() for v in probe}
            return lowered <= _BOOLEAN and any(v.isalpha() for v in lowered)
        passing = sum(1 for value in probe if self._looks(value))
        return passing >= max(1, PLAUSIBLE_SHARE * len(probe))

    def _looks(self, value: str) -> bool:
        if self.pattern is not None:
            return _parses(value, self.pattern)
        if self.contract == "bigint":
            return bool(_INTEGER_TEXT.fullmatch(self.marks.plain(value)))
        if self.contract.startswith("decimal") or self.contract == "double":
            return bool(NUMBER_TEXT.fullmatch(self.marks.plain(value)))
        if self.contract == "date":
            return bool(_ISO_DATE.fullmatch(value))
        if self.contract == "timestamp":
            return bool(_ISO_TIMESTAMP.fullmatch(value))
        return bool(_ISO_INSTANT.fullmatch(value))  # timestamptz


PLAUSIBLE_SHARE = 0.9


def _parses(value: str, pattern: str) -> bool:
    try:
        datetime.strptime(value, pattern)
    except ValueError:
        return False
    return True


def _candidates(
    conn: duckdb.DuckDBPyConnection,
    col: str,
    missing: str,
    tokens: tuple[str, ...],
    numeric: bool,
    marks: NumberMarks,
) -> list[_Candidate]:
    """The types a text column may have, narrowest first. `numeric`: some value of the probe
    is a number (else no decimal is sized: a query of the whole sample saved)."""
    plain = ColumnDialect(null_values=tokens)
    decimal = _decimal(conn, col, missing, marks) if numeric else []
    numbers = ("boolean", "bigint", *decimal, "double")
    found = [_Candidate(c, None, marks.dialect(tokens), marks) for c in numbers]
    found += [_Candidate(c, None, plain) for c in ("date", "timestamp", "timestamptz")]
    found += [
        _Candidate("date", p, ColumnDialect(null_values=tokens, formats=(p,))) for p in DATE_FORMATS
    ]
    found += [
        _Candidate("timestamp", d + t, ColumnDialect(null_values=tokens, formats=(d + t,)))
        for d in ("%Y-%m-%d", *DATE_FORMATS)
        for t in TIME_PARTS
    ]
    return found


def _strays(
    conn: duckdb.DuckDBPyConnection, column: str, candidate: _Candidate, missing: str
) -> tuple[int, str | None]:
    """How many present values the candidate cannot read, and the first of them."""
    spec = ColumnSpec.model_validate({"type": candidate.contract})
    typed = strict_cast_sql(column, spec, "VARCHAR", True, candidate.dialect)
    count, example = conn.execute(
        f"SELECT count(*), min({ident(column)}) FROM sample "
        f"WHERE NOT {missing} AND ({typed}) IS NULL"
    ).fetchall()[0]
    return int(count), None if example is None else str(example)


def _decimal(
    conn: duckdb.DuckDBPyConnection, col: str, missing: str, marks: NumberMarks
) -> list[str]:
    """`decimal(p,s)` wide enough for the column's values, if they look like decimals: the
    integer and fraction digits each value needs, a value in exponent notation counted by
    what it is exactly (`1e3`: 4 and 0, `1.25e-1`: 0 and 3)."""
    text = marks.plain_sql(f"trim({col})")
    exponent = f"regexp_full_match({text}, {literal(EXPONENT)})"
    row = conn.execute(
        f"SELECT max(CASE WHEN {exponent} THEN {exponent_digits_sql(text)} "
        f"ELSE length(regexp_extract({text}, '^[+-]?0*([0-9]*)', 1)) END), "
        f"max(CASE WHEN {exponent} THEN {exponent_scale_sql(text)} "
        f"ELSE length(regexp_extract({text}, '[.]([0-9]*)$', 1)) END) "
        f"FROM sample WHERE NOT {missing}"
    ).fetchall()[0]
    whole, scale = int(row[0] or 0), max(int(row[1] or 0), 0)  # 1e3 needs -3: none
    if scale == 0 or scale > 9 or whole + scale > 38:
        return []
    return [f"decimal({max(18, whole + scale)},{scale})"]
