"""Shared pieces of the demo generator: time windows, vocabularies, vectorised text rendering.

Everything here works on whole numpy/Arrow columns; the only per-value Python code formats
the few defect rows, which are rendered one by one on purpose.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Self

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = 3600
DAY = 86_400
#: All regular timestamps fall in [START, START + SPAN + SPAN / drops): 2024-01-01 .. 2025-06-25.
START = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
SPAN = 360 * DAY
#: Added to a 2024/2025 timestamp to move it into 2099 (the `max: now` defects).
TO_2099 = int(datetime(2099, 1, 1, tzinfo=UTC).timestamp()) - START
#: Signup dates (days since 1970-01-01) start here: 2023-01-01, spread over 540 days.
SIGNUP_START_DAY = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp()) // DAY

# Stream ids for derive_rng: object, then role. Changing these changes every generated file.
ORDERS_STREAM = 1
CUSTOMERS_STREAM = 2
PLAN_STREAM = 0
BASE_STREAM = 1

COUNTRIES = ("US", "DE", "FR", "GB", "NL", "ES", "IT", "PL", "SE", "BR", "JP", "CA")
DOMAINS = ("example.com", "example.org", "mail.example.net", "shop.example.io")
# Display names (JSON-escaped on output) and the ASCII slugs used in e-mail addresses.
FIRST_NAMES = ("Ana", "Zoë", "José", "Björn", "Aiko", "Liam", "Noah", "Emma", "Olivia", "Mateo")
FIRST_SLUGS = ("ana", "zoe", "jose", "bjorn", "aiko", "liam", "noah", "emma", "olivia", "mateo")
LAST_NAMES = ("Silva", "Müller", "O'Brien", "Nguyen", "Kowalski", "García", "Smith", "Tanaka")
LAST_SLUGS = ("silva", "muller", "obrien", "nguyen", "kowalski", "garcia", "smith", "tanaka")


class Columns:
    """Base of dataclasses holding one equally long numpy column per field."""

    def _names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self)]  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(getattr(self, self._names()[0]))

    def take(self, index: Any) -> Self:
        """The rows at `index` (an index array, list or slice), copied."""
        return type(self)(**{n: getattr(self, n)[index].copy() for n in self._names()})

    def put(self, index: Any, other: Self) -> None:
        """Overwrite the rows at `index` with the rows of `other`, in place."""
        for n in self._names():
            getattr(self, n)[index] = getattr(other, n)

    @classmethod
    def concat(cls, parts: list[Self]) -> Self:
        names = parts[0]._names()
        return cls(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})


def derive_rng(seed: int, *stream: int) -> np.random.Generator:
    """An independent, reproducible generator for one (object, drop, role) stream of `seed`."""
    return np.random.default_rng([seed, *stream])


def window(drop: int, drops: int) -> tuple[int, int]:
    """[start, end) epoch seconds of the order/updated times of new rows in drop `drop`."""
    width = SPAN // drops
    return START + drop * width, START + (drop + 1) * width


def fmt_ts(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=int(seconds))).strftime("%Y-%m-%d %H:%M:%S")


def fmt_date(days: int) -> str:
    return (_EPOCH + timedelta(days=int(days))).strftime("%Y-%m-%d")


def fmt_cents(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{frac:02d}"


def csv_field(value: str) -> str:
    """Quote one CSV field when it needs it (RFC 4180)."""
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def int_text(values: IntArray) -> Any:
    return pa.array(values).cast(pa.string())


def ts_text(seconds: IntArray) -> Any:
    """Epoch seconds -> 'YYYY-MM-DD HH:MM:SS'."""
    return pa.array(seconds.astype("datetime64[s]")).cast(pa.string())


def date_text(days: IntArray) -> Any:
    """Days since epoch -> 'YYYY-MM-DD'; negative means NULL."""
    arr = pa.array(days.astype("datetime64[D]"), mask=days < 0)
    return arr.cast(pa.string())


def cents_text(cents: IntArray) -> Any:
    """Non-negative cents -> '123.45'."""
    whole = int_text(cents // 100)
    frac = pc.utf8_lpad(int_text(cents % 100), width=2, padding="0")
    return pc.binary_join_element_wise(whole, frac, ".")


def vocab_text(vocab: Sequence[str], index: IntArray) -> Any:
    """vocab[index] as an Arrow string column; a negative index gives NULL."""
    idx = pa.array(index, mask=index < 0)
    return pa.array(list(vocab), type=pa.string()).take(idx)


def with_newline(lines: Any) -> Any:
    return pc.binary_join_element_wise(lines, "", "\n")


def replace_rows(lines: Any, positions: IntArray, replacements: list[str]) -> Any:
    """Return `lines` with lines[positions[i]] = replacements[i] (positions ascending)."""
    if len(positions) == 0:
        return lines
    mask = np.zeros(len(lines), dtype=np.bool_)
    mask[positions] = True
    return pc.replace_with_mask(lines, pa.array(mask), pa.array(replacements, type=pa.string()))


def write_text_column(out: IO[bytes], lines: Any) -> None:
    """Write the concatenated values of an Arrow string column without copying them."""
    if isinstance(lines, pa.ChunkedArray):
        for chunk in lines.chunks:
            write_text_column(out, chunk)
        return
    if len(lines) == 0:
        return
    offset_type = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=offset_type)
    first, last = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    out.write(memoryview(data_buf)[first:last])


@contextmanager
def atomic_write(path: Path) -> Iterator[IO[bytes]]:
    """Write to a temporary sibling and rename it into place only when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with atomic_write(path) as out:
        out.write(text.encode("utf-8"))


def pick(options: Sequence[str], occurrence: int) -> str:
    return options[occurrence % len(options)]
