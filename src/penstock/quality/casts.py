"""Strict casts: a raw value takes its declared type only when it represents it exactly.

Nothing is rounded, truncated, widened or reinterpreted; a value that is not exact is NULL
here, which the contract reports as `type:<column>`. Everything is one SQL expression per
column (set-based, cheap: a regular expression on the trimmed text, then DuckDB's cast).

Text values (CSV, JSONL, Parquet strings). Whitespace around a value is ignored
(space, \\t, \\n, \\r, \\v, \\f and no-break space), for typed columns only:
  integer, bigint  an optional sign and digits; a fraction of zeros only (`7.00` is 7);
                   no exponent, hex, `_` or `,` separators; out of range fails
  decimal(p,s)     an optional sign, at most p-s integer digits, fraction digits beyond s must
                   be zeros (`1.500` is 1.50, `9.999` fails for s=2); no exponent
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
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from penstock.catalog import ColumnSpec
from penstock.sql import ident, literal

# the characters a blank value may consist of, and that surround a typed value harmlessly
WHITESPACE_SQL = "(chr(32) || chr(9) || chr(10) || chr(13) || chr(11) || chr(12) || chr(160))"
_WS = r"[ \t\n\r\x0b\x0c\x{a0}]"

_TRUE = r"(?i)(true|t|yes|y|1)"
_FALSE = r"(?i)(false|f|no|n|0)"
_INTEGER = r"[+-]?[0-9]+(\.0+)?"
_DOUBLE = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
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


def blank_sql(raw: str, raw_is_text: bool) -> str:
    """TRUE when a raw value is missing: NULL, or text of whitespace only."""
    if raw_is_text:
        # cheap first: most values are neither empty nor start with whitespace
        return (
            f"(CASE WHEN {raw} IS NULL OR {raw} = '' THEN true "
            f"WHEN regexp_matches({raw}, {literal('^' + _WS)}) "
            f"THEN regexp_full_match({raw}, {literal(_WS + '*')}) ELSE false END)"
        )
    return f"({raw} IS NULL)"


def decimal_pattern(precision: int, scale: int) -> str:
    """A decimal literal that fits DECIMAL(precision, scale) exactly."""
    whole = precision - scale
    integer = f"0*[0-9]{{1,{whole}}}" if whole else "0+"
    fraction = rf"\.[0-9]{{1,{scale}}}0*" if scale else r"\.0+"
    return f"[+-]?({integer}({fraction})?|{fraction})"


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


def _exact(raw: str, branches: Sequence[Branch]) -> str:
    """The first branch whose pattern matches the whole text casts it; surrounding whitespace
    is trimmed only for the rare values that carry it (trimming a character set is slow)."""
    whens = [f"WHEN {_matches(raw, pattern)} THEN {cast(raw)}" for pattern, cast in branches]
    trimmed = f"trim({raw}, {WHITESPACE_SQL})"
    inner = " ".join(
        f"WHEN {_matches(trimmed, pattern)} THEN {cast(trimmed)}" for pattern, cast in branches
    )
    either = "|".join(f"({pattern})" for pattern, _ in branches)
    wrapped = f"{_WS}*({either}){_WS}*"
    whens.append(f"WHEN {_matches(raw, wrapped)} THEN CASE {inner} END")
    return f"CASE {' '.join(whens)} END"


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


def _from_text(raw: str, spec: ColumnSpec) -> str:
    column_type = spec.column_type
    target = column_type.duckdb_type

    def cast(text: str) -> str:
        return f"TRY_CAST({text} AS {target})"

    def finite(text: str) -> str:
        return f"CASE WHEN isfinite({cast(text)}) THEN {cast(text)} END"

    if column_type.name in ("integer", "bigint"):
        return _exact(raw, [(_INTEGER, cast)])
    if column_type.precision is not None and column_type.scale is not None:
        pattern = decimal_pattern(column_type.precision, column_type.scale)
        return _exact(raw, [(pattern, cast)])
    if column_type.name == "double":
        return _exact(raw, [(_DOUBLE, finite)])
    if column_type.family == "boolean":
        return _exact(raw, [(_TRUE, lambda _: "true"), (_FALSE, lambda _: "false")])
    if column_type.family == "date":
        return _exact(raw, [(_DATE, cast)])
    if column_type.family == "timestamp":
        return _exact(raw, _timestamp_branches(spec))
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


def strict_cast_sql(raw_alias: str, spec: ColumnSpec, stage_type: str, raw_is_text: bool) -> str:
    """The typed value of a raw column: exact, or NULL (see the module docstring)."""
    raw = ident(raw_alias)
    if spec.column_type.family == "text":
        return raw if raw_is_text else f"CAST({raw} AS VARCHAR)"
    if raw_is_text:
        return _from_text(raw, spec)
    return _from_native(raw, spec, stage_type)
