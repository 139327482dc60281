"""Strict casts: a raw value takes its declared type only when it represents it exactly.

Nothing is rounded, truncated, widened or reinterpreted; a value that is not exact is NULL
here, which the contract reports as `type:<column>`. Everything is one SQL expression per
column (set-based: a regular expression on the trimmed text, then DuckDB's cast).

Text values (CSV, JSONL, Parquet strings). Whitespace around a value is ignored
(space, \\t, \\n, \\r, \\v, \\f and no-break space), for typed columns only:
  integer, bigint  an optional sign and digits; a fraction of zeros only (`7.00` is 7);
                   no hex, `_` or `,` separators; out of range fails
  decimal(p,s)     an optional sign, at most p-s integer digits, fraction digits beyond s must
                   be zeros (`1.500` is 1.50, `9.999` fails for s=2)
                   Both also read exponent notation when the value it writes is exact in the
                   type (R writes 1000 as `1e3` and 100000 as `1e+05`): `1e3` is 1000,
                   `1.5e1` is the integer 15, `1.25e-1` is 0.125 in decimal(p,3) and fails for
                   s=2 (the value would need rounding), `15e-1` fails for an integer
  double           a decimal number with an optional exponent (`1.5e3`); no hex, no
                   nan/inf/infinity, no value that overflows to infinity
  boolean          true/false, t/f, yes/no, y/n, 1/0 (any letter case)
  date             YYYY-MM-DD, a real day, nothing after it
  timestamp        YYYY-MM-DD, T or a space, HH:MM[:SS[.ffffff]] (more fraction digits only
                   when zeros), or a bare YYYY-MM-DD (midnight: nothing is lost); an offset
                   (Z, +HH, +HHMM, +HH:MM) only when the column declares `timezone:`, and
                   then it is converted to that zone's local time
  timestamptz      the same, an offset is honoured; a value without one is local time in
                   the column's `timezone:` (UTC when none); a local time the zone skips
                   (DST gap) or repeats (DST overlap) is ambiguous and fails

Native values (Parquet with its own types) must come from the same family and survive a round
trip: DOUBLE 1.5 into integer fails, a TIMESTAMP with a time part into a date fails, a
TIMESTAMP WITH TIME ZONE into a plain timestamp fails unless the column declares `timezone:`.
A nested value (STRUCT, LIST, MAP) into a text column is its JSON text.

The value dialect (catalog/dialect.py) changes what text is accepted, when an object declares it:
  null_values      a text value that is one of the tokens (after trimming) is missing: NULL
                   in every column, typed or text
  date_format,     the declared strftime patterns replace ISO: the first pattern that reads
  timestamp_format the whole value (DuckDB try_strptime) decides; the value must be exact in
  (column format)  the column's type (a date at midnight; nanoseconds only when zeros); a
                   pattern with %z or %Z yields an instant, which follows the offset rules
  decimal_separator, thousands_separator
                   number columns: the declared decimal mark; groups of three digits
                   between thousands marks (or none at all); then the rules above
Nothing here is evaluated per value in Python: each is one SQL expression per column.

Speed: a regular expression per value is the costly part. For the plain spellings a cheaper
proof comes first and the pattern runs only where it fails: an integer or decimal written
exactly as DuckDB writes its value (`canonical_sql`), a date `YYYY-MM-DD` and a timestamp
`YYYY-MM-DD[T ]HH:MM:SS` that read back as themselves (`plain_date_sql`,
`plain_timestamp_sql`). Each proof holds only for text its column's pattern accepts, so what
a value becomes never depends on which path proved it (tests/quality/test_cast_fast_paths.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from penstock.catalog import ColumnSpec, ColumnType
from penstock.catalog.dialect import PLAIN, ColumnDialect, directives, has_zone
from penstock.sql import ident, literal

# the characters a blank value may consist of, and that surround a typed value harmlessly: one
# string literal (control characters and the no-break space as themselves). Written as seven
# chr() calls joined by ||, the 40 copies in the demo's validation statement cost 7 of its
# 23 ms of planning (bench/README.md).
WHITESPACE_SQL = literal(" \t\n\r\x0b\x0c\u00a0")
_WS = r"[ \t\n\r\x0b\x0c\x{a0}]"
_WS_CODES = "32, 9, 10, 13, 11, 12, 160"  # the same characters, as code points

_TRUE = r"(?i)(true|t|yes|y|1)"
_FALSE = r"(?i)(false|f|no|n|0)"
_INTEGER = r"[+-]?[0-9]+(\.0+)?"
_DOUBLE = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
EXPONENT = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)[eE][+-]?[0-9]+"
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6}0*)?)?"
_NAIVE = f"{_DATE}([T ]{_TIME})?"
_OFFSET = r"(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)"
_WITH_OFFSET = f"{_DATE}[T ]{_TIME}{_OFFSET}"

_INTEGER_TYPES = frozenset(
    ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT")
) | frozenset(("UINTEGER", "UBIGINT", "UHUGEINT"))
_FLOAT_TYPES = frozenset(("FLOAT", "DOUBLE", "REAL"))
_NAIVE_TIMESTAMP_TYPES = frozenset(("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"))
_ZONED_TIMESTAMP_TYPES = frozenset(("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"))
# DuckDB's names of nested types: STRUCT(...), MAP(...), UNION(...), a LIST `T[]`, an ARRAY `T[n]`
_NESTED_TYPE = re.compile(r"^(STRUCT|MAP|UNION)\s*\(|\]$")
_EDGE_WHITESPACE = f"^{_WS}|{_WS}$"


def blank_sql(raw: str, raw_is_text: bool) -> str:
    """TRUE when a raw value is missing: NULL, or text of whitespace only."""
    if raw_is_text:
        # cheap first: most values are neither empty nor start with whitespace (the first
        # character's code point is tested; a regular expression per value cost 6x more)
        return (
            f"(CASE WHEN {raw} IS NULL OR {raw} = '' THEN true "
            f"WHEN ord({raw}) IN ({_WS_CODES}) "
            f"THEN regexp_full_match({raw}, {literal(_WS + '*')}) ELSE false END)"
        )
    return f"({raw} IS NULL)"


def null_token_sql(raw: str, null_values: Sequence[str], *, blank_too: bool = False) -> str:
    """TRUE when a text value is one of the null tokens, once stripped of the whitespace around
    it; never NULL. Only values that contain a token are trimmed (trimming is slow). The token
    "" matches a blank value only with `blank_too`: elsewhere blank is missing already."""
    tokens = f"({', '.join(literal(t) for t in null_values)})"
    whens = [f"WHEN {raw} IN {tokens} THEN true"]
    words = [t for t in null_values if t]
    if words:
        contains = " OR ".join(f"contains({raw}, {literal(w)})" for w in words)
        listed = ", ".join(literal(w) for w in words)
        whens.append(f"WHEN {contains} THEN trim({raw}, {WHITESPACE_SQL}) IN ({listed})")
    if blank_too and "" in null_values:
        whens.append(f"WHEN {blank_sql(raw, True)} THEN true")
    return f"(CASE {' '.join(whens)} ELSE false END)"


def missing_sql(raw: str, raw_is_text: bool, dialect: ColumnDialect = PLAIN) -> str:
    """TRUE when a raw value is missing: NULL, blank text, or one of the null tokens."""
    blank = blank_sql(raw, raw_is_text)
    if not raw_is_text or not dialect.null_values:
        return blank
    return f"({blank} OR {null_token_sql(raw, dialect.null_values)})"


def raw_text_sql(raw: str, stage_type: str) -> str:
    """A staged value as text: a nested value (STRUCT, LIST, MAP...) as JSON, not a repr."""
    if _NESTED_TYPE.search(stage_type.upper().strip()):
        return f"CAST(to_json({raw}) AS VARCHAR)"
    return f"CAST({raw} AS VARCHAR)"


def decimal_pattern(precision: int, scale: int) -> str:
    """A decimal literal that fits DECIMAL(precision, scale) exactly."""
    whole = precision - scale
    integer = f"0*[0-9]{{1,{whole}}}" if whole else "0+"
    fraction = rf"\.[0-9]{{1,{scale}}}0*" if scale else r"\.0+"
    return f"[+-]?({integer}({fraction})?|{fraction})"


def _exponent_parts(text: str) -> tuple[str, str, str]:
    """SQL over a number in exponent notation (`text` matches EXPONENT): its mantissa's digits
    (no point), how many of them follow the point, and its exponent (NULL past INTEGER)."""
    mantissa = f"regexp_extract({text}, '^[+-]?([0-9.]*)', 1)"
    fraction = f"length(regexp_extract({mantissa}, '[.]([0-9]*)', 1))"
    exponent = f"TRY_CAST(regexp_extract({text}, '[eE]([+-]?[0-9]+)$', 1) AS INTEGER)"
    return f"replace({mantissa}, '.', '')", fraction, exponent


def exponent_scale_sql(text: str) -> str:
    """The fraction digits a number written in exponent notation (`text` matches EXPONENT)
    needs to be written exactly: 3 for `1.25e-1`, 0 for `1.5e1`, -3 for `1e3` (a whole
    number: at most 0), 0 for a zero; NULL when the exponent is out of INTEGER's range."""
    digits, fraction, exponent = _exponent_parts(text)
    zeros = f"(length({digits}) - length(rtrim({digits}, '0')))"  # trailing zeros say nothing
    return f"CASE WHEN ltrim({digits}, '0') = '' THEN 0 ELSE {fraction} - {zeros} - {exponent} END"


def exponent_digits_sql(text: str) -> str:
    """The integer digits of a number written in exponent notation (`text` matches EXPONENT):
    4 for `1e3`, 2 for `0.05e3`, 0 below 1; NULL when the exponent is out of range."""
    digits, fraction, exponent = _exponent_parts(text)
    return f"greatest(length(ltrim({digits}, '0')) - {fraction} + {exponent}, 0)"


def _exact_exponent(target: str, scale: int) -> Callable[[str], str]:
    """The cast of a number in exponent notation into an integer or decimal type of `scale`
    fraction digits: only when the value needs no more (DuckDB's cast would round it; the
    digits it reads are exact, and too many integer digits overflow to NULL)."""

    def cast(text: str) -> str:
        return (
            f"CASE WHEN {exponent_scale_sql(text)} <= {scale} THEN TRY_CAST({text} AS {target}) END"
        )

    return cast


def _matches(text: str, pattern: str) -> str:
    return f"regexp_full_match({text}, {literal(pattern)})"


def to_instant_sql(local: str, zone: str | None) -> str:
    """A TIMESTAMP (wall-clock time in `zone`, UTC when None) as a TIMESTAMPTZ, or NULL when
    that local time does not exist (DST gap) or exists twice (DST overlap)."""
    if zone is None or zone == "UTC":
        return f"timezone('UTC', {local})"
    z = literal(zone)
    instant = f"timezone({z}, {local})"

    def offset(at: str) -> str:
        return f"(timezone({z}, {at}) - timezone('UTC', {at}))"

    before = offset(f"({instant} - INTERVAL 1 DAY)")
    after = offset(f"({instant} + INTERVAL 1 DAY)")

    def maps_back(off: str) -> str:
        return f"(timezone({z}, timezone('UTC', {local} - {off})) = {local})"

    # no offset change within a day of it: unique; else exactly one candidate must map back
    unique = f"({before} = {after} OR ({maps_back(before)} <> {maps_back(after)}))"
    return f"CASE WHEN {unique} THEN {instant} END"


Branch = tuple[str, Callable[[str], str]]


def _exact(raw: str, branches: Sequence[Branch], fast: str | None = None) -> str:
    """The first branch whose pattern matches the whole text casts it; surrounding whitespace
    is trimmed only for the rare values that carry it (trimming a character set is slow).

    `fast` (SQL over `raw`) is a cheaper proof tried first for the common spelling: where it
    holds, the first branch's pattern matches too, so the first branch casts the value without
    its regular expression; where it does not, the patterns decide as before."""
    whens = [f"WHEN {_matches(raw, pattern)} THEN {cast(raw)}" for pattern, cast in branches]
    if fast is not None:
        whens.insert(0, f"WHEN {fast} THEN {branches[0][1](raw)}")
    trimmed = f"trim({raw}, {WHITESPACE_SQL})"
    inner = " ".join(
        f"WHEN {_matches(trimmed, pattern)} THEN {cast(trimmed)}" for pattern, cast in branches
    )
    either = "|".join(f"({pattern})" for pattern, _ in branches)
    wrapped = f"{_WS}*({either}){_WS}*"
    whens.append(f"WHEN {_matches(raw, wrapped)} THEN CASE {inner} END")
    return f"CASE {' '.join(whens)} END"


def canonical_sql(raw: str, target: str) -> str:
    """TRUE when `raw` is the very text DuckDB writes for its value in `target` (an integer or
    a decimal type): then it has the plain form the strict pattern accepts (no sign but `-`,
    no leading zeros, no exponent or whitespace; a decimal with exactly its scale's digits),
    and casting it loses nothing. Values written otherwise (`+5`, `007`, `1.5` into
    decimal(…,2)) are left to the pattern."""
    return f"(CAST(TRY_CAST({raw} AS {target}) AS VARCHAR) = {raw})"


def plain_date_sql(raw: str) -> str:
    """TRUE when `raw` is a real day written `YYYY-MM-DD` exactly as DuckDB writes it (the
    length rules out a year of five digits, which the date pattern refuses)."""
    return f"(CAST(TRY_CAST({raw} AS DATE) AS VARCHAR) = {raw} AND strlen({raw}) = 10)"


def plain_timestamp_sql(raw: str) -> str:
    """TRUE when `raw` is a real wall-clock time written `YYYY-MM-DDTHH:MM:SS` or
    `YYYY-MM-DD HH:MM:SS` (whole seconds, four-digit year) exactly as it reads back: fixed
    positions, all digits, in range (no 24:00, no leap second, no 30 February). The length and
    the first character rule out the years the timestamp pattern refuses (five digits, or a
    minus sign: strftime writes year -999 as `-999`); anything else is left to the pattern."""
    value = f"TRY_CAST({raw} AS TIMESTAMP)"
    layouts = " OR ".join(
        f"strftime({value}, {literal(f'%Y-%m-%d{sep}%H:%M:%S')}) = {raw}" for sep in ("T", " ")
    )
    return f"(({layouts}) AND strlen({raw}) = 19 AND {raw} >= '0')"


def _timestamp_branches(spec: ColumnSpec) -> list[Branch]:
    zone = spec.timezone

    def naive(text: str) -> str:
        return f"TRY_CAST({text} AS TIMESTAMP)"

    def zoned(text: str) -> str:
        return f"TRY_CAST({text} AS TIMESTAMPTZ)"

    if spec.column_type.with_zone:
        return [(_NAIVE, lambda t: to_instant_sql(naive(t), zone)), (_WITH_OFFSET, zoned)]
    if zone is None:
        return [(_NAIVE, naive)]
    return [(_NAIVE, naive), (_WITH_OFFSET, lambda t: f"timezone({literal(zone)}, {zoned(t)})")]


def _char(character: str) -> str:
    """One character as an RE2 escape (safe for any character)."""
    return f"\\x{{{ord(character):x}}}"


def separated_number_pattern(column_type: ColumnType, dialect: ColumnDialect) -> str:
    """The number literals of a column type written with the dialect's separators: the
    decimal mark, and groups of three digits between thousands marks (or no marks at all)."""
    mark = _char(dialect.decimal_separator)
    digits = "[0-9]+"
    if dialect.thousands_separator is not None:
        digits = f"([0-9]{{1,3}}({_char(dialect.thousands_separator)}[0-9]{{3}})+|[0-9]+)"
    if column_type.name in ("integer", "bigint"):
        return f"[+-]?{digits}({mark}0+)?"
    if column_type.scale is not None:
        # the integer digits are left to the cast: too many overflow to NULL
        fraction = f"{mark}[0-9]{{1,{column_type.scale}}}0*" if column_type.scale else f"{mark}0+"
        return f"[+-]?({digits}({fraction})?|{fraction})"
    return f"[+-]?({digits}({mark}[0-9]*)?|{mark}[0-9]+)([eE][+-]?[0-9]+)?"


def _plain_number(text: str, dialect: ColumnDialect) -> str:
    """A number written with the dialect's separators, rewritten with a `.` mark and no groups
    (only for text its pattern matched)."""
    if dialect.thousands_separator is not None:  # replace is twice as fast as translate
        text = f"replace({text}, {literal(dialect.thousands_separator)}, '')"
    return f"replace({text}, {literal(dialect.decimal_separator)}, '.')"


def _read_by_pattern(text: str, pattern: str, spec: ColumnSpec) -> str:
    """`text` read by one strftime pattern, exact in the column's type, or NULL."""
    column_type = spec.column_type
    zone = spec.timezone
    parsed = f"try_strptime({text}, {literal(pattern)})"
    zoned = has_zone(pattern)
    if "n" in directives(pattern):  # nanoseconds: exact only when they fit microseconds
        wide, narrow = ("TIMESTAMPTZ_NS", "TIMESTAMPTZ") if zoned else ("TIMESTAMP_NS", "TIMESTAMP")
        parsed = (
            f"CASE WHEN CAST(CAST({parsed} AS {narrow}) AS {wide}) = {parsed} "
            f"THEN CAST({parsed} AS {narrow}) END"
        )
    if zoned:  # an instant (the catalog refuses %z / %Z for a date column)
        if column_type.with_zone:
            return parsed
        return f"timezone({literal(zone)}, {parsed})" if zone is not None else "NULL::TIMESTAMP"
    if column_type.family == "date":
        return f"CASE WHEN {parsed} = CAST({parsed} AS DATE) THEN CAST({parsed} AS DATE) END"
    return to_instant_sql(parsed, zone) if column_type.with_zone else parsed


def _by_patterns(raw: str, spec: ColumnSpec, patterns: Sequence[str]) -> str:
    """The first pattern that reads the whole value decides; whitespace around it is ignored
    (strptime itself skips leading spaces and tabs; the rest is trimmed for the rare values
    that still fail and carry some)."""

    def read(text: str) -> str:
        whens = " ".join(
            f"WHEN try_strptime({text}, {literal(p)}) IS NOT NULL "
            f"THEN {_read_by_pattern(text, p, spec)}"
            for p in patterns
        )
        return f"CASE {whens} END"

    trimmed = read(f"trim({raw}, {WHITESPACE_SQL})")
    return (
        f"coalesce({read(raw)}, CASE WHEN regexp_matches({raw}, {literal(_EDGE_WHITESPACE)}) "
        f"THEN {trimmed} END)"
    )


def _from_text(
    raw: str, spec: ColumnSpec, dialect: ColumnDialect = PLAIN, *, fast: bool = True
) -> str:
    column_type = spec.column_type
    target = column_type.duckdb_type

    def cast(text: str) -> str:
        return f"TRY_CAST({text} AS {target})"

    def finite(text: str) -> str:
        return f"CASE WHEN isfinite({cast(text)}) THEN {cast(text)} END"

    if column_type.family == "number" and not dialect.plain_numbers:
        pattern = separated_number_pattern(column_type, dialect)
        if column_type.name == "double":
            return _exact(raw, [(pattern, lambda t: finite(_plain_number(t, dialect)))])
        return _exact(raw, [(pattern, lambda t: cast(_plain_number(t, dialect)))])
    if column_type.family in ("date", "timestamp") and dialect.formats is not None:
        return _by_patterns(raw, spec, dialect.formats)

    if column_type.name in ("integer", "bigint"):
        branches = [(_INTEGER, cast), (EXPONENT, _exact_exponent(target, 0))]
        return _exact(raw, branches, canonical_sql(raw, target) if fast else None)
    if column_type.precision is not None and column_type.scale is not None:
        pattern = decimal_pattern(column_type.precision, column_type.scale)
        branches = [(pattern, cast), (EXPONENT, _exact_exponent(target, column_type.scale))]
        return _exact(raw, branches, canonical_sql(raw, target) if fast else None)
    if column_type.name == "double":
        return _exact(raw, [(_DOUBLE, finite)])
    if column_type.family == "boolean":
        return _exact(raw, [(_TRUE, lambda _: "true"), (_FALSE, lambda _: "false")])
    if column_type.family == "date":
        return _exact(raw, [(_DATE, cast)], plain_date_sql(raw) if fast else None)
    if column_type.family == "timestamp":
        # the first branch reads a local time without offset (_NAIVE): the fast proof's kind
        return _exact(raw, _timestamp_branches(spec), plain_timestamp_sql(raw) if fast else None)
    return cast(raw)


def _round_trip(raw: str, target: str, stage_type: str) -> str:
    """`raw` as `target`, or NULL unless it casts back to the very same value."""
    value = f"TRY_CAST({raw} AS {target})"
    return f"CASE WHEN TRY_CAST({value} AS {stage_type}) = {raw} THEN {value} END"


def _numeric_kind(stage_type: str) -> str | None:
    if stage_type in _INTEGER_TYPES:
        return "integer"
    if stage_type in _FLOAT_TYPES:
        return "float"
    if re.fullmatch(r"DECIMAL(\(\s*\d+\s*,\s*\d+\s*\))?|NUMERIC.*", stage_type):
        return "decimal"
    return None


def _from_native(raw: str, spec: ColumnSpec, stage_type: str) -> str:
    column_type = spec.column_type
    target = column_type.duckdb_type
    stage = stage_type.upper().strip()
    nothing = f"NULL::{target}"
    if column_type.family == "number":
        kind = _numeric_kind(stage)
        if kind is None:
            return nothing
        value = _round_trip(raw, target, stage)
        if kind == "float" or column_type.name == "double":
            return f"CASE WHEN isfinite({raw}) THEN {value} END"
        return value
    if column_type.family == "boolean":
        return raw if stage == "BOOLEAN" else nothing
    if column_type.family == "date":
        if stage == "DATE":
            return raw
        if stage in _NAIVE_TIMESTAMP_TYPES:
            return _round_trip(raw, "DATE", stage)
        return nothing
    if column_type.family == "timestamp":
        zone = spec.timezone
        if stage in _NAIVE_TIMESTAMP_TYPES or stage == "DATE":
            exact = stage in ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "DATE")
            local = f"CAST({raw} AS TIMESTAMP)" if exact else _round_trip(raw, "TIMESTAMP", stage)
            return to_instant_sql(local, zone) if column_type.with_zone else local
        if stage in _ZONED_TIMESTAMP_TYPES:
            if column_type.with_zone:
                return raw
            return f"timezone({literal(zone)}, {raw})" if zone is not None else nothing
        return nothing
    return f"TRY_CAST({raw} AS {target})"


def strict_cast_sql(
    raw_alias: str,
    spec: ColumnSpec,
    stage_type: str,
    raw_is_text: bool,
    dialect: ColumnDialect = PLAIN,
    *,
    fast: bool = True,
) -> str:
    """The typed value of a raw column: exact, or NULL (see the module docstring). `fast`
    false leaves out the fast proofs of the common spellings: the patterns alone decide (the
    reference the tests hold the fast proofs to; the value is the same either way)."""
    raw = ident(raw_alias)
    if spec.column_type.family == "text":
        value = raw if raw_is_text else raw_text_sql(raw, stage_type)
    elif raw_is_text:
        value = _from_text(raw, spec, dialect, fast=fast)
    else:
        value = _from_native(raw, spec, stage_type)
    if raw_is_text and dialect.null_values:
        text = spec.column_type.family == "text"
        token = null_token_sql(raw, dialect.null_values, blank_too=text)
        return f"CASE WHEN {token} THEN NULL ELSE {value} END"
    return value
