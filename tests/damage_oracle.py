"""What penstock must make of a damaged file: the oracles of
tests/pipeline/test_damaged_files_property.py (the files come from tests/damaged_files.py).

JSON Lines has an exact oracle: a record is a non-blank line, so the records of the damaged
bytes, their numbers and what each must become are computed from the bytes alone (a line
equal to an original record's line is that record, untouched). CSV record boundaries after
damage depend on how the reader resynchronises, so the CSV checks (in the test) are exact only
where that cannot matter: before the first mutation that can move a record boundary, and for
records far enough after it; the helpers for them are at the end.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from penstock.catalog.columns import SOURCE_NAME_SPACES

from damaged_files import BOM, COLUMNS, Row

_TYPED_SPACE = " \t\r\n\v\f\xa0"  # what the README calls whitespace around a typed value
_INTEGER = re.compile(r"[+-]?\d+(\.0*)?")
_DECIMAL = re.compile(r"([+-]?)(\d+)(?:\.(\d+))?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# -- what penstock's readers do with bytes --------------------------------------------------


def cut_inside_character(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data" and exc.end == len(raw)
    return False


def encoding_limit(records: int) -> int:
    """Records with invalid bytes a file may hold: 1% of them (rounded up), at most 1,000, and
    never all of them."""
    return max(0, min(1000, math.ceil(records / 100), records - 1))


def source_key(name: str) -> str:
    return name.strip(SOURCE_NAME_SPACES).lower()


UNKNOWN: Any = object()  # a value the oracle does not predict (either outcome is accepted)


class Invalid(Exception):
    """The value breaks the contract: the record must be quarantined."""


def _typed_text(value: Any) -> str | None:
    """The text penstock stages for a JSON value (numbers as DuckDB prints them)."""
    if value is None:
        return None
    if isinstance(value, _Number):
        return value.duckdb_text()
    if isinstance(value, str):
        return value
    return UNKNOWN  # true/false, arrays, objects: not what a mutation of these files makes


class _Number(str):
    """A JSON number's text as written."""

    def duckdb_text(self) -> str:
        if re.fullmatch(r"-?\d+", self):
            return str(int(self))
        return repr(float(self))  # DuckDB prints a double's shortest round-trip text


def predict_id(value: Any) -> int:
    text = _typed_text(value)
    if text is UNKNOWN:
        return UNKNOWN  # type: ignore[no-any-return]
    if text is None or not text.strip(_TYPED_SPACE):
        raise Invalid("required:id")
    text = text.strip(_TYPED_SPACE)
    if not _INTEGER.fullmatch(text):
        raise Invalid("type:id")
    number = int(Decimal(text))
    if not -(2**63) <= number < 2**63:
        raise Invalid("type:id")
    return number


def predict_label(value: Any) -> str | None:
    return _typed_text(value)  # type: ignore[no-any-return]


def predict_amount(value: Any) -> Decimal | None:
    text = _typed_text(value)
    if text is UNKNOWN:
        return UNKNOWN  # type: ignore[no-any-return]
    if text is None or not text.strip(_TYPED_SPACE):
        return None
    text = text.strip(_TYPED_SPACE)
    match = _DECIMAL.fullmatch(text)
    if match is None:
        if re.fullmatch(r"[+-]?(\d+\.|\.\d+)", text):
            return UNKNOWN  # type: ignore[no-any-return]  # `5.` and `.5`: not in the README
        raise Invalid("type:amount")
    _, whole, fraction = match.groups()
    if len(whole.lstrip("0")) > 8 or (fraction and fraction[2:].strip("0")):
        raise Invalid("type:amount")
    try:
        return Decimal(text).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise Invalid("type:amount") from None


def predict_day(value: Any) -> date | None:
    text = _typed_text(value)
    if text is UNKNOWN:
        return UNKNOWN  # type: ignore[no-any-return]
    if text is None or not text.strip(_TYPED_SPACE):
        return None
    text = text.strip(_TYPED_SPACE)
    if not _DATE.fullmatch(text):
        raise Invalid("type:day")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid("type:day") from None


PREDICT: dict[str, Callable[[Any], Any]] = {
    "id": predict_id,
    "label": predict_label,
    "amount": predict_amount,
    "day": predict_day,
}


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members in order, duplicates kept."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_object(text: str) -> _Pairs | None:
    """The members of `text` if it is exactly one JSON object (strict RFC 8259), else None.
    An escaped lone surrogate (`"\\ud83d"` without its pair) is no text: not valid here."""
    try:
        value = json.loads(
            text,
            object_pairs_hook=_Pairs,
            parse_int=_Number,
            parse_float=_Number,
            parse_constant=_reject_constant,
        )
    except ValueError:
        return None
    if not isinstance(value, _Pairs) or _has_surrogate(value):
        return None
    return value


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, list):  # arrays and objects (pairs)
        return any(_has_surrogate(v) for v in value)
    if isinstance(value, tuple):
        return any(_has_surrogate(v) for v in value)
    return False


def predict_row(pairs: _Pairs) -> tuple[Any, ...] | None:
    """The row a JSON object loads as (UNKNOWN where not predicted); None if ambiguous keys
    make it malformed; raises Invalid if a value breaks the contract."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        name = source_key(key)
        if name in seen:
            return None
        seen[name] = value
    return tuple(PREDICT[c](seen.get(c)) for c in COLUMNS)


# -- the JSON Lines oracle ------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """A record of the damaged file as penstock must number it, and what it must become.

    kind: `intact` (an original record's bytes: loads with `row`), `encoding` / `malformed`
    (quarantined with `raw`), `valid` (a damaged record still valid: loads as `row`, UNKNOWN
    columns unchecked), `invalid` (a damaged record breaking the contract: quarantined),
    `either` (the oracle does not decide)."""

    number: int
    kind: str
    raw: str
    row: tuple[Any, ...] | None = None


@dataclass
class Expectation:
    records: list[Record]
    refused_at: int | None  # the first bad line, if the file must be refused as not UTF-8


def expect_jsonl(data: bytes, originals: dict[bytes, Row]) -> Expectation:
    body = data.removeprefix(BOM)
    parts = body.split(b"\n")
    records: list[Record] = []
    bad_lines: list[int] = []
    for index, raw in enumerate(parts):
        if not raw.strip(b" \t\r"):
            continue  # blank: not a record
        number = len(records) + 1
        last = index == len(parts) - 1
        try:
            text = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            shown = raw.decode("utf-8", "backslashreplace").rstrip("\r")
            if last and cut_inside_character(raw):
                records.append(Record(number, "malformed", shown))
            else:
                records.append(Record(number, "encoding", shown))
                bad_lines.append(index + 1)
            continue
        original = originals.get(text.encode())
        if original is not None:
            records.append(Record(number, "intact", text, astuple(original)))
            continue
        pairs = json_object(text)
        if pairs is None:
            records.append(Record(number, "malformed", text))
            continue
        try:
            row = predict_row(pairs)
        except Invalid:
            records.append(Record(number, "invalid", text))
            continue
        if row is None:
            records.append(Record(number, "malformed", text))  # two spellings of one key
        else:
            records.append(Record(number, "valid", text, row))
    refused = len(bad_lines) > encoding_limit(len(records))
    return Expectation(records, bad_lines[0] if refused else None)


def astuple(row: Row) -> tuple[Any, ...]:
    return (row.id, row.label, row.amount, row.day)


# -- CSV -------------------------------------------------------------------------------------


def physical_lines(data: bytes) -> list[bytes]:
    """`data` split at every line end: CRLF, LF or a bare CR."""
    return re.split(rb"\r\n|\r|\n", data)


def line_of(data: bytes, offset: int) -> int:
    """The 0-based physical line of byte `offset`."""
    return len(physical_lines(data[:offset])) - 1


def invalid_lines(data: bytes) -> list[int]:
    """The physical lines holding bytes that are not UTF-8 (0-based)."""
    out = []
    lines = physical_lines(data)
    for index, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            out.append(index)
    return out


def lf_line(data: bytes, index: int) -> int:
    """The 1-based line, counting line feeds only, of physical line `index` (0-based; any
    line end counts there)."""
    offset = 0
    for _ in range(index):
        match = re.compile(rb"\r\n|\r|\n").search(data, offset)
        assert match is not None
        offset = match.end()
    return data.count(b"\n", 0, offset) + 1
