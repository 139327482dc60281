"""The typed events pipeline steps emit on the bus: what sinks and hooks build on.

Every event carries the `run_id` it belongs to and `at`, a timezone-aware UTC timestamp
(naive timestamps are refused, aware ones are converted to UTC), and a stable `kind` name
(`run_started`, `batch_loaded`, …: `EVENT_KINDS` lists them); `event_dict` gives any event as
a JSON-ready dict with its `kind`. Events are frozen dataclasses with keyword-only fields, so
fields can be added without breaking a sink that reads the ones it knows.

A run emits, in this order (tests/observe/test_run_events.py proves it on a real run):

    run_started
      per object:  step_started(object)
                   source_checked                 the source was reached (or not: available False)
                   per new file:  step_started(stage) · batch_staged · step_finished(stage)
                                  · [schema_version · [schema_drift]]  (a new schema version)
                   per pending batch:  step_started(load) · checks_evaluated ·
                                  batch_loaded · batch_measured · step_finished(load)
                                  (a refused or failed batch: no batch_loaded)
                   object_counted · step_finished(object)
      log records anywhere in between
      [anomaly]…                  (the quality sink's, for the run's batches)
    run_finished

A failed step is a `step_finished` with `status == "failed"`, its `error` and `error_type`
(the issue's "step failed"); a failed load emits no `batch_loaded`. `step_retried`
and `sla_missed` are defined for the executors and evaluators that emit them (the local runner runs
each step once; SLO evaluation lives outside the runner); `anomaly` is sent by the quality
sink (observe/dq.py) when a batch's metric leaves its control limits.

Datasets are named as OpenLineage names them (`Dataset`: a namespace and a name, with their
schema when known): a landing file is `file` + its absolute path, a staged batch `file` + its
directory in the lake, a warehouse table `duckdb://<absolute file>` + `main.<table>`, its
quarantine table the same namespace + `quarantine.<object>` (engine/datasets.py builds them).
"""

from __future__ import annotations

import dataclasses
import os
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeAlias

from penstock.observe.names import LOG_LEVELS as LOG_LEVELS  # re-exported
from penstock.observe.names import OBJECT_STEP as OBJECT_STEP
from penstock.observe.names import LogLevel as LogLevel

RunStatus = Literal["success", "failed"]
StepStatus = Literal["success", "warning", "failed", "skipped", "upstream_failed"]
DatasetRole = Literal["landing", "stage", "table", "quarantine"]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


_ids: tuple[int, random.Random] | None = None


def new_id() -> str:
    """A fresh run or step id (a random uuid4, hex). Drawn from a generator seeded from the
    OS once per process (reseeded in a forked child): `uuid.uuid4()` reads `os.urandom`
    each time, 0.05-0.2 ms on a busy VM, and a run of 1,000 small files makes 3,000 ids."""
    global _ids
    pid = os.getpid()
    if _ids is None or _ids[0] != pid:
        _ids = (pid, random.Random(os.urandom(32)))
    return uuid.UUID(int=_ids[1].getrandbits(128), version=4).hex


def _check_at(event: _Base) -> None:
    if event.at.tzinfo is None or event.at.utcoffset() is None:
        raise ValueError(f"{type(event).__name__}.at must be timezone-aware, got {event.at!r}")
    if event.at.tzinfo is not UTC:
        object.__setattr__(event, "at", event.at.astimezone(UTC))


# ---- values events carry -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class SchemaField:
    """One column of a dataset: its name and type as the dataset holds it."""

    name: str
    type: str
    description: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Dataset:
    """A dataset's identity (OpenLineage naming: `namespace` is the datasource, `name` the
    dataset in it), its role in the flow and its schema when known."""

    namespace: str
    name: str
    role: DatasetRole
    fields: tuple[SchemaField, ...] = ()

    @property
    def uri(self) -> str:
        """namespace and name as one string (`file:/abs/path`, `duckdb:///w.duckdb/main.t`)."""
        separator = ":" if self.namespace == "file" else "/"
        return f"{self.namespace}{separator}{self.name}"


@dataclass(frozen=True, kw_only=True, slots=True)
class ColumnSource:
    """Where a column a step wrote comes from: column `field` of the dataset `namespace`,
    `name`; `subtype` says how (IDENTITY, TRANSFORMATION or AGGREGATION)."""

    namespace: str
    name: str
    field: str
    subtype: str
    description: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckResult:
    """One rule of a contract as a batch met it.

    `name` is the reason name quarantined rows carry (`min:amount`, `check:updated_after_order`,
    `check:row_count`, `malformed`, `encoding`); `rule` its kind (`required`, `type`, `min`,
    `max`, `in`, `pattern`, `check`, `row_count`, `malformed`, `encoding`); `column` the column
    it guards, if one. `failed_rows` rows broke it; `expected` says what the rule wants, as
    written in the contract (`>= 0`, `updated_at >= order_ts`, `at least 1 row`)."""

    name: str
    rule: str
    column: str | None
    passed: bool
    failed_rows: int
    expected: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class DimensionScore:
    """A batch's data quality in one dimension (`completeness`, `validity`, `uniqueness`,
    `consistency`, `accuracy`, `timeliness`, or `total`: the weighted whole): `rows_failed`
    of `rows_checked` rows failed it (a row counts once however many of its rules it broke);
    `score` = 1 − rows_failed / rows_checked (None when no row was checked; the total is
    the weighted mean of the dimension scores, quality/scores.py)."""

    dimension: str
    rows_checked: int
    rows_failed: int
    score: float | None


# ---- events --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _Base:
    kind: ClassVar[str] = ""
    run_id: str
    at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        _check_at(self)


@dataclass(frozen=True, kw_only=True, slots=True)
class RunStarted(_Base):
    """A `run` or `rebuild` began; `objects` are the objects it selected, in run order."""

    kind: ClassVar[str] = "run_started"
    project: str
    project_hash: str
    command: str
    selector: str | None
    objects: tuple[str, ...] = ()
    pid: int | None = None  # the process running it, on `host` (`logs --follow` watches it)
    host: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RunFinished(_Base):
    """A run ended. `status` is as recorded (`success` or `failed`); `outcome` adds `warning`
    (rows broke a contract), the word `penstock runs` shows. Row totals cover the batches that
    loaded; `failed_objects` are the objects with a failed step."""

    kind: ClassVar[str] = "run_finished"
    status: RunStatus
    error: str | None = None
    project: str = ""
    command: str = ""
    outcome: str | None = None
    duration_s: float | None = None
    batches_loaded: int = 0
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    failed_objects: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class StepStarted(_Base):
    """A step began: `object` (the object's whole work), `extract`, `stage` (one file),
    `load` (one batch), `restage`. `parent_step_id` is the object step a batch step runs in."""

    kind: ClassVar[str] = "step_started"
    step_id: str
    object: str
    batch_id: str | None
    step: str
    attempt: int = 1
    source_file: str | None = None
    parent_step_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StepFinished(_Base):
    """A step ended with `status` (`failed`: `error` says why, `error_type` names the error
    class and `retryable` whether trying again may help). Rows are those of a load step (a
    batch); `bytes_in` the bytes a stage step read (a load step: its file's size);
    `reason_counts` the rows per broken rule; `inputs`/`outputs` the datasets it read and
    wrote, with their schema; `duration_s` its wall time."""

    kind: ClassVar[str] = "step_finished"
    step_id: str
    object: str
    batch_id: str | None
    step: str
    status: StepStatus
    attempt: int = 1
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_invalid: int = 0
    rows_warned: int = 0
    error: str | None = None
    error_type: str | None = None
    retryable: bool = False
    started_at: datetime | None = None
    duration_s: float | None = None
    bytes_in: int | None = None
    source_file: str | None = None
    reason_counts: Mapping[str, int] = field(default_factory=dict)
    inputs: tuple[Dataset, ...] = ()
    outputs: tuple[Dataset, ...] = ()
    parent_step_id: str | None = None
    # a model's build: where each column of its table (its `table` output) comes from, and
    # the rows it wrote (not in rows_loaded: a run's row totals are its batches')
    column_lineage: Mapping[str, tuple[ColumnSource, ...]] = field(default_factory=dict)
    rows_written: int | None = None

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass(frozen=True, kw_only=True, slots=True)
class StepRetried(_Base):
    """A step failed with a retryable error and is tried again (`attempt` is the next one)
    after `delay_s`. Emitted by an executor that retries steps."""

    kind: ClassVar[str] = "step_retried"
    step_id: str
    object: str
    batch_id: str | None
    step: str
    attempt: int
    error: str
    delay_s: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class SourceChecked(_Base):
    """A source was asked what it holds for an object: reached (`available`, `files` found,
    in `latency_s`) or not (`error`): the issue's "source down" when `available` is False."""

    kind: ClassVar[str] = "source_checked"
    object: str
    source: str
    source_kind: str
    available: bool
    files: int | None = None
    latency_s: float | None = None
    error: str | None = None
    dataset: Dataset | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchStaged(_Base):
    """A file was staged as a new batch: `bytes` read, `rows` parsed plus `rows_malformed`,
    its raw schema (`output.fields`, as staged) and its content hash."""

    kind: ClassVar[str] = "batch_staged"
    step_id: str
    object: str
    batch_id: str
    source: str
    source_file: str
    format: str
    bytes: int
    rows: int
    rows_malformed: int
    content_hash: str
    extracted_at: datetime
    duration_s: float | None = None
    input: Dataset | None = None
    output: Dataset | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SchemaVersionSeen(_Base):
    """A newly staged batch holds a schema (its columns and observed types, in any order) that
    no earlier batch of the object held: schema `version` (1, 2, … in extraction order),
    identified by `fingerprint` (quality/drift.py), first seen in `batch_id`. With it, how the
    schema differs from the contract (`new_columns`, `missing_columns`, `type_changes`:
    column → (declared, observed)) and the object's `schema_drift` policy (`policy`). The
    metadata store keeps each version once (`schema_versions`); a rebuild sends them again."""

    kind: ClassVar[str] = "schema_version"
    project: str
    object: str
    version: int
    fingerprint: str
    batch_id: str
    source_file: str
    extracted_at: datetime
    columns: Mapping[str, str] = field(default_factory=dict)
    new_columns: tuple[str, ...] = ()
    missing_columns: tuple[str, ...] = ()
    type_changes: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    policy: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class SchemaDrift(_Base):
    """A new schema version appeared (`version`, see `SchemaVersionSeen`) that differs from
    the object's latest batch before it (`previous_batch_id`): columns `added`, `removed`, or
    `retyped` (name → (before, now)); or the object's first version, when it differs from the
    contract (`previous_batch_id` None). `missing` are contract columns the batch lacks, `extra`
    source columns the contract does not declare, `type_changes` contract columns whose
    observed type is not the declared one (column → (declared, observed)); `policy` is the
    object's `schema_drift` (what each of those does to the batch)."""

    kind: ClassVar[str] = "schema_drift"
    object: str
    batch_id: str
    source_file: str
    previous_batch_id: str | None = None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retyped: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    type_changes: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    version: int | None = None
    policy: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class ChecksEvaluated(_Base):
    """A batch was validated: every rule of the contract with its failing rows (`checks`),
    rows per reason, and the columns missing from or extra to the file. `passed` is True when
    no row broke a rule and no batch check failed. `rows_invalid` (rows that broke at least
    one rule) is None when validation stopped at the first broken rule (`on_invalid: fail`:
    the batch is refused; the rows per rule are exact)."""

    kind: ClassVar[str] = "checks_evaluated"
    step_id: str
    object: str
    batch_id: str
    source_file: str
    on_invalid: str
    rows_in: int
    rows_invalid: int | None
    rows_quarantined: int
    rows_warned: int
    checks: tuple[CheckResult, ...] = ()
    reason_counts: Mapping[str, int] = field(default_factory=dict)
    missing_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if not c.passed)

    @property
    def passed(self) -> bool:
        return not self.failed and not self.rows_invalid

    @property
    def dq_pass_rate(self) -> float | None:
        """Rows that broke no rule / rows read (None when the batch read none, or its rows
        were not counted)."""
        if not self.rows_in or self.rows_invalid is None:
            return None
        return (self.rows_in - self.rows_invalid) / self.rows_in


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchLoaded(_Base):
    """A batch committed to the warehouse with its ledger row (`skipped`: the ledger already
    had it). Rows in = loaded + quarantined + duplicate; what the load did to the table:
    inserted, updated, unchanged, stale (older than stored). `inputs` are the staged batch and
    its landing file, `outputs` the table (with the contract's schema) and, when rows were
    recorded there, the quarantine table."""

    kind: ClassVar[str] = "batch_loaded"
    step_id: str
    object: str
    batch_id: str
    source_file: str
    table: str
    load: str
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    rows_invalid: int = 0
    rows_warned: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    rows_stale: int = 0
    skipped: bool = False
    kept_previous: bool = False
    loaded_at: datetime | None = None
    duration_s: float | None = None
    reason_counts: Mapping[str, int] = field(default_factory=dict)
    inputs: tuple[Dataset, ...] = ()
    outputs: tuple[Dataset, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class BatchMeasured(_Base):
    """A loaded batch's quality scores by dimension and its checkpoint metrics (rows_in,
    quarantine_rate and quarantine_rate:<reason>, null_rate:<column>, duplicate_rate,
    duration_s, freshness_lag_s), keyed by the batch's own time (`batch_time`: its extraction
    time) and place (`source_file`, `batch_id` break ties). Emitted after `batch_loaded`; the
    quality sink (observe/dq.py) stores it and checks the metrics against control limits."""

    kind: ClassVar[str] = "batch_measured"
    object: str
    batch_id: str
    source_file: str
    batch_time: datetime
    rows_in: int
    scores: tuple[DimensionScore, ...] = ()
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class SlaMissed(_Base):
    """An object missed a service level (`sla`: `freshness`, `success_rate`): `measured`
    against `expected`, in `unit`. `run_id` is the run, or the SLO evaluation, that found it."""

    kind: ClassVar[str] = "sla_missed"
    object: str
    sla: str
    measured: float
    expected: float
    unit: str
    message: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Anomaly(_Base):
    """A measure of a batch or an object (`metric`) fell outside its control limits
    (`lower`, `upper`, computed from `points` earlier values; `expected` their centre);
    `batch_time` is the batch's own time."""

    kind: ClassVar[str] = "anomaly"
    object: str
    metric: str
    value: float
    batch_id: str | None = None
    lower: float | None = None
    upper: float | None = None
    message: str = ""
    expected: float | None = None
    points: int = 0
    batch_time: datetime | None = None
    source_file: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LogRecord(_Base):
    """One structured log line; `step_id` is the step running (or just ended) when it was
    logged."""

    kind: ClassVar[str] = "log"
    level: LogLevel
    message: str
    object: str | None = None
    batch_id: str | None = None
    step_id: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class ObjectCounted(_Base):
    """An object's counts in the warehouse when its work in a run ended: rows in its table
    (None: no table yet), batches in the ledger, quarantine rows held back and loaded anyway,
    and its landing files rejected as unreadable (in the lake). The metadata store keeps the
    latest per project and object; `penstock status` shows them without opening the
    warehouse."""

    kind: ClassVar[str] = "object_counted"
    project: str
    object: str
    table: str
    rows: int | None
    batches_loaded: int
    rows_quarantined: int
    rows_warned: int
    batches_rejected: int = 0


Event: TypeAlias = (
    RunStarted
    | RunFinished
    | StepStarted
    | StepFinished
    | StepRetried
    | SourceChecked
    | BatchStaged
    | SchemaVersionSeen
    | SchemaDrift
    | ChecksEvaluated
    | BatchLoaded
    | BatchMeasured
    | SlaMissed
    | Anomaly
    | LogRecord
    | ObjectCounted
)

EVENT_TYPES: tuple[type[Event], ...] = (
    RunStarted,
    RunFinished,
    StepStarted,
    StepFinished,
    StepRetried,
    SourceChecked,
    BatchStaged,
    SchemaVersionSeen,
    SchemaDrift,
    ChecksEvaluated,
    BatchLoaded,
    BatchMeasured,
    SlaMissed,
    Anomaly,
    LogRecord,
    ObjectCounted,
)

EVENT_KINDS: dict[str, type[Event]] = {t.kind: t for t in EVENT_TYPES}
"""Every event type by its `kind`."""


def event_fields(event: Event) -> dict[str, Any]:
    """An event's fields as keyword arguments (values as they are: datetimes, datasets)."""
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}


def event_dict(event: Event) -> dict[str, Any]:
    """An event as a JSON-ready dict: `kind`, then its fields (datetimes as ISO strings)."""
    from penstock.observe.jsonable import to_jsonable

    return {"kind": event.kind, **to_jsonable(event_fields(event))}
