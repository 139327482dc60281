"""Models for sources and data objects (one entry under `sources:` / `objects:`)."""

import re
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from penstock.catalog.alerting import SlaSpec
from penstock.catalog.base import Model
from penstock.catalog.batch_checks import DuplicateRateCheck, FreshnessCheck, ReconcileCheck
from penstock.catalog.columns import (
    IDENTIFIER,
    IDENTIFIER_RULE,
    Check,
    ColumnSpec,
    CsvOptions,
    ExpressionCheck,
    LocatedError,
    source_key,
)
from penstock.catalog.database import DatabaseSource
from penstock.catalog.dialect import ValueDialect
from penstock.catalog.encoding_limit import EncodingErrorLimit
from penstock.catalog.expressions import expression_problem
from penstock.catalog.files_source import FileFormat, FilesSource, duration_seconds, infer_format
from penstock.catalog.micro_batch import MicroBatch
from penstock.catalog.orchestration import Catchup, Cron, Duration, NameList, Retry, Trigger
from penstock.catalog.partitioning import PartitionBy
from penstock.catalog.privacy import TREATED
from penstock.catalog.quality_settings import AnomalySettings
from penstock.catalog.rest import (
    Incremental,
    Pagination,
    ParamValue,
    RestSource,
    check_api_object,
    check_endpoint,
)
from penstock.catalog.schema_drift import SchemaDriftPolicy

LoadMode = Literal["append", "merge", "scd2", "replace"]
OnInvalid = Literal["quarantine", "fail", "warn"]

_GROUP = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _shared_source_names(
    columns: dict[str, ColumnSpec],
) -> list[tuple[tuple[str | int, ...], str]]:
    """Two columns reading one source name (by `from:` or by their own name) would load the
    same values twice under two names: an error at the `from:` that makes the clash."""
    readers: dict[str, str] = {}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name, spec in columns.items():
        first = readers.setdefault(source_key(spec.source_name(name)), name)
        if first == name:
            continue
        # name the column whose from: clashes (the later one when both have one)
        culprit, other = (name, first) if spec.from_ is not None else (first, name)
        source = columns[culprit].source_name(culprit)
        how = (
            f"by from: '{columns[other].from_}'"
            if columns[other].from_ is not None
            else f"by its own name (give '{other}' a from: of its own)"
        )
        problems.append(
            (
                (culprit, "from"),
                f"column '{culprit}' reads source column '{source}', which column '{other}' "
                f"already reads {how}",
            )
        )
    return problems


def _identifier(what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError(f"{what} '{value}' {IDENTIFIER_RULE}")
        return value

    return AfterValidator(check)


def _column_name(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(f"column name '{value}' {IDENTIFIER_RULE}")
    if value.startswith("_"):
        raise ValueError(
            f"column name '{value}' starts with _, which is reserved for system columns"
        )
    return value


ColumnName = Annotated[str, AfterValidator(_column_name)]
ObjectName = Annotated[str, _identifier("object name")]
SourceName = Annotated[str, _identifier("source name")]


# Adding a source kind: write its class (with a `kind: Literal[...]` field), then list it here
# and in `Source` (`FilesSource | NewSource`).
SOURCE_TYPES: tuple[type[BaseModel], ...] = (FilesSource, DatabaseSource, RestSource)
SOURCE_KINDS: tuple[str, ...] = tuple(
    kind for cls in SOURCE_TYPES for kind in get_args(cls.model_fields["kind"].annotation)
)
Source = Annotated[FilesSource | DatabaseSource | RestSource, Field(discriminator="kind")]
_SOURCE_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_TABLE_RENAMED = (
    "table: now names the source table of a database object; the warehouse table of a files "
    "object is target: (write target: {value})"
)


class ObjectSpec(Model, ValueDialect):
    """One data object: where its files are, their contract and how they load."""

    internal_fields: ClassVar[frozenset[str]] = frozenset(
        {"name", "reference_tables", "evolved_columns"}
    )

    # Validation runs in field order: columns come first so that key and order_by can be
    # checked against them, format before csv, key before load.
    name: str
    columns: dict[ColumnName, ColumnSpec]
    source: str
    files: str | None = None
    format: FileFormat | None = Field(default=None, validate_default=True)
    csv: CsvOptions | None = Field(default=None, validate_default=True)
    max_encoding_errors: EncodingErrorLimit | None = None
    key: tuple[str, ...] = ()
    order_by: str | None = None
    load: LoadMode = "append"
    group: str = "default"
    on_invalid: OnInvalid = "quarantine"
    # a database object reads `table:` or `query:` (catalog/database.py)
    table: str | None = None
    query: str | None = None
    cursor: str | None = None
    lookback: str | Annotated[float, Field(gt=0)] | None = None
    partitions: Annotated[int, Field(ge=1, le=64)] | None = None
    target: Annotated[str, _identifier("target table name")] | None = None
    # an object of a REST source reads `endpoint:` (catalog/rest.py)
    endpoint: Annotated[str, AfterValidator(check_endpoint)] | None = None
    params: dict[str, ParamValue] = Field(default_factory=dict)
    records: str | None = None
    pagination: Pagination | None = None
    incremental: Incremental | None = None
    description: str | None = None
    owner: str | None = None
    checks: list[Check] = Field(default_factory=list)
    micro_batch: MicroBatch = MicroBatch()
    sla: SlaSpec | None = None  # service levels: `penstock slo` (catalog/alerting.py)
    # set by the project: referenced object → its warehouse table, quoted (`references:`)
    reference_tables: dict[str, str] = Field(default_factory=dict)
    # control limits of its checkpoint metrics, over the project's `quality: anomalies:`
    anomalies: AnomalySettings | None = None
    # what a batch whose columns differ from `columns` does (catalog/schema_drift.py)
    schema_drift: SchemaDriftPolicy = SchemaDriftPolicy()
    # set while a chunk loads (quality/drift.py): the source columns `new_columns: evolve`
    # added to `columns` as text; never written by users, never part of the project's hash
    evolved_columns: tuple[str, ...] = Field(default=(), exclude=True)
    # orchestration (catalog/orchestration.py, engine/plan.py)
    depends_on: NameList = Field(default_factory=list)
    schedule: Cron | None = None
    catchup: Catchup | None = None
    trigger: Trigger | None = None
    retry: Retry | None = None  # else its source's, else one attempt
    timeout: Duration | None = None  # one try of its work; else its source's, else none
    # partitions a backfill replaces whole (catalog/partitioning.py, engine/backfill.py)
    partition_by: PartitionBy | None = None

    @property
    def table_name(self) -> str:
        """The warehouse table: `target:`, else the object's name."""
        return self.target or self.name

    @property
    def reads_database(self) -> bool:
        return self.table is not None or self.query is not None

    @property
    def reads_api(self) -> bool:
        return self.endpoint is not None

    @model_validator(mode="after")
    def _api_selectors(self) -> "ObjectSpec":
        """`endpoint:` and the keys that only a REST object reads agree."""
        check_api_object(self, _cursor_family)
        return self

    @model_validator(mode="after")
    def _database_selectors(self) -> "ObjectSpec":
        """`table:` / `query:`, `cursor:`, `lookback:` and `partitions:` agree."""
        if self.table is not None and self.query is not None:
            raise ValueError("give table: or query:, not both")
        if self.reads_database and self.files is not None:
            raise ValueError("files: reads a files source; table: and query: a database")
        if self.reads_database and self.load == "append":
            raise ValueError(
                "a database object reads rows again (the whole table without a cursor, the "
                "rows tied on the watermark with one): load: merge or scd2 with a key, or "
                "replace for a snapshot, not append"
            )
        if self.table is not None and not _SOURCE_TABLE.match(self.table):
            raise ValueError(
                f"table '{self.table}' must be a table name or schema.table (letters, digits, _)"
            )
        if self.query is not None and not self.query.strip():
            raise ValueError("query: is empty")
        db_only = {"cursor": self.cursor, "lookback": self.lookback, "partitions": self.partitions}
        for what, value in db_only.items():
            if value is not None and not self.reads_database:
                raise ValueError(f"{what}: applies to a database object (table: or query:)")
        if not self.reads_database and any(isinstance(c, ReconcileCheck) for c in self.checks):
            raise ValueError(
                "reconcile: compares a database window's count on the source with the rows "
                "extracted: it applies to a database object (table: or query:); a file "
                "declares no count of its own"
            )
        if self.lookback is not None and self.cursor is None:
            raise ValueError("lookback: widens the cursor's window: declare cursor: too")
        if self.cursor is not None:
            spec = self.columns.get(self.cursor)
            if spec is None:
                raise ValueError(f"cursor column '{self.cursor}' is not a declared column")
            family = _cursor_family(spec)
            if family is None:
                raise ValueError(
                    f"cursor column '{self.cursor}' is {spec.type}: a cursor is a timestamp, "
                    "date or integer column"
                )
            if not self.key:
                raise ValueError(
                    "cursor: needs a key: each window re-reads the rows tied on the watermark, "
                    "and the key makes a re-read row unchanged (load: merge or scd2)"
                )
            if isinstance(self.lookback, str) and family == "integer":
                raise ValueError(f"cursor '{self.cursor}' is a number: give lookback: as one")
            if isinstance(self.lookback, str):
                duration_seconds(self.lookback)
            elif self.lookback is not None and family != "integer":
                raise ValueError("give lookback: as a duration such as 10m or 1h")
        if self.partitions is not None and self.partitions > 1:
            key = self.key[0] if len(self.key) == 1 else None
            if key is None or _cursor_family(self.columns[key]) != "integer":
                raise ValueError(
                    "partitions: splits the read into ranges of the key: it needs a key of "
                    "one integer column"
                )
        return self

    @model_validator(mode="after")
    def _partitions_fit(self) -> "ObjectSpec":
        """`partition_by:` names a date column, fits the source kind and the load mode."""
        spec = self.partition_by
        if spec is None:
            return self
        if spec.column is not None:
            column = self.columns.get(spec.column)
            if column is None:
                raise ValueError(f"partition_by column '{spec.column}' is not a declared column")
            if column.type not in ("date", "timestamp", "timestamptz"):
                raise ValueError(
                    f"partition_by column '{spec.column}' is {column.type}: a partition column "
                    "is a date, timestamp or timestamptz"
                )
            if column.type == "date" and spec.unit == "hour":
                raise ValueError(
                    f"partition_by column '{spec.column}' is a date: it cannot hold hour "
                    "partitions (grain: day or month)"
                )
        if self.reads_database and spec.path is not None:
            raise ValueError(
                "partition_by path: picks files; a database object partitions by column:"
            )
        if not self.reads_database and spec.path is None:
            raise ValueError(
                "a files object partitions by the path of its files: give partition_by "
                "{path: 'orders/{date:%Y-%m-%d}/*.csv'} (column: beside it is optional)"
            )
        if self.load not in ("append", "merge"):
            raise ValueError(
                f"partition_by needs load: append or merge (a backfill replaces a partition's "
                f"rows; load: {self.load} cannot)"
            )
        return self

    @model_validator(mode="after")
    def _sla_freshness(self) -> "ObjectSpec":
        """A freshness check without max_age takes the object's sla.freshness."""
        for check in self.checks:
            no_sla = self.sla is None or self.sla.freshness is None
            if isinstance(check, FreshnessCheck) and check.freshness.max_age is None and no_sla:
                raise ValueError(
                    "a freshness check without max_age needs sla: {freshness: ...} on the object"
                )
        return self

    @model_validator(mode="after")
    def _unique_is_comparable(self) -> "ObjectSpec":
        """A unique value is compared with the stored ones: it must be stored comparably."""
        for column, spec in self.columns.items():
            if spec.unique and spec.pii in ("mask", "drop"):
                raise ValueError(
                    f"column '{column}' is unique and pii: {spec.pii}: its stored values "
                    "cannot be compared (pii: hash can)"
                )
            if spec.unique and column in self.key and len(self.key) == 1:
                raise ValueError(
                    f"column '{column}' is the key: it is unique by definition (a repeated key "
                    "is a duplicate, the later row wins); drop unique: true"
                )
        return self

    @model_validator(mode="after")
    def _key_rules_are_errors(self) -> "ObjectSpec":
        """A key or order_by value must be present: its `required` cannot be a warning."""
        for column in {*self.key, *([self.order_by] if self.order_by else [])}:
            spec = self.columns.get(column)
            if spec is not None and spec.options("required").severity == "warn":
                raise ValueError(
                    f"column '{column}' is in the key or order_by: its required rule cannot "
                    "be severity: warn"
                )
        return self

    def freshness_seconds(self, check: FreshnessCheck) -> float:
        """The max age of a freshness check: its own, else the object's SLA."""
        from penstock.catalog.alerting import period_seconds

        age = check.freshness.max_age or (self.sla.freshness if self.sla else None)
        assert age is not None  # _sla_freshness
        return period_seconds(age)

    @property
    def chunking(self) -> MicroBatch:
        """How many batches validate and load together: `micro_batch`, but one at a time for an
        object with a `unique` column, whose batches are judged against the table each earlier
        batch left (so runs and a rebuild, which chunk batches differently, agree)."""
        if any(spec.unique for spec in self.columns.values()):
            return self.micro_batch.model_copy(update={"files": 1})
        return self.micro_batch

    @property
    def stored_columns(self) -> list[str]:
        """The columns the warehouse table holds: all but those declared `pii: drop`."""
        return [name for name, spec in self.columns.items() if spec.pii != "drop"]

    @property
    def treated_columns(self) -> dict[str, str]:
        """Columns stored other than as read (`pii: hash | mask | drop`) → their treatment."""
        return {n: s.pii for n, s in self.columns.items() if s.pii is not None and s.pii in TREATED}

    def is_required(self, column: str) -> bool:
        """Key and order_by columns are required whether or not they say so: a row without
        its key cannot be matched, a row without its order_by value cannot be ordered."""
        return column in self.key or column == self.order_by or self.columns[column].required

    @property
    def versions_by_order_by(self) -> bool:
        """Does each order_by value date its own SCD2 version? True when order_by is a date or
        timestamp (`_valid_from` is that value); otherwise versions are dated by extraction
        time, so a batch holds one version per key."""
        return (
            self.load == "scd2"
            and self.order_by is not None
            and self.columns[self.order_by].column_type.family in ("date", "timestamp")
        )

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        partition_by = data.get("partition_by")
        database = data.get("table") is not None or data.get("query") is not None
        if data.get("files") is None and isinstance(partition_by, dict) and not database:
            path = partition_by.get("path")
            if isinstance(path, str):  # the files a run reads: those the partitions name
                data["files"] = re.sub(r"\{date:[^{}]+\}", "*", path)
        if data.get("format") is None and isinstance(data.get("files"), str):
            inferred = infer_format(data["files"])
            if inferred is not None:
                data["format"] = inferred
        if data.get("load") is None:
            # a database object without a key reads a whole snapshot each run: it replaces
            database = any(data.get(k) is not None for k in ("table", "query", "endpoint"))
            data["load"] = "merge" if data.get("key") else "replace" if database else "append"
        if data.get("files") is not None and isinstance(data.get("table"), str):
            raise ValueError(_TABLE_RENAMED.format(value=data["table"]))
        return data

    @field_validator("columns")
    @classmethod
    def _check_columns(cls, value: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        if not value:
            raise ValueError("declare at least one column")
        seen: dict[str, str] = {}
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for name in value:
            other = seen.setdefault(name.lower(), name)
            if other != name:
                problems.append(((name,), f"column '{name}' differs from '{other}' only in case"))
        problems = problems or _shared_source_names(value)
        if problems:
            raise LocatedError(problems)
        return value

    @field_validator("format")
    @classmethod
    def _check_format(cls, value: FileFormat | None, info: ValidationInfo) -> FileFormat | None:
        files = info.data.get("files")
        if value is None and isinstance(files, str):
            raise ValueError(
                f"cannot infer the format from '{files}' (set format: csv, jsonl, json or parquet)"
            )
        return value

    @field_validator("csv")
    @classmethod
    def _check_csv(cls, value: CsvOptions | None, info: ValidationInfo) -> CsvOptions | None:
        if "format" not in info.data:
            return value
        file_format = info.data["format"]
        if value is not None and file_format != "csv":
            raise ValueError(f"csv options only apply when format is csv, not {file_format}")
        if value is None and file_format == "csv":
            return CsvOptions()
        return value

    @field_validator("max_encoding_errors")
    @classmethod
    def _check_encoding_limit(
        cls, value: EncodingErrorLimit | None, info: ValidationInfo
    ) -> EncodingErrorLimit | None:
        file_format = info.data.get("format")
        if value is not None and file_format not in (None, "csv", "jsonl", "json"):
            raise ValueError(
                f"max_encoding_errors applies to CSV, JSON Lines and JSON objects, "
                f"not {file_format}"
            )
        return value

    @property
    def encoding_limit(self) -> EncodingErrorLimit:
        """`max_encoding_errors` as declared, or the default (1%, at most 1,000)."""
        return self.max_encoding_errors or EncodingErrorLimit()

    @field_validator("key", mode="before")
    @classmethod
    def _key_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("key")
    @classmethod
    def _check_key(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if len(set(value)) != len(value):
            problems.append(((), "a key column is listed twice"))
        columns = info.data.get("columns")
        if columns is not None:
            problems.extend(
                ((), f"key column '{name}' is not a declared column")
                for name in value
                if name not in columns
            )
        problems.extend(
            (
                (),
                f"key column '{name}' is pii: {columns[name].pii}: a key must be stored as "
                "read, or hashed (pii: hash) so that it still matches",
            )
            for name in value
            if columns is not None and name in columns and columns[name].pii in ("mask", "drop")
        )
        if problems:
            raise LocatedError(problems)
        return value

    @field_validator("order_by")
    @classmethod
    def _check_order_by(cls, value: str | None, info: ValidationInfo) -> str | None:
        columns = info.data.get("columns")
        if value is not None and columns is not None and value not in columns:
            raise ValueError(f"order_by column '{value}' is not a declared column")
        if value is not None and columns is not None and columns[value].pii in TREATED:
            raise ValueError(
                f"order_by column '{value}' is pii: {columns[value].pii}: loads compare its "
                "stored values, so it must be stored as read"
            )
        return value

    @field_validator("load")
    @classmethod
    def _check_load(cls, value: LoadMode, info: ValidationInfo) -> LoadMode:
        if value in ("merge", "scd2") and "key" in info.data and not info.data["key"]:
            raise ValueError(f"{value} needs a key")
        return value

    @field_validator("group")
    @classmethod
    def _check_group(cls, value: str) -> str:
        if not _GROUP.match(value):
            raise ValueError(
                f"group name '{value}' must start with a letter or _ "
                "and hold only letters, digits, _ and -"
            )
        return value

    @field_validator("checks")
    @classmethod
    def _unique_checks(cls, value: list[Any], info: ValidationInfo) -> list[Any]:
        seen: set[str] = set()
        problems: list[tuple[tuple[str | int, ...], str]] = []
        columns: dict[str, ColumnSpec] | None = info.data.get("columns")
        for index, check in enumerate(value):
            if isinstance(check, ExpressionCheck) and columns is not None:
                types = {name: spec.column_type.duckdb_type for name, spec in columns.items()}
                problem = expression_problem(check.expression, types)
                if problem is not None:
                    problems.append(((index, "expression"), f"check '{check.name}': {problem}"))
            problem = _batch_check_problem(check, columns, info.data.get("key"))
            if problem is not None:
                problems.append(((index,), problem))
            if check.name in seen:
                where: tuple[str | int, ...] = (index, "name")
                if not isinstance(check, ExpressionCheck):
                    where = (index,)
                problems.append((where, f"duplicate check name '{check.name}'"))
            seen.add(check.name)
        if problems:
            raise LocatedError(problems)
        return value


def _cursor_family(spec: ColumnSpec) -> str | None:
    """How a cursor or partition column orders: `integer`, `date`, `timestamp`, or None."""
    kind = spec.column_type
    if kind.name in ("integer", "bigint"):
        return "integer"
    if kind.family in ("date", "timestamp"):
        return kind.family
    return None


def _batch_check_problem(
    check: Any, columns: dict[str, ColumnSpec] | None, key: tuple[str, ...] | None
) -> str | None:
    """What is wrong with a freshness or duplicate_rate check, if anything (see
    catalog/batch_checks.py); the SLA fallback of freshness is checked by `_sla_freshness`."""
    if isinstance(check, FreshnessCheck) and columns is not None:
        column = check.freshness.column
        spec = columns.get(column)
        if spec is None:
            return f"freshness: column '{column}' is not a declared column"
        if spec.column_type.family not in ("date", "timestamp"):
            return f"freshness: column '{column}' is {spec.type}, not a date or timestamp"
    if isinstance(check, DuplicateRateCheck) and key is not None and not key:
        return "duplicate_rate needs a key (duplicates are records repeating a key)"
    return None
