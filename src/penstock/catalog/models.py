"""The project model: `penstock.yml` with its included sources and objects.

Column, check and CSV models live in `columns.py`, sources and objects in `objects.py`; all are
re-exported here so that `penstock.catalog.models` is the one import path.
"""

import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import (
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from penstock.catalog.alerting import AlertRule, SlaSpec, check_alert_rules
from penstock.catalog.base import Model
from penstock.catalog.columns import (
    Check,
    ColumnSpec,
    CsvOptions,
    ExpressionCheck,
    LocatedError,
    RowCountBounds,
    RowCountCheck,
)
from penstock.catalog.database import DatabaseSource
from penstock.catalog.dialect import apply_source_defaults
from penstock.catalog.files_source import FilesSource
from penstock.catalog.lineage_settings import LineageSettings
from penstock.catalog.locations import (
    DEFAULT_METADATA,
    DEFAULT_WAREHOUSE,
    URL_SCHEME,
    metadata_url,
    project_path,
    url_problem,
    warehouse_options,
    warehouse_path,
)
from penstock.catalog.objects import (
    SOURCE_KINDS,
    ObjectName,
    ObjectSpec,
    Source,
    SourceName,
)
from penstock.catalog.observability import (
    HookSpec,
    RetentionKind,
    RetentionSettings,
    hook_list,
)
from penstock.catalog.orchestration import GroupSpec, RetryPolicy, seconds
from penstock.catalog.privacy import MIN_KEY_CHARS, PrivacySettings
from penstock.catalog.quality_settings import AnomalySettings, QualitySettings
from penstock.catalog.rest import RestSource
from penstock.errors import UsageError
from penstock.secrets import is_secret
from penstock.sql import ident

__all__ = [
    "SOURCE_KINDS",
    "AlertRule",
    "Check",
    "ColumnSpec",
    "CsvOptions",
    "DatabaseSource",
    "ExpressionCheck",
    "FilesSource",
    "GroupSpec",
    "HookSpec",
    "LocatedError",
    "ObjectSpec",
    "Project",
    "RestSource",
    "RetentionSettings",
    "RowCountBounds",
    "RowCountCheck",
    "SlaSpec",
    "Source",
]

_PROJECT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_GROUP_PREFIX = "group:"


class Project(Model):
    """A whole project: settings, sources and objects, plus where they were read from."""

    internal_fields: ClassVar[frozenset[str]] = frozenset(
        {"root", "project_hash", "origins", "written_references", "weak_secrets"}
    )

    name: str
    warehouse: str = DEFAULT_WAREHOUSE
    lake: str = "./lake"
    metadata: str = DEFAULT_METADATA
    include: list[str] = Field(default_factory=list)
    retention_days: Annotated[StrictInt, Field(ge=1)] = 90
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    hooks: list[HookSpec] = Field(default_factory=list)
    lineage: LineageSettings = Field(default_factory=LineageSettings)  # where OpenLineage goes
    quality: QualitySettings = Field(default_factory=QualitySettings)  # DQ weights, anomalies
    sources: dict[SourceName, Source] = Field(default_factory=dict)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)  # before objects
    objects: dict[ObjectName, ObjectSpec] = Field(default_factory=dict)
    groups: dict[str, GroupSpec] = Field(default_factory=dict)  # after objects: it names theirs
    alerts: list[AlertRule] = Field(default_factory=list)  # after objects: rules name them
    # Set by the loader, not by users.
    root: Path = Field(default_factory=Path.cwd)
    project_hash: str = ""
    origins: dict[str, tuple[str, int]] = Field(default_factory=dict)
    # (key path, text as written) of every value that held a `${...}` reference: the hash
    # covers these texts, never the resolved secrets.
    written_references: tuple[tuple[tuple[str | int, ...], str], ...] = ()
    # References whose value is too short to redact safely (by reference, never by value).
    weak_secrets: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _PROJECT_NAME.match(value):
            raise ValueError(
                f"project name '{value}' must start with a letter or _ "
                "and hold only letters, digits, _ and -"
            )
        return value

    @field_validator("warehouse", "metadata")
    @classmethod
    def _check_url(cls, value: str, info: ValidationInfo) -> str:
        problem = url_problem(value, cls.model_fields[str(info.field_name)].default)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("lake")
    @classmethod
    def _check_lake(cls, value: str) -> str:
        if URL_SCHEME.match(value):
            raise ValueError(
                f"the lake is a local directory for now ({value.split(':', 1)[0]}:// lakes are "
                "not available yet): give a path relative to the project or /an/absolute/path"
            )
        return value

    @field_validator("hooks", mode="before")
    @classmethod
    def _hooks_as_specs(cls, value: Any) -> Any:
        return hook_list(value)

    @field_validator("include", mode="before")
    @classmethod
    def _include_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("objects", mode="before")
    @classmethod
    def _name_objects(cls, value: Any) -> Any:
        """Each object's name is its key under `objects:`."""
        if not isinstance(value, dict):
            return value
        named: dict[Any, Any] = {}
        for key, spec in value.items():
            if isinstance(spec, dict):
                spec = {**spec, "name": key}
            elif isinstance(spec, ObjectSpec) and spec.name != key:
                spec = spec.model_copy(update={"name": key})
            named[key] = spec
        return named

    @field_validator("objects")
    @classmethod
    def _cross_check(
        cls, value: dict[str, ObjectSpec], info: ValidationInfo
    ) -> dict[str, ObjectSpec]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        sources: dict[str, Source] | None = info.data.get("sources")
        tables: dict[str, str] = {}
        for name, spec in value.items():
            other = tables.setdefault(spec.table_name.lower(), name)
            if other != name:
                problems.append(
                    ((name,), f"table '{spec.table_name}' is also the table of object '{other}'")
                )
            if sources is None:
                continue
            source = sources.get(spec.source)
            if source is None:
                declared = ", ".join(sources) or "no sources are declared"
                problems.append(
                    ((name, "source"), f"unknown source '{spec.source}' (declared: {declared})")
                )
            elif isinstance(source, FilesSource) and spec.files is None:
                problems.append(
                    ((name,), f"missing required key 'files' (source '{spec.source}' is files)")
                )
            elif isinstance(source, RestSource) != spec.reads_api:
                problems.append(
                    (
                        (name,),
                        f"give endpoint: (source '{spec.source}' is a REST API)"
                        if isinstance(source, RestSource)
                        else f"endpoint: reads a REST API; source '{spec.source}' is {source.kind}",
                    )
                )
            elif isinstance(source, DatabaseSource) and not spec.reads_database:
                problems.append(
                    (
                        (name,),
                        f"give table: or query: (source '{spec.source}' is a {source.kind} "
                        "database)",
                    )
                )
        if problems:
            raise LocatedError(problems)
        return value

    @field_validator("privacy")
    @classmethod
    def _check_privacy(cls, value: PrivacySettings) -> PrivacySettings:
        key = value.key
        if key is None:
            return value
        if not is_secret(key):
            raise LocatedError(
                [
                    (
                        ("key",),
                        "give the key by reference (${env:NAME} or ${file:PATH}), never the "
                        "key itself: penstock.yml is not a place for secrets",
                    )
                ]
            )
        if len(key) < MIN_KEY_CHARS:
            raise LocatedError(
                [(("key",), f"the key is {len(key)} characters; use at least {MIN_KEY_CHARS}")]
            )
        return value

    @field_validator("objects")
    @classmethod
    def _check_pii_key(
        cls, value: dict[str, ObjectSpec], info: ValidationInfo
    ) -> dict[str, ObjectSpec]:
        """`pii: hash` needs `privacy: {key: ...}`."""
        privacy: PrivacySettings | None = info.data.get("privacy")
        if privacy is None or privacy.key is not None:
            return value
        problems: list[tuple[tuple[str | int, ...], str]] = [
            (
                (name, "columns", column, "pii"),
                'pii: hash needs a key: add privacy: {key: "${env:PENSTOCK_PII_KEY}"} to '
                "penstock.yml (a reference to a secret of 16 characters or more)",
            )
            for name, spec in value.items()
            for column, treatment in spec.treated_columns.items()
            if treatment == "hash"
        ]
        if problems:
            raise LocatedError(problems)
        return value

    @field_validator("objects")
    @classmethod
    def _check_dependencies(cls, value: dict[str, ObjectSpec]) -> dict[str, ObjectSpec]:
        """`depends_on` names declared objects. Cycles are the plan's to name (engine/plan.py)."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for name, spec in value.items():
            for column, column_spec in spec.columns.items():
                problem = _reference_problem(value, name, column_spec)
                if problem is not None:
                    problems.append(((name, "columns", column, "references"), problem))
            for index, other in enumerate(spec.depends_on):
                if other == name:
                    problems.append(
                        ((name, "depends_on", index), "an object cannot depend on itself")
                    )
                elif other not in value:
                    known = ", ".join(n for n in value if n != name) or "none"
                    problems.append(
                        (
                            (name, "depends_on", index),
                            f"unknown object '{other}' (objects: {known})",
                        )
                    )
        if problems:
            raise LocatedError(problems)
        return {name: _with_reference_tables(spec, value) for name, spec in value.items()}

    @field_validator("groups")
    @classmethod
    def _check_groups(
        cls, value: dict[str, GroupSpec], info: ValidationInfo
    ) -> dict[str, GroupSpec]:
        """`groups:` configures groups that objects are in, and orders them `after` such groups."""
        objects: dict[str, ObjectSpec] | None = info.data.get("objects")
        if objects is None:
            return value
        used = list(dict.fromkeys(spec.group for spec in objects.values()))
        known = ", ".join(used) or "none"
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for group, spec in value.items():
            if group not in used:
                problems.append(((group,), f"no object is in group '{group}' (groups: {known})"))
            for index, other in enumerate(spec.after):
                if other == group:
                    problems.append(((group, "after", index), "a group cannot run after itself"))
                elif other not in used:
                    problems.append(
                        ((group, "after", index), f"unknown group '{other}' (groups: {known})")
                    )
        if problems:
            raise LocatedError(problems)
        return value

    @field_validator("objects")
    @classmethod
    def _source_csv_defaults(
        cls, value: dict[str, ObjectSpec], info: ValidationInfo
    ) -> dict[str, ObjectSpec]:
        """A files source's `csv:` is the default of its CSV objects, key by key."""
        sources: dict[str, Source] = info.data.get("sources") or {}
        problems: list[tuple[tuple[str | int, ...], str]] = []
        merged = dict(value)
        for name, spec in value.items():
            source = sources.get(spec.source)
            if spec.csv is None or not isinstance(source, FilesSource):
                continue
            try:
                csv = spec.csv.merged_over(source.csv)
            except ValidationError as exc:
                reason = "; ".join(
                    str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()
                )
                problems.append(
                    ((name, "csv"), f"combined with the csv: of source '{spec.source}': {reason}")
                )
                continue
            if csv != spec.csv:
                merged[name] = spec.model_copy(update={"csv": csv})
            if not csv.header:
                problems += [
                    (
                        (name, "columns", column, "from"),
                        "from: names a header, but this object's CSV has none (header: false): "
                        "fields are read in column order",
                    )
                    for column, column_spec in spec.columns.items()
                    if column_spec.from_ is not None
                ]
        if problems:
            raise LocatedError(problems)
        return merged

    @field_validator("alerts")
    @classmethod
    def _check_alerts(cls, value: list[AlertRule], info: ValidationInfo) -> list[AlertRule]:
        objects = info.data.get("objects")
        problems = check_alert_rules(value, set(objects) if objects is not None else set())
        if problems and objects is not None:
            raise LocatedError(problems)
        return value

    @field_validator("root")
    @classmethod
    def _absolute_root(cls, value: Path) -> Path:
        return value if value.is_absolute() else value.resolve()

    @model_validator(mode="after")
    def _source_defaults(self) -> "Project":
        """Objects take the value-dialect keys they leave unset from their source."""
        objects, problems = apply_source_defaults(self.objects, self.sources)
        if problems:
            raise LocatedError(problems)
        object.__setattr__(self, "objects", objects)
        return self

    @model_validator(mode="after")
    def _scheduled_has_a_schedule(self) -> "Project":
        """`trigger: schedule` needs a cron on the object or its group (else it would never
        run on its own, silently)."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for name, spec in self.objects.items():
            group = self.groups.get(spec.group)
            if (
                spec.trigger == "schedule"
                and spec.schedule is None
                and (group is None or group.schedule is None)
            ):
                problems.append(
                    (
                        ("objects", name, "trigger"),
                        f"trigger: schedule needs a schedule: a cron on the object or on its "
                        f"group '{spec.group}' (e.g. schedule: \"0 * * * *\")",
                    )
                )
        if problems:
            raise LocatedError(problems)
        return self

    @model_validator(mode="after")
    def _compute_hash(self) -> "Project":
        """The catalog version: a hash of the project as written. Values that came from
        references count as their `${...}` text, so rotating a secret is not a new version
        and the stored hash says nothing about the secret."""
        content = self.model_dump(mode="json", by_alias=True, exclude=set(self.internal_fields))
        for path, text in self.written_references:
            _replace_at(content, path, text)
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        object.__setattr__(self, "project_hash", digest)
        return self

    def retention_period(self, kind: RetentionKind) -> timedelta:
        """How long the metadata store keeps records of `kind` (`retention:`, else
        `retention_days`)."""
        return self.retention.period(kind, self.retention_days)

    def anomaly_settings(self, obj: str) -> AnomalySettings:
        """The object's `anomalies:` over the project's default (`quality: anomalies:`)."""
        default = self.quality.anomalies
        spec = self.objects[obj].anomalies if obj in self.objects else None
        return default if spec is None else spec.merged_over(default)

    def retry_policy(self, obj: str) -> RetryPolicy:
        """How the object's work is retried: its `retry:`, else its source's (not a REST
        source's: that is each request's), else once."""
        spec = self.objects[obj]
        source = self.sources.get(spec.source)
        if isinstance(source, RestSource):  # a REST source's retry: is each request's
            return spec.retry or RetryPolicy()
        return spec.retry or (source.retry if source is not None else None) or RetryPolicy()

    def timeout_seconds(self, obj: str) -> float | None:
        """How long one try of the object's work may take: its `timeout:`, else its
        source's, else no limit."""
        spec = self.objects[obj]
        source = self.sources.get(spec.source)
        text = spec.timeout or (source.timeout if source is not None else None)
        return None if text is None else seconds(text)

    def path(self, value: str | Path) -> Path:
        """`value` resolved against the project directory (an absolute path stays as is)."""
        return project_path(self.root, value)

    @property
    def lake_path(self) -> Path:
        return self.path(self.lake)

    @property
    def warehouse_path(self) -> Path | None:
        """The DuckDB file of the warehouse; None for an in-memory or non-DuckDB warehouse."""
        return warehouse_path(self.root, self.warehouse)

    @property
    def warehouse_options(self) -> dict[str, str]:
        """Engine settings from the warehouse URL's query (`?memory_limit=4GB&threads=2`)."""
        return warehouse_options(self.warehouse)

    @property
    def metadata_url(self) -> str:
        """The metadata database URL, with a relative SQLite path made absolute."""
        return metadata_url(self.root, self.metadata)

    def objects_in_order(self) -> list[ObjectSpec]:
        """Objects in declaration order: penstock.yml first, then included files."""
        return list(self.objects.values())

    def group_names(self) -> list[str]:
        """The distinct groups of the objects, in the order they first appear."""
        return list(dict.fromkeys(spec.group for spec in self.objects.values()))

    def select(self, selector: str | None = None) -> list[ObjectSpec]:
        """Objects named by `selector` (`orders`, `group:raw`, comma-separated), in order.

        None or an empty selector selects every object. Raises UsageError for an unknown
        object or group. The graph operators of `--select` (`+orders`, `orders+`) are the
        plan's (engine/plan.py `Plan.select`), which resolves each name here.
        """
        if selector is None or not selector.strip():
            return self.objects_in_order()
        wanted: set[str] = set()
        for raw_part in selector.split(","):
            part = raw_part.strip()
            if not part:
                continue
            if "+" in part:
                raise UsageError(
                    f"'{part}': graph operators (+NAME, NAME+) follow dependencies, which the "
                    "plan resolves: penstock.engine.plan.build_plan(project).select(selector)",
                    selector=part,
                )
            if part.startswith(_GROUP_PREFIX):
                group = part.removeprefix(_GROUP_PREFIX).strip()
                members = {spec.name for spec in self.objects.values() if spec.group == group}
                if not members:
                    groups = ", ".join(self.group_names()) or "none"
                    raise UsageError(
                        f"unknown group '{group}' (available groups: {groups})", selector=part
                    )
                wanted |= members
            elif part in self.objects:
                wanted.add(part)
            else:
                names = ", ".join(self.objects) or "none"
                groups = ", ".join(self.group_names()) or "none"
                raise UsageError(
                    f"unknown object '{part}' (available objects: {names}; groups: {groups})",
                    selector=part,
                )
        return [spec for spec in self.objects_in_order() if spec.name in wanted]

    def origin(self, key_path: str) -> tuple[str, int] | None:
        """(file, line) where `key_path` (e.g. `objects.orders`) was written, when known."""
        return self.origins.get(key_path)


def _with_reference_tables(spec: ObjectSpec, objects: dict[str, ObjectSpec]) -> ObjectSpec:
    """`spec` knowing the warehouse table of each object its columns reference."""
    targets = {c.references.partition(".")[0] for c in spec.columns.values() if c.references}
    if not targets:
        return spec
    tables = {t: ident(objects[t].table_name) for t in sorted(targets)}
    return spec.model_copy(update={"reference_tables": tables})


def _reference_problem(objects: dict[str, ObjectSpec], name: str, spec: ColumnSpec) -> str | None:
    """What is wrong with a column's `references: object.column`, if anything."""
    if spec.references is None:
        return None
    target, _, column = spec.references.partition(".")
    other = objects.get(target)
    if other is None:
        known = ", ".join(n for n in objects if n != name) or "none"
        return f"unknown object '{target}' (objects: {known})"
    if column not in other.columns:
        return f"object '{target}' has no column '{column}' (columns: {', '.join(other.columns)})"
    referenced = other.columns[column]
    if referenced.pii in ("hash", "mask", "drop") or spec.pii in ("hash", "mask", "drop"):
        return "references compares stored values: neither column can be pii: hash, mask or drop"
    mine, theirs = spec.column_type.family, referenced.column_type.family
    if mine != theirs:
        return f"{spec.type} values cannot be found in {target}.{column} ({referenced.type})"
    return None


def _replace_at(content: Any, path: tuple[str | int, ...], value: str) -> None:
    """Set `content[path[0]][path[1]]...` to `value` when that path exists in the dump."""
    *parents, last = path
    for part in parents:
        if not _has(content, part):
            return
        content = content[part]
    if _has(content, last):
        content[last] = value


def _has(content: Any, part: str | int) -> bool:
    if isinstance(content, dict):
        return part in content
    return isinstance(content, list) and isinstance(part, int) and 0 <= part < len(content)
