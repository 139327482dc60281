"""Valid CSV and JSON Lines files, random damage done to them, and what penstock must make of
the result: the generator and the oracles of tests/pipeline/test_damaged_files_property.py.

A file is written from rows of a small contract (`id` bigint key, `label` text, `amount`
decimal(10,2), `day` date). Each mutation changes bytes at a position and records which of
the original records it touched (the bytes of a record are tracked through every insertion,
so a later mutation still knows whose bytes it hits).

JSON Lines has an exact oracle: a record is a non-blank line, so the records of the damaged
bytes, their numbers and what each must become are computed from the bytes alone (a line
equal to an original record's line is that record, untouched). CSV record boundaries after
damage depend on how the reader resynchronises, so its oracle is exact only where that cannot
matter: before the first mutation that can move a record boundary (a quote, a line break, a
cut), and for records far enough after it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from hypothesis import strategies as st

from penstock.catalog.columns import SOURCE_NAME_SPACES

COLUMNS = ("id", "label", "amount", "day")
BOM = b"\xef\xbb\xbf"
# invalid UTF-8: a lone continuation byte, a lead byte without its continuation, latin-1
# letters, an overlong encoding, an encoded surrogate, bytes that never occur
INVALID_UTF8 = (b"\x80", b"\xc3", b"\xe9", b"\xc0\xaf", b"\xed\xa0\x80", b"\xff", b"\xfe\xfe")
LONG_FIELD = 100_000
# a quoted CSV field may span at most this many lines before the reader gives up on it
# (csvrecover's `max_line_span`, default 8: records this close after a moved boundary may be
# swallowed into a malformed record)
CSV_LINE_SPAN = 8
_TYPED_SPACE = " \t\r\n\v\f\xa0"  # what the README calls whitespace around a typed value
_INTEGER = re.compile(r"[+-]?\d+(\.0*)?")
_DECIMAL = re.compile(r"([+-]?)(\d+)(?:\.(\d+))?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

YML = """
name: damaged
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
"""
OBJECT = """
  {name}:
    source: landing
    files: "{name}/*.{ext}"
    key: [id]
    load: append
    columns:
      id: {{type: bigint, required: true}}
      label: {{type: text}}
      amount: {{type: "decimal(10,2)"}}
      day: {{type: date}}
"""


def project_yml(names: Sequence[str], ext: str) -> str:
    """One object per file, each with the contract: a file refused whole touches no other."""
    return YML + "".join(OBJECT.format(name=n, ext=ext) for n in names)


# -- rows and valid files -------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    id: int
    label: str | None
    amount: Decimal | None
    day: date | None


LABEL_CHARS = st.one_of(
    st.sampled_from(list("ab xyz019,;\"'\\{}[]:\n\t/-")),
    st.sampled_from(["é", "ü", "ß", "中", "文", "😀", "\u0301", "\u00a0", "ﬁ", "Ω", "\u2028"]),
)
labels = st.one_of(
    st.none(),
    st.text(LABEL_CHARS, min_size=1, max_size=24).filter(lambda s: s.strip(_TYPED_SPACE) != ""),
)
amounts = st.one_of(
    st.none(), st.integers(-(10**10) + 1, 10**10 - 1).map(lambda c: Decimal(c).scaleb(-2))
)
days = st.one_of(st.none(), st.dates(date(1900, 1, 1), date(2199, 12, 31)))


@st.composite
def row_lists(draw: st.DrawFn) -> list[Row]:
    """5 to 60 rows with distinct ids."""
    count = draw(st.integers(5, 60))
    ids = draw(st.lists(st.integers(1, 10**12), min_size=count, max_size=count, unique=True))
    return [Row(i, draw(labels), draw(amounts), draw(days)) for i in ids]


def amount_text(amount: Decimal, short: bool) -> str:
    """`12.50`, or with `short` the shortest exact text (`12.5`, `12`)."""
    if not short:
        return f"{amount:.2f}"
    return f"{amount.normalize():f}"


@dataclass(frozen=True)
class Style:
    """How a file is written: line ends, a final line break, a byte order mark, and (JSON
    Lines) numbers as numbers or strings, missing values as null or left out, non-ASCII as
    `\\u` escapes or as is."""

    crlf: bool
    final_newline: bool
    bom: bool
    amount_as_number: bool
    short_amounts: bool
    omit_nulls: bool
    ascii_only: bool


styles = st.builds(
    Style,
    crlf=st.booleans(),
    final_newline=st.booleans(),
    bom=st.booleans(),
    amount_as_number=st.booleans(),
    short_amounts=st.booleans(),
    omit_nulls=st.booleans(),
    ascii_only=st.booleans(),
)


@dataclass
class Written:
    """A file's bytes, the record each byte belongs to (-1: header or byte order mark), each
    record's bytes without its line end, and the rows written."""

    data: bytes
    owner: list[int]
    records: list[bytes]
    rows: list[Row]


def _assemble(head: bytes, records: list[bytes], style: Style, rows: Sequence[Row]) -> Written:
    end = b"\r\n" if style.crlf else b"\n"
    data, owner = bytearray(head), [-1] * len(head)
    for index, record in enumerate(records):
        chunk = record + (end if index < len(records) - 1 or style.final_newline else b"")
        data += chunk
        owner += [index] * len(chunk)
    return Written(bytes(data), owner, records, list(rows))


def write_jsonl(rows: Sequence[Row], style: Style) -> Written:
    lines = []
    for row in rows:
        obj: dict[str, Any] = {"id": row.id}
        for name, value in (("label", row.label), ("amount", row.amount), ("day", row.day)):
            if value is None:
                if not style.omit_nulls:
                    obj[name] = None
            elif isinstance(value, Decimal):
                text = amount_text(value, style.short_amounts)
                obj[name] = _Raw(text) if style.amount_as_number else text
            else:
                obj[name] = str(value)
        lines.append(_dumps(obj, style.ascii_only).encode())
    return _assemble(BOM if style.bom else b"", lines, style, rows)


class _Raw(str):
    """A number written as is."""


def _dumps(obj: dict[str, Any], ascii_only: bool) -> str:
    parts = []
    for key, value in obj.items():
        text = str(value) if isinstance(value, _Raw) else json.dumps(value, ensure_ascii=ascii_only)
        parts.append(f"{json.dumps(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


def write_csv(rows: Sequence[Row], style: Style) -> Written:
    def line(values: Sequence[str]) -> bytes:
        out = io.StringIO()  # a field holding a line end character is quoted
        csv.writer(out, lineterminator="\r\n").writerow(values)
        return out.getvalue().removesuffix("\r\n").encode()

    records = [
        line(
            [
                str(r.id),
                r.label or "",
                "" if r.amount is None else amount_text(r.amount, style.short_amounts),
                "" if r.day is None else str(r.day),
            ]
        )
        for r in rows
    ]
    end = b"\r\n" if style.crlf else b"\n"
    return _assemble(line(list(COLUMNS)) + end, records, style, rows)


# -- mutations ------------------------------------------------------------------------------

KINDS = ("flip", "truncate", "nul", "quote", "utf8", "long", "crlf", "blank")


@dataclass(frozen=True)
class Mutation:
    kind: str
    at: int
    arg: int


mutations = st.lists(
    st.builds(Mutation, st.sampled_from(KINDS), st.integers(0, 2**32), st.integers(0, 2**16)),
    max_size=4,
).filter(lambda ms: sum(m.kind == "long" for m in ms) <= 1)


@dataclass
class Damaged:
    """A file after its mutations: its bytes and their owners, the records touched, and the
    records at which a record boundary may have moved (a quote or a line break put in or
    taken out there)."""

    data: bytes
    owner: list[int]
    touched: set[int] = field(default_factory=set)
    boundaries: list[int] = field(default_factory=list)


def mutate(written: Written, changes: Sequence[Mutation], first: int) -> Damaged:
    """Apply `changes` in order to bytes from offset `first` on (CSV: after the header)."""
    d = Damaged(written.data, list(written.owner))
    for m in changes:
        if len(d.data) <= first:
            break
        p = first + m.at % (len(d.data) - first)
        if m.kind == "flip":
            old = d.data[p]
            new = old ^ (m.arg % 255 + 1)
            d.data = d.data[:p] + bytes([new]) + d.data[p + 1 :]
            d.touched.add(d.owner[p])
            if old in b'"\r\n' or new in b'"\r\n':
                _moved(d, p, 1)
        elif m.kind == "truncate":  # what follows the cut is gone: no boundary moves
            p = max(p, first + 1)
            if d.data[p - 1 : p] != b"\n":
                d.touched.add(d.owner[p - 1])
            d.data, d.owner = d.data[:p], d.owner[:p]
        elif m.kind == "crlf":
            newline = d.data.find(b"\n", p)
            if m.arg % 3 == 2 or newline < 0:  # a bare CR anywhere
                _insert(d, p, b"\r")
                _moved(d, p, 1)
            else:  # a line end made CRLF, or a bare CR
                new = b"\r\n" if m.arg % 3 == 0 else b"\r"
                cut = newline - 1 if d.data[newline - 1 : newline] == b"\r" else newline
                owner = d.owner[newline]
                d.data = d.data[:cut] + new + d.data[newline + 1 :]
                d.owner = d.owner[:cut] + [owner] * len(new) + d.owner[newline + 1 :]
                d.touched.add(owner)
                _moved(d, cut, len(new))
        elif m.kind == "blank":
            start = max(d.data.rfind(b"\n", 0, p) + 1, first)
            blank = (b"\n", b"\r\n", b" \t\n", b"   \r\n")[m.arg % 4]
            _insert(d, start, blank)
            _moved(d, start, len(blank))
        else:
            inserted = {
                "nul": b"\x00",
                "quote": b'"',
                "utf8": INVALID_UTF8[m.arg % len(INVALID_UTF8)],
                "long": b"x" * LONG_FIELD,
            }[m.kind]
            _insert(d, p, inserted)
            if m.kind == "quote":
                _moved(d, p, 1)
    d.touched.discard(-1)
    return d


def _insert(d: Damaged, p: int, inserted: bytes) -> None:
    owner = d.owner[p] if p < len(d.owner) else d.owner[-1]
    splits_crlf = d.data[p - 1 : p + 1] == b"\r\n"  # leaves a bare CR: a line end moves
    d.data = d.data[:p] + inserted + d.data[p:]
    d.owner = d.owner[:p] + [owner] * len(inserted) + d.owner[p:]
    d.touched.add(owner)
    if splits_crlf:
        _moved(d, p, len(inserted))


def _moved(d: Damaged, p: int, length: int) -> None:
    """Bytes at `p` (`length` of them) may move a record boundary: the record they are in
    (the first record, for the header's) and the record after them are touched."""
    d.boundaries.append(max(d.owner[p], 0) if p < len(d.owner) else max(d.owner[-1], 0))
    if p + length < len(d.owner):
        d.touched.add(d.owner[p + length])


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


def record_starts(d: Damaged) -> dict[int, int]:
    """The offset of each remaining original record's first byte in the damaged bytes."""
    starts: dict[int, int] = {}
    for offset, owner in enumerate(d.owner):
        if owner >= 0 and owner not in starts:
            starts[owner] = offset
    return starts


def record_bytes(d: Damaged) -> dict[int, bytes]:
    """Each remaining original record's bytes in the damaged file (line end included)."""
    out: dict[int, bytearray] = {}
    for byte, owner in zip(d.data, d.owner, strict=True):
        if owner >= 0:
            out.setdefault(owner, bytearray()).append(byte)
    return {k: bytes(v) for k, v in out.items()}


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
