"""`partition_by:` on an object: how its rows split into partitions a backfill replaces whole.

```yaml
objects:
  orders:                                   # a files object: a partition is a set of files
    source: landing
    partition_by: {path: "orders/{date:%Y-%m-%d}/*.csv"}          # grain from the format: day
  events:
    source: landing
    partition_by: {path: "events_{date:%Y%m%d%H}.jsonl", column: event_ts}   # hour
  invoices:                                 # a database object: a partition is a window
    source: shop_db
    table: invoices
    partition_by: {column: issued_on, grain: month}
```

`path:` is a glob relative to the source's directory with one `{date:FORMAT}` field
(strftime directives `%Y %y %m %d %j %H %b`): a file belongs to the partition its path names.
The grain is the finest unit the format holds (`%H`: hour, `%d`/`%j`: day, else month), or
`grain:` when coarser. A files object partitions by path; `column:` beside it names the
date/timestamp column the warehouse deletes a partition's rows by (without it, by the batches
the partition loaded before). A database object partitions by `column:` alone (its window is
`column >= start AND column < end`); `grain:` defaults to day.

Partitions are keyed by their start: `2026-01-03` (day), `2026-01-03T05` (hour), `2026-01`
(month). Only `load: append` and `load: merge` take partitions: a partition replaces its own
rows, `replace` would empty the table and `scd2` keeps history partitions cannot rewrite.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import model_validator

from penstock.catalog.alerting import Model

Grain = Literal["hour", "day", "month"]
GRAINS: tuple[Grain, ...] = ("hour", "day", "month")  # finest first
_FIELD = re.compile(r"\{date:([^{}]+)\}")
_DIRECTIVES: dict[str, tuple[str, Grain | None]] = {
    "Y": (r"\d{4}", "month"),
    "y": (r"\d{2}", "month"),
    "m": (r"\d{2}", "month"),
    "b": (r"[A-Za-z]{3}", "month"),
    "d": (r"\d{2}", "day"),
    "j": (r"\d{3}", "day"),
    "H": (r"\d{2}", "hour"),
    "%": ("%", None),
}


class PartitionBy(Model):
    """One object's `partition_by:` (see the module docstring)."""

    column: str | None = None
    path: str | None = None
    grain: Grain | None = None

    @model_validator(mode="after")
    def _shape(self) -> PartitionBy:
        if self.column is None and self.path is None:
            raise ValueError(
                "give column: (a date or timestamp column), path: (a pattern), or both"
            )
        if self.path is not None:
            finest = path_grain(self.path)  # raises on a malformed pattern
            if self.grain is not None and GRAINS.index(self.grain) < GRAINS.index(finest):
                raise ValueError(
                    f"grain {self.grain} is finer than the path's date format (it names a {finest})"
                )
        return self

    @property
    def unit(self) -> Grain:
        """The grain partitions are cut at."""
        if self.grain is not None:
            return self.grain
        return path_grain(self.path) if self.path is not None else "day"

    @property
    def glob(self) -> str:
        """The path pattern as a plain glob (the date field matches anything)."""
        assert self.path is not None
        return _FIELD.sub("*", self.path)


def path_grain(pattern: str) -> Grain:
    """The finest grain the pattern's `{date:FORMAT}` field names; ValueError if malformed."""
    fields = _FIELD.findall(pattern)
    if len(fields) != 1:
        raise ValueError(
            f"path '{pattern}' must hold exactly one {{date:FORMAT}} field, e.g. "
            "'orders/{date:%Y-%m-%d}/*.csv'"
        )
    grains = [g for _, g in _format_parts(fields[0]) if g is not None]
    if "%Y" not in fields[0].replace("%%", "") and "%y" not in fields[0].replace("%%", ""):
        raise ValueError(f"the date format '{fields[0]}' in path '{pattern}' must name a year")
    return min(grains, key=GRAINS.index)


def _format_parts(fmt: str) -> list[tuple[str, Grain | None]]:
    """The format as regex pieces, each with the grain its directive names (None: literal)."""
    parts: list[tuple[str, Grain | None]] = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            if i + 1 >= len(fmt) or fmt[i + 1] not in _DIRECTIVES:
                known = " ".join(f"%{d}" for d in _DIRECTIVES if d != "%")
                raise ValueError(f"date format '{fmt}': '{fmt[i : i + 2]}' is not one of {known}")
            parts.append(_DIRECTIVES[fmt[i + 1]])
            i += 2
        else:
            parts.append((re.escape(fmt[i]), None))
            i += 1
    return parts


def path_regex(pattern: str) -> tuple[re.Pattern[str], str]:
    """A regex matching the pattern's paths (the date text in group `date`), and the format."""
    (fmt,) = _FIELD.findall(pattern)
    before, after = _FIELD.split(pattern, maxsplit=1)[0], _FIELD.split(pattern, maxsplit=1)[2]
    date_re = "".join(p for p, _ in _format_parts(fmt))
    regex = f"{_glob_regex(before)}(?P<date>{date_re}){_glob_regex(after)}"
    return re.compile(f"^{regex}$"), fmt


def _glob_regex(glob: str) -> str:
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


# ---- partition keys -------------------------------------------------------------------------

_KEY_FORMATS: dict[Grain, str] = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d", "month": "%Y-%m"}


def floor(at: datetime, grain: Grain) -> datetime:
    """The start of the partition holding `at`."""
    if grain == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    if grain == "day":
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def following(start: datetime, grain: Grain) -> datetime:
    """The start of the partition after the one starting at `start`."""
    if grain == "hour":
        return start + timedelta(hours=1)
    if grain == "day":
        return start + timedelta(days=1)
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def key_of(start: datetime, grain: Grain) -> str:
    return start.strftime(_KEY_FORMATS[grain])


def parse_instant(text: str) -> datetime:
    """`2026-01-03`, `2026-01-03T05`, `2026-01-03 05:00`, `2026-01` as a naive datetime;
    ValueError naming the forms otherwise."""
    value = text.strip()
    for fmt in ("%Y-%m-%dT%H", "%Y-%m"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"'{text}' is not a date: write 2026-01-03, 2026-01-03T05 (an hour) or 2026-01 "
            "(a month)"
        ) from None
    return parsed.replace(tzinfo=None) if isinstance(parsed, datetime) else parsed


def partition_starts(first: datetime, last: datetime, grain: Grain) -> list[datetime]:
    """The starts of every partition from the one holding `first` to the one holding `last`
    (both included)."""
    start, end = floor(first, grain), floor(last, grain)
    starts = []
    while start <= end:
        starts.append(start)
        start = following(start, grain)
    return starts


def as_datetime(value: date) -> datetime:
    return value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)
