"""The value dialect: how a file spells a missing value, a date, a timestamp and a number.

Keys of an object, and of a `files` source as defaults for its objects (an object's own key
wins, key by key):

    null_values          text tokens that mean "missing" (exact, case-sensitive, matched after
                         the surrounding whitespace every value loses)
    date_format          one strftime pattern or a list tried in order, for date columns
    timestamp_format     the same for timestamp and timestamptz columns
    decimal_separator    the decimal mark of number columns ("." unless declared)
    thousands_separator  the group mark of number columns (none unless declared)

A date or timestamp column may declare its own `format:` (a pattern or a list), which replaces
the object's for that column. Declared patterns are all that is accepted: ISO is not added.

These are *value* settings: staged batches keep the raw text as written and the settings apply
when a batch is validated (quality/casts.py), so a changed setting takes effect on the next
`penstock rebuild` without restaging. *Parse* settings (`csv:` delimiter, quote...) apply when
a file is staged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, field_validator

from penstock.catalog import expression_cache
from penstock.catalog.scratch import scratch_connection

if TYPE_CHECKING:
    from penstock.catalog.columns import ColumnSpec

TemporalFamily = Literal["date", "timestamp"]
# (key path below the validated value, message): what LocatedError carries
Problems = list[tuple[tuple[str | int, ...], str]]

# whitespace a value loses before it is compared (casts.py trims the same set)
_TRIMMED = " \t\n\r\x0b\x0c\xa0"
_NOT_SEPARATORS = frozenset("0123456789+-eE")

# strftime directives (after `%`, a `-` flag dropped) that name parts of a day
_YEAR = frozenset("Yy")
_MONTH = frozenset("mbBh")
_DAY_OF_MONTH = frozenset("d")
_DAY_OF_YEAR = frozenset("j")
_ISO_WEEK = frozenset("GV")
_WEEKDAY = frozenset("uwaA")
_WHOLE_DAY = frozenset("cx")  # DuckDB: %c is %Y-%m-%d %H:%M:%S, %x is %Y-%m-%d
_ZONE = frozenset("zZ")
WHOLE_DAY_RULE = (
    "a pattern must name a whole day: year, month and day (%Y or %y; %m, %b or %B; %d), "
    "year and day of the year (%Y %j), or ISO year, week and weekday (%G %V %u)"
)


def directives(pattern: str) -> list[str]:
    """The directive letters of a strftime pattern, in order (`%-d` gives `d`, `%%` gives `%`)."""
    found: list[str] = []
    index = 0
    while index < len(pattern) - 1:
        if pattern[index] != "%":
            index += 1
            continue
        index += 1
        if pattern[index] == "-" and index < len(pattern) - 1:
            index += 1
        found.append(pattern[index])
        index += 1
    return found


def has_zone(pattern: str) -> bool:
    """Does the pattern read a UTC offset (%z) or a zone name (%Z)? It then yields instants."""
    return not _ZONE.isdisjoint(directives(pattern))


@lru_cache(maxsize=512)
def format_problem(pattern: str, family: TemporalFamily) -> str | None:
    """Why `pattern` cannot read the values of a `family` column, or None when it can."""
    with scratch_connection() as connection:
        try:
            connection.execute("SELECT try_strptime('', ?)", [pattern]).fetchall()
        except duckdb.Error as exc:
            message = str(exc).removeprefix("Invalid Input Error: ")
            message = message.removeprefix(f"Failed to parse format specifier {pattern}: ")
            return f"invalid strftime pattern {pattern!r}: {message}"
    letters = set(directives(pattern))
    if family == "date" and not letters.isdisjoint(_ZONE):
        return (
            f"{pattern!r}: a date has no offset or zone (%z, %Z): read such values into a "
            "timestamp or timestamptz column"
        )
    whole_day = (
        not letters.isdisjoint(_WHOLE_DAY)
        or (
            not letters.isdisjoint(_YEAR)
            and not letters.isdisjoint(_MONTH)
            and not letters.isdisjoint(_DAY_OF_MONTH)
        )
        or (not letters.isdisjoint(_YEAR) and not letters.isdisjoint(_DAY_OF_YEAR))
        or (letters >= _ISO_WEEK and not letters.isdisjoint(_WEEKDAY))
    )
    if not whole_day:
        return f"{pattern!r}: {WHOLE_DAY_RULE}"
    return None


def _vetted_format(pattern: str, family: TemporalFamily) -> str | None:
    """`format_problem`, unless the project's cache knows the pattern as valid."""
    return expression_cache.vetted(
        f"strftime {family}", pattern, lambda: format_problem(pattern, family)
    )


def check_formats(value: Any, family: TemporalFamily) -> tuple[str, ...] | None:
    """A pattern or a list of patterns, checked, as a tuple (None stays None)."""
    from penstock.catalog.columns import LocatedError  # columns.py imports this module

    if value is None:
        return None
    if isinstance(value, str):
        problem = _vetted_format(value, family)
        if problem is not None:
            raise ValueError(problem)
        return (value,)
    if not isinstance(value, list | tuple):
        raise ValueError("expected a strftime pattern or a list of them")
    if not value:
        raise ValueError("list at least one pattern")
    problems: Problems = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            problems.append(((index,), "expected a strftime pattern (a string)"))
            continue
        problem = _vetted_format(item, family)
        if problem is not None:
            problems.append(((index,), problem))
    if problems:
        raise LocatedError(problems)
    return tuple(value)


class ValueDialect(BaseModel):
    """The value-dialect keys, shared by objects and `files` sources (see the module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dialect_keys: ClassVar[tuple[str, ...]] = (
        "null_values",
        "date_format",
        "timestamp_format",
        "decimal_separator",
        "thousands_separator",
    )

    null_values: tuple[str, ...] | None = None
    date_format: tuple[str, ...] | None = None
    timestamp_format: tuple[str, ...] | None = None
    decimal_separator: str | None = None
    thousands_separator: str | None = None

    @field_validator("null_values", mode="before")
    @classmethod
    def _check_null_values(cls, value: Any) -> Any:
        from penstock.catalog.columns import LocatedError  # columns.py imports this module

        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise ValueError('expected a list of text tokens, e.g. [NA, "", "N/A"]')
        problems: Problems = []
        for index, item in enumerate(value):
            if isinstance(item, bool):
                problems.append(
                    (
                        (index,),
                        "expected text: quote the token (unquoted, YAML reads yes, no, on "
                        "and off as true or false)",
                    )
                )
            elif not isinstance(item, str):
                shown = "null" if item is None else str(item)
                problems.append(
                    ((index,), f'expected text: quote the token as it is written ("{shown}")')
                )
            elif item != item.strip(_TRIMMED):
                problems.append(
                    (
                        (index,),
                        f"{item!r} has surrounding whitespace, which every value loses "
                        "before it is matched: it could never match",
                    )
                )
        if problems:
            raise LocatedError(problems)
        return tuple(dict.fromkeys(value))

    @field_validator("date_format", mode="before")
    @classmethod
    def _check_date_format(cls, value: Any) -> Any:
        return check_formats(value, "date")

    @field_validator("timestamp_format", mode="before")
    @classmethod
    def _check_timestamp_format(cls, value: Any) -> Any:
        return check_formats(value, "timestamp")

    @field_validator("decimal_separator", "thousands_separator")
    @classmethod
    def _check_separator(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) != 1:
            raise ValueError(f"must be a single character, got {value!r}")
        if value in _NOT_SEPARATORS:
            raise ValueError(f"{value!r} cannot be a separator (not a digit, +, -, e or E)")
        return value

    def dialect_problem(self) -> str | None:
        """Why the separators clash, or None (an object's are checked after its source's
        defaults are applied)."""
        decimal = self.decimal_separator or "."
        if self.thousands_separator is not None and self.thousands_separator == decimal:
            if self.decimal_separator is None:
                return (
                    f"thousands_separator {decimal!r} is the default decimal separator: "
                    "declare decimal_separator too"
                )
            return f"decimal_separator and thousands_separator are both {decimal!r}"
        return None


_SEPARATORS = frozenset({"decimal_separator", "thousands_separator"})
_JSON_FORMATS = ("json", "jsonl")
_JSON_SEPARATOR_PROBLEM = (
    "separators read numbers written as text (CSV fields, Parquet strings); JSON files are "
    "staged with their numbers and their strings alike as text, so 1.234 would read as 1234: "
    "not allowed for format json or jsonl (a source's separators do not apply to them)"
)


def apply_source_defaults(
    objects: Mapping[str, Any], sources: Mapping[str, Any]
) -> tuple[dict[str, Any], Problems]:
    """Each object with the dialect keys it leaves unset taken from its source, and the
    problems found in the result (key paths from the project's top): separators that clash (a
    source's own clash is reported at the source, an object's at the key it declares), and a
    timestamp column that no pattern could ever fill."""
    problems: Problems = []
    for name, source in sources.items():
        if isinstance(source, ValueDialect):
            problem = source.dialect_problem()
            if problem is not None:
                problems.append((("sources", name, _blamed(source)), problem))
    merged: dict[str, Any] = {}
    for name, obj in objects.items():
        source = sources.get(getattr(obj, "source", None) or "")
        if not isinstance(obj, ValueDialect):
            merged[name] = obj
            continue
        update: dict[str, Any] = {}
        json_numbers = getattr(obj, "format", None) in _JSON_FORMATS
        if isinstance(source, ValueDialect):
            update = {
                key: getattr(source, key)
                for key in ValueDialect.dialect_keys
                if getattr(obj, key) is None
                and getattr(source, key) is not None
                and not (json_numbers and key in _SEPARATORS)
            }
        if json_numbers:
            problems.extend(
                (("objects", name, key), _JSON_SEPARATOR_PROBLEM)
                for key in sorted(_SEPARATORS)
                if getattr(obj, key) is not None
            )
        result = obj.model_copy(update=update) if update else obj
        problem = result.dialect_problem()
        own = {"decimal_separator", "thousands_separator"} - update.keys()
        if problem is not None and any(getattr(obj, key) is not None for key in own):
            if update.keys() & {"decimal_separator", "thousands_separator"}:
                problem += f" (one from the defaults of source '{getattr(obj, 'source', '')}')"
            problems.append((("objects", name, _blamed(obj)), problem))
        problems.extend(_offsets_only(name, obj, result))
        merged[name] = result
    return merged, problems


def _offsets_only(name: str, declared: ValueDialect, obj: ValueDialect) -> Problems:
    """Timestamp columns without `timezone:` whose every pattern reads an offset: such a
    column holds local times, so no value could load (as an ISO value with an offset fails)."""
    problems: Problems = []
    columns: Mapping[str, Any] = getattr(obj, "columns", {})
    for column, spec in columns.items():
        patterns = spec.format or obj.timestamp_format
        if spec.type != "timestamp" or spec.timezone or not patterns:
            continue
        if not all(has_zone(pattern) for pattern in patterns):
            continue
        where: tuple[str | int, ...] = ("objects", name, "columns", column)
        if spec.format:
            where += ("format",)
        elif declared.timestamp_format:
            where = ("objects", name, "timestamp_format")
        problems.append(
            (
                where,
                f"every pattern reads an offset (%z or %Z), but timestamp column '{column}' "
                "holds local times: declare its timezone: (to convert to), use type "
                "timestamptz, or add a pattern without an offset",
            )
        )
    return problems


def _blamed(model: ValueDialect) -> str:
    """The separator key a clash is reported at: the one the model declares."""
    return "thousands_separator" if model.thousands_separator else "decimal_separator"


@dataclass(frozen=True)
class ColumnDialect:
    """The value dialect in force for one column."""

    null_values: tuple[str, ...] = ()
    # strftime patterns tried in order (date / timestamp columns); None: ISO only
    formats: tuple[str, ...] | None = None
    decimal_separator: str = "."
    thousands_separator: str | None = None

    @property
    def plain_numbers(self) -> bool:
        return self.decimal_separator == "." and self.thousands_separator is None


PLAIN = ColumnDialect()


def column_dialect(obj: ValueDialect | None, spec: ColumnSpec) -> ColumnDialect:
    """What `obj`'s dialect keys (and the column's own `format:`) mean for column `spec`."""
    family = spec.column_type.family
    formats: tuple[str, ...] | None = spec.format
    if formats is None and obj is not None:
        if family == "date":
            formats = obj.date_format
        elif family == "timestamp":
            formats = obj.timestamp_format
    if obj is None:
        return ColumnDialect(formats=formats) if formats else PLAIN
    number = family == "number"
    return ColumnDialect(
        null_values=obj.null_values or (),
        formats=formats,
        decimal_separator=(obj.decimal_separator or ".") if number else ".",
        thousands_separator=obj.thousands_separator if number else None,
    )
