"""Models for what an object declares about its data: columns, checks and CSV options."""

import math
import re
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from penstock.catalog import expression_cache
from penstock.catalog.batch_checks import DuplicateRateCheck, FreshnessCheck, ReconcileCheck
from penstock.catalog.dialect import check_formats
from penstock.catalog.privacy import Pii
from penstock.catalog.quality_settings import Dimension
from penstock.catalog.rules import (
    FailureRate,
    LengthBounds,
    RuleOptions,
    Severity,
    split_rule_options,
)
from penstock.catalog.scratch import scratch_connection
from penstock.catalog.types import ColumnType, TypeFamily, parse_type

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
IDENTIFIER_RULE = "must start with a letter or _ and hold only letters, digits and _"

Scalar = str | int | float | bool


SOURCE_NAME_SPACES = " \t\r\n"
# A quoted value may span this many lines where a damaged file is read record by record: a
# postal address or a short note fits; a stray quote reaches no further (README: "Damaged files").
DEFAULT_MAX_LINE_SPAN = 8
MAX_LINE_SPAN_LIMIT = 10_000


def source_key(name: str) -> str:
    """How a source name (CSV header, JSON key, Parquet column) is compared with a contract
    column or its `from:`: ignoring case and surrounding spaces, tabs and line breaks. SQL that
    groups names does the same: `lower(trim(name, SOURCE_NAME_SPACES))`."""
    return name.strip(SOURCE_NAME_SPACES).lower()


class LocatedError(ValueError):
    """Problems found by one validator, each at a key path below the validated value.

    The loader reports each problem at its own key path and line.
    """

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
        self.problems = problems
        text = "; ".join(
            (".".join(str(p) for p in loc) + ": " if loc else "") + message
            for loc, message in problems
        )
        super().__init__(text)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _family(info: ValidationInfo) -> TypeFamily | None:
    """The family of the column being validated, or None when its type is invalid."""
    name = info.data.get("type")
    return parse_type(name).family if isinstance(name, str) else None


def _temporal(value: Any, family: TypeFamily, *, allow_now: bool) -> str:
    """Check an ISO date / timestamp string (or `now`) and return it."""
    if isinstance(value, datetime | date):
        value = value.isoformat()
    if isinstance(value, str):
        if allow_now and value == "now":
            return value
        try:
            if family == "date":
                date.fromisoformat(value)
            else:
                datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return value
    example = "YYYY-MM-DD" if family == "date" else "YYYY-MM-DD HH:MM:SS"
    now = " or now" if allow_now else ""
    raise ValueError(f"expected an ISO {family} ({example}){now}")


def _as_datetime(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _offset_problem(value: str, info: ValidationInfo) -> str | None:
    """Why a timestamp bound or in-value with a UTC offset does not fit a plain timestamp
    column that declares no `timezone`, or None when it fits."""
    if value == "now" or info.data.get("type") != "timestamp" or info.data.get("timezone"):
        return None
    if _as_datetime(value).tzinfo is None:
        return None
    return (
        f"{value} has a UTC offset, but a timestamp column holds local times: drop the "
        "offset, declare timezone: (the zone to convert it to) or use type timestamptz"
    )


@lru_cache(maxsize=1)
def time_zone_names() -> frozenset[str]:
    """The IANA time zone names DuckDB (ICU) knows, as it spells them."""
    with scratch_connection() as connection:
        rows = connection.execute("SELECT name FROM pg_timezone_names()").fetchall()
    return frozenset(str(row[0]) for row in rows)


@lru_cache(maxsize=512)
def regex_problem(pattern: str) -> str | None:
    """DuckDB's (RE2) complaint about `pattern`, or None when it compiles."""
    with scratch_connection() as connection:
        try:
            connection.execute("SELECT regexp_matches('', ?)", [pattern]).fetchall()
        except duckdb.Error as exc:
            message = str(exc)
            for prefix in ("Invalid Input Error: ", "Binder Error: "):
                message = message.removeprefix(prefix)
            return message
    return None


class ColumnSpec(_Model):
    """One declared column: its type and the contract its values must meet."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True
    )

    type: str
    # before min/max/in: their validators read it
    timezone: str | None = None
    # strftime pattern(s) for this date / timestamp column, replacing the object's (dialect.py)
    format: tuple[str, ...] | None = None
    required: StrictBool = False
    min: int | float | str | None = None
    max: int | float | str | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    pattern: str | None = None
    between: tuple[int | float | str, int | float | str] | None = None
    length: LengthBounds | None = None
    # another object's column every value must be found in (its warehouse table)
    references: str | None = None
    # no other row (of another key) holds the value, in the batch or the warehouse table
    unique: StrictBool = False
    # a rule's severity and max_failure_rate (catalog/rules.py), by rule name
    rule_options: dict[str, RuleOptions] = Field(default_factory=dict)
    description: str | None = None
    # alerts show this column's values in their sample of failing rows (masked otherwise)
    show_in_alerts: StrictBool = False
    # personal data: how it is stored (catalog/privacy.py); None: not personal data
    pii: Pii | None = None
    from_: str | None = Field(default=None, alias="from")
    """The source name this column reads (a CSV header, a JSON key), when it differs from the
    column's own name; matched like a name, ignoring case and surrounding whitespace."""
    dimensions: dict[str, Dimension] | None = None
    """The DQ dimension of some of this column's rules, over their defaults (quality/
    dimensions.py): `{min: accuracy}`; each key is a rule the column declares."""

    @property
    def column_type(self) -> ColumnType:
        return parse_type(self.type)

    @property
    def stored_duckdb_type(self) -> str:
        """The warehouse type: a hashed or masked value is text, whatever was read."""
        return "VARCHAR" if self.pii in ("hash", "mask") else self.column_type.duckdb_type

    def source_name(self, name: str) -> str:
        """The source name the column `name` (this spec's key) reads."""
        return self.from_ if self.from_ is not None else name

    @model_validator(mode="before")
    @classmethod
    def _split_rule_options(cls, data: Any) -> Any:
        return split_rule_options(data)

    def options(self, rule: str) -> RuleOptions:
        """The severity and max_failure_rate of the rule `rule` (e.g. `pattern`)."""
        return self.rule_options.get(rule) or _DEFAULT_OPTIONS

    @field_validator("type")
    @classmethod
    def _check_type(cls, value: str) -> str:
        return parse_type(value).name

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        name = info.data.get("type")
        if isinstance(name, str) and parse_type(name).family != "timestamp":
            raise ValueError(f"timezone applies to timestamp and timestamptz columns, not {name}")
        if value not in time_zone_names():
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Oslo, or UTC)"
            )
        return value

    @field_validator("format", mode="before")
    @classmethod
    def _check_format(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        family = _family(info)
        if family is not None and family not in ("date", "timestamp"):
            raise ValueError(
                "format applies to date, timestamp and timestamptz columns, "
                f"not {info.data.get('type')}"
            )
        return check_formats(value, "date" if family == "date" else "timestamp")

    @field_validator("min", "max", mode="before")
    @classmethod
    def _check_bound(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        bound = _bound(value, info)
        low = info.data.get("min")
        zone = info.data.get("timezone")
        if info.field_name == "max" and low is not None and _greater(low, bound, zone):
            raise ValueError(f"max ({bound}) is less than min ({low})")
        return bound

    @field_validator("between", mode="before")
    @classmethod
    def _check_between(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ValueError("expected two bounds: between: [low, high]")
        low, high = (_bound(v, info, "between applies") for v in value)
        if _greater(low, high, info.data.get("timezone")):
            raise ValueError(f"the high bound ({high}) is less than the low one ({low})")
        return (low, high)

    @field_validator("length")
    @classmethod
    def _check_length(cls, value: LengthBounds | None, info: ValidationInfo) -> Any:
        family = _family(info)
        if value is not None and family is not None and family != "text":
            raise ValueError(f"length applies to text columns, not {family}")
        return value

    @field_validator("references")
    @classmethod
    def _check_references(cls, value: str | None) -> str | None:
        if value is None:
            return None
        target, dot, column = value.partition(".")
        if not dot or not IDENTIFIER.match(target.strip()) or not column.strip():
            raise ValueError(f"expected object.column, got {value!r}")
        return f"{target.strip()}.{column.strip()}"

    @field_validator("rule_options")
    @classmethod
    def _check_rule_options(
        cls, value: dict[str, RuleOptions], info: ValidationInfo
    ) -> dict[str, RuleOptions]:
        for rule in value:
            field = "in_" if rule == "in" else rule
            if info.data.get(field) in (None, False):
                raise ValueError(f"{rule} has options but no rule: give its value")
        return value

    @field_validator("in_", mode="before")
    @classmethod
    def _check_in(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            raise ValueError("expected a list of allowed values")
        if not value:
            raise ValueError("list at least one allowed value")
        family = _family(info)
        if family == "json":
            raise ValueError("in does not apply to json columns")
        if family in ("date", "timestamp"):
            items = [_temporal(item, family, allow_now=False) for item in value]
            for item in items:
                problem = _offset_problem(item, info)
                if problem is not None:
                    raise ValueError(problem)
            return items
        for item in value:
            if family == "text":
                ok = isinstance(item, str)
            elif family == "number":
                ok = isinstance(item, int | float) and not isinstance(item, bool)
            elif family == "boolean":
                ok = isinstance(item, bool)
            else:
                ok = isinstance(item, str | int | float)
            if not ok:
                what = {"text": "text", "number": "numbers", "boolean": "true or false"}
                expected = what.get(family or "", "text, numbers or true/false")
                raise ValueError(f"expected {expected}, got {item!r}")
        return value

    @field_validator("from_")
    @classmethod
    def _check_from(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must name a source column (it is blank)")
        return value

    @field_validator("pattern")
    @classmethod
    def _check_pattern(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        family = _family(info)
        if family is not None and family != "text":
            raise ValueError(f"pattern applies to text columns, not {family}")
        problem = expression_cache.vetted("regex", value, lambda: regex_problem(value))
        if problem is not None:
            raise ValueError(f"invalid regular expression: {problem}")
        return value

    @model_validator(mode="after")
    def _check_dimensions(self) -> "ColumnSpec":
        if not self.dimensions:
            return self
        declared = {"type", "required"}  # required: a key or order_by column is, unwritten
        declared |= {
            rule
            for rule, value in (
                ("min", self.min),
                ("max", self.max),
                ("in", self.in_),
                ("pattern", self.pattern),
                ("between", self.between),
                ("length", self.length),
                ("references", self.references),
                ("unique", self.unique or None),
            )
            if value is not None
        }
        problems: list[tuple[tuple[str | int, ...], str]] = [
            (
                ("dimensions", rule),
                f"the column declares no {rule} rule (it has {', '.join(sorted(declared))})",
            )
            for rule in self.dimensions
            if rule not in declared
        ]
        if problems:
            raise LocatedError(problems)
        return self


_DEFAULT_OPTIONS = RuleOptions()


def _bound(value: Any, info: ValidationInfo, rule: str = "min/max apply") -> int | float | str:
    """A min / max / between bound checked against the column's type."""
    family = _family(info)
    if family is None:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError("expected a number, a date or a timestamp")
        return value
    if family == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("expected a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("expected a finite number")
        bound: int | float | str = value
    elif family in ("date", "timestamp"):
        bound = _temporal(value, family, allow_now=True)
        problem = _offset_problem(bound, info)
        if problem is not None:
            raise ValueError(problem)
    else:
        raise ValueError(f"{rule} to numbers, dates and timestamps, not {family}")
    return bound


def _greater(low: Any, high: Any, zone: str | None) -> bool:
    """True when both bounds are comparable and `low` is above `high`; a naive time is
    wall-clock time in `zone` (UTC when None) when compared with one that has an offset."""
    if isinstance(low, str) and isinstance(high, str):
        if "now" in (low, high):
            return False
        first, second = _as_datetime(low), _as_datetime(high)
        if (first.tzinfo is None) != (second.tzinfo is None):
            try:
                tz = ZoneInfo(zone) if zone else UTC
            except (ZoneInfoNotFoundError, ValueError):
                return False  # DuckDB knows the zone, Python does not: DuckDB compares later
            first, second = (d if d.tzinfo else d.replace(tzinfo=tz) for d in (first, second))
        return first > second
    if isinstance(low, int | float) and isinstance(high, int | float):
        return low > high
    return False


_ENCODING_NAMES = {
    "utf8": "utf-8",
    "utf16": "utf-16",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
    "cp1252": "windows-1252",
    "windows1252": "windows-1252",
    "win-1252": "windows-1252",
}


class CsvOptions(_Model):
    """How CSV files of an object are read.

    `skip_rows`: lines skipped verbatim at the top of the file, before the header (or the first
    record). `comment`: a line whose first character other than spaces is this one is not a
    record; later in a line, outside quotes, it ends the record there (DuckDB's rule). Neither
    kind of line counts in record numbers. `max_line_span`: when a file is read record by
    record because part of it cannot be split (sources/csv_recover.py), a quote still open
    after this many lines is unbalanced: the record's first line is malformed and reading
    resumes at the line after it. `encoding`: utf-8, utf-16, latin-1 (whose control bytes
    0x80-0x9F are not text, as in DuckDB) or windows-1252 (Excel's CSV on Windows: € ’ “ ” – —
    in those bytes; staged as UTF-8).
    """

    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    header: StrictBool = True
    encoding: Literal["utf-8", "utf-16", "latin-1", "windows-1252"] = "utf-8"
    skip_rows: Annotated[StrictInt, Field(ge=0)] = 0
    comment: str | None = None
    max_line_span: Annotated[StrictInt, Field(ge=1, le=MAX_LINE_SPAN_LIMIT)] = DEFAULT_MAX_LINE_SPAN

    @field_validator("delimiter", "quote", "escape", "comment")
    @classmethod
    def _single_character(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) != 1:
            raise ValueError(f"must be a single character, got {value!r}")
        if value in "\r\n" or value.isdigit():
            raise ValueError(f"cannot be a line break or a digit, got {value!r}")
        return value

    @field_validator("encoding", mode="before")
    @classmethod
    def _normalise_encoding(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return _ENCODING_NAMES.get(value, value)
        return value

    def as_staged(self) -> "CsvOptions":
        """These options as they read a staged copy: a Windows-1252 file is staged as UTF-8
        (DuckDB reads no Windows-1252), the rest as delivered."""
        if self.encoding != "windows-1252":
            return self
        return self.model_copy(update={"encoding": "utf-8"})

    @model_validator(mode="after")
    def _distinct(self) -> "CsvOptions":
        if self.delimiter == self.quote:
            raise ValueError("delimiter and quote must differ")
        if self.comment is not None and self.comment in (self.delimiter, self.quote):
            raise ValueError("comment must differ from delimiter and quote")
        return self

    def merged_over(self, defaults: "CsvOptions | None") -> "CsvOptions":
        """These options over a source's defaults, key by key: a key set here wins."""
        if defaults is None:
            return self
        given = self.model_dump(exclude_unset=True)
        return CsvOptions.model_validate({**defaults.model_dump(exclude_unset=True), **given})


class ExpressionCheck(_Model):
    """A named SQL boolean expression every row must satisfy."""

    name: str
    expression: str
    severity: Severity = "error"
    max_failure_rate: FailureRate = None

    @property
    def options(self) -> RuleOptions:
        # already checked: built without validating the rate again
        return RuleOptions.model_construct(
            severity=self.severity, max_failure_rate=self.max_failure_rate
        )

    dimension: Dimension | None = None  # the DQ dimension (default: consistency)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError(f"check name '{value}' {IDENTIFIER_RULE}")
        return value

    @field_validator("expression")
    @classmethod
    def _check_expression(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


NonNegativeInt = Annotated[StrictInt, Field(ge=0)]


class RowCountBounds(_Model):
    """Bounds on the number of rows in a batch."""

    min: NonNegativeInt | None = None
    max: NonNegativeInt | None = None

    @model_validator(mode="after")
    def _check_bounds(self) -> "RowCountBounds":
        if self.min is None and self.max is None:
            raise ValueError("set min and/or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class RowCountCheck(_Model):
    """A bound on how many rows a batch holds."""

    row_count: RowCountBounds
    dimension: Dimension | None = None  # the DQ dimension (default: completeness)

    @property
    def name(self) -> str:
        return "row_count"


def _check_kind(value: Any) -> str | None:
    if isinstance(value, ExpressionCheck):
        return "expression"
    if isinstance(value, RowCountCheck):
        return "row_count"
    if isinstance(value, FreshnessCheck):
        return "freshness"
    if isinstance(value, DuplicateRateCheck):
        return "duplicate_rate"
    if isinstance(value, ReconcileCheck):
        return "reconcile"
    if isinstance(value, dict):
        for kind in ("row_count", "freshness", "duplicate_rate", "reconcile"):
            if kind in value:
                return kind
        if "expression" in value or "name" in value:
            return "expression"
    return None


CHECK_SHAPES = (
    "a check is one of {name: ..., expression: ...}, {row_count: {min: ..., max: ...}}, "
    "{freshness: {column: ..., max_age: ...}}, {duplicate_rate: {max: ...}} or "
    "{reconcile: {severity: ...}}"
)

Check = Annotated[
    Annotated[ExpressionCheck, Tag("expression")]
    | Annotated[RowCountCheck, Tag("row_count")]
    | Annotated[FreshnessCheck, Tag("freshness")]
    | Annotated[DuplicateRateCheck, Tag("duplicate_rate")]
    | Annotated[ReconcileCheck, Tag("reconcile")],
    Discriminator(_check_kind, custom_error_type="check_kind", custom_error_message=CHECK_SHAPES),
]
