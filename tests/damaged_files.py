"""Valid CSV and JSON Lines files and random damage done to them: the generator of
tests/pipeline/test_damaged_files_property.py (what penstock must make of the result is in
tests/damage_oracle.py).

A file is written from rows of a small contract (`id` bigint key, `label` text, `amount`
decimal(10,2), `day` date). Each mutation changes bytes at a position and records which of
the original records it touched (the bytes of a record are tracked through every insertion,
so a later mutation still knows whose bytes it hits), and where a record boundary may have
moved (a quote or a line break put in or taken out).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

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


def mutate(
    written: Written, changes: Sequence[Mutation], first: int, *, csv: bool = False
) -> Damaged:
    """Apply `changes` in order to bytes from offset `first` on (CSV: after the header)."""
    d = Damaged(written.data, list(written.owner))
    for m in changes:
        if len(d.data) <= first:
            break
        p = first + m.at % (len(d.data) - first)
        if m.kind == "flip":
            old = d.data[p]
            new = old ^ (m.arg % 255 + 1)
            # in CSV, a byte changed right before an opening quote or right after a closing one
            # moves a boundary as an inserted one does (`186274,"` made `186274("`: the quote
            # is inside a field, not quoting it, and the line break it held ends the record)
            near_quote = csv and b'"' in (d.data[p - 1 : p], d.data[p + 1 : p + 2])
            d.data = d.data[:p] + bytes([new]) + d.data[p + 1 :]
            d.touched.add(d.owner[p])
            if old in b'"\r\n' or new in b'"\r\n' or near_quote:
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
            after_quote = csv and d.data[p - 1 : p] == b'"'
            before_quote = csv and d.data[p : p + 1] == b'"'
            _insert(d, p, inserted)
            # a quote moves a boundary; in CSV so do bytes right after a closing quote (text
            # after it fails the quote: reading resyncs at the record's next line) and bytes
            # right before an opening one (the field is no longer quoted: its line breaks and
            # commas split it)
            if m.kind == "quote" or after_quote or before_quote:
                _moved(d, p, len(inserted))
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
