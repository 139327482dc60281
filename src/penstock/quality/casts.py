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

from penstock.catalog import ColumnSpec
from penstock.sql import ident, literal

# the characters a blank value may consist of, and that surround a typed value harmlessly
WHITESPACE_SQL = "(chr(32) || chr(9) || chr(10) || chr(13) || chr(11) || chr(12) || chr(160))"

BOOLEAN_TRUE = ("true", "t", "yes", "y", "1")
BOOLEAN_FALSE = ("false", "f", "no", "n", "0")

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
        return f"({raw} IS NULL OR trim({raw}, {WHITESPACE_SQL}) = '')"
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


def _text_timestamp(text: str, spec: ColumnSpec) -> str:
    zone = spec.timezone
    naive = f"TRY_CAST({text} AS TIMESTAMP)"
    zoned = f"TRY_CAST({text} AS TIMESTAMPTZ)"
    if spec.column_type.with_zone:
        return (
            f"CASE WHEN {_matches(text, _NAIVE)} THEN {to_instant_sql(naive, zone)} "
            f"WHEN {_matches(text, _WITH_OFFSET)} THEN {zoned} END"
        )
    if zone is None:
        return f"CASE WHEN {_matches(text, _NAIVE)} THEN {naive} END"
    return (
        f"CASE WHEN {_matches(text, _NAIVE)} THEN {naive} "
        f"WHEN {_matches(text, _WITH_OFFSET)} THEN timezone({literal(zone)}, {zoned}) END"
    )


def _from_text(raw: str, spec: ColumnSpec) -> str:
    column_type = spec.column_type
    target = column_type.duckdb_type
    text = f"trim({raw}, {WHITESPACE_SQL})"
    if column_type.name in ("integer", "bigint"):
        return f"CASE WHEN {_matches(text, _INTEGER)} THEN TRY_CAST({text} AS {target}) END"
    if column_type.precision is not None and column_type.scale is not None:
        pattern = decimal_pattern(column_type.precision, column_type.scale)
        return f"CASE WHEN {_matches(text, pattern)} THEN TRY_CAST({text} AS {target}) END"
    if column_type.name == "double":
        value = f"TRY_CAST({text} AS DOUBLE)"
        return f"CASE WHEN {_matches(text, _DOUBLE)} AND isfinite({value}) THEN {value} END"
    if column_type.family == "boolean":
        lowered = f"lower({text})"
        true = ", ".join(literal(t) for t in BOOLEAN_TRUE)
        false = ", ".join(literal(f) for f in BOOLEAN_FALSE)
        return (
            f"CASE WHEN {lowered} IN ({true}) THEN true WHEN {lowered} IN ({false}) THEN false END"
        )
    if column_type.family == "date":
        return f"CASE WHEN {_matches(text, _DATE)} THEN TRY_CAST({text} AS DATE) END"
    if column_type.family == "timestamp":
        return _text_timestamp(text, spec)
    return f"TRY_CAST({raw} AS {target})"


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
