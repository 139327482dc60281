"""OpenLineage run events of a run's steps (observe/lineage.py says which events and jobs;
`lineage:` in penstock.yml where they go).

Per step: START when it starts; COMPLETE (success, warning, skipped) or FAIL (with the
`errorMessage` facet) when it ends, with the `parent` facet (the object step, or the run; and
the run as `root`), the `jobType` facet, and its datasets: each with its `schema`; outputs
with `columnLineage` and `outputStatistics`; a load's staged batch (what was validated) with
`dataQualityMetrics` (rows, bytes, missing values of required columns) and
`dataQualityAssertions` (every rule of the contract, passed or not, with its failing rows).
A step a run left open when it ended is ABORTed. Only facets whose schema the OpenLineage
spec publishes are emitted (tests validate every event against them).

Events are built as the JSON the spec defines (each facet with its `_producer` and
`_schemaURL`), the shape openlineage-python serialises its own classes to. The facets that every
batch of an object repeats (its schemas, job, quality assertions, column lineage but for the
source's name) are built once and shared (`Shared`), their JSON too: the file's lines are
what json.dumps writes, written from those pieces (`event_json`). The file transport
(the default) appends one event per line to `.penstock/openlineage.jsonl`: a run that only
writes that file does not import openlineage-python, whose client costs ~0.3 s of import and
serialiser set-up (most of a run with nothing new). The HTTP transport, to Marquez or any
OpenLineage backend, is openlineage-python's own. Its configuration files and environment are
not read, so an event holds nothing but what penstock puts in it; strings penstock writes
(errors, rules) are redacted of secrets.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from penstock import __version__
from penstock.errors import MissingExtra
from penstock.memo import per_spec
from penstock.observe.events import (
    CheckResult,
    ChecksEvaluated,
    Dataset,
    Event,
    RunFinished,
    RunStarted,
    SchemaField,
    StepFinished,
    StepStarted,
)
from penstock.observe.lineage import (
    ColumnLineage,
    FinishedStep,
    OpenStep,
    Shape,
    ShapedLineage,
    StepTracker,
    from_shape,
    ol_uuid,
)
from penstock.secrets import redact

if TYPE_CHECKING:
    from datetime import datetime

    from penstock.catalog import Project

PRODUCER = f"urn:penstock:{__version__}"
EXTRA_LINE = "pip install 'penstock[observe]'"
INTEGRATION = "PENSTOCK"
SPEC = "https://openlineage.io/spec"
RUN_EVENT_SCHEMA = f"{SPEC}/2-0-2/OpenLineage.json#/$defs/RunEvent"
# each facet's published schema, at the versions openlineage-python 1.3x writes
FACET_SCHEMAS = {
    "errorMessage": "1-0-1/ErrorMessageRunFacet",
    "parent": "1-2-0/ParentRunFacet",
    "jobType": "2-0-4/JobTypeJobFacet",
    "schema": "1-2-0/SchemaDatasetFacet",
    "columnLineage": "1-2-0/ColumnLineageDatasetFacet",
    "outputStatistics": "1-0-2/OutputStatisticsOutputDatasetFacet",
    "dataQualityAssertions": "1-1-0/DataQualityAssertionsDatasetFacet",
    "dataQualityMetrics": "1-0-3/DataQualityMetricsInputDatasetFacet",
}
# the HTTP transport's retries, on top of the bus's: short, so a backend that is down is
# found out in a second, not in half a minute per event
HTTP_RETRY = {
    "total": 2,
    "connect": 1,
    "read": 1,
    "backoff_factor": 0.2,
    "status_forcelist": [500, 502, 503, 504],
    "allowed_methods": ["HEAD", "POST"],
}
_SEVERITY = {"fail": "error", "quarantine": "warn", "warn": "warn"}
# a step's status → its OpenLineage run state (an object not run for its upstream's failure
# was stopped before it did anything: ABORT)
_STEP_STATES = {"failed": "FAIL", "upstream_failed": "ABORT"}


class Transport(Protocol):
    """Where events go: `emit` one event (a JSON-ready dict), `close` at the end."""

    def emit(self, event: dict[str, Any]) -> Any: ...

    def close(self) -> Any: ...


class Shared(dict[str, Any]):
    """A facet (or part of one) built once and shared by many events, as it is: it is never
    changed, so its JSON is worked out once too, for every line `event_json` writes it in."""

    __slots__ = ("json",)

    def __init__(self, value: dict[str, Any], json: str | None = None) -> None:
        """`json`: `value`'s JSON when the caller knows it (encoded here otherwise)."""
        super().__init__(value)
        self.json = _ENCODER.encode(self) if json is None else json


# the file's serialisation: json.dumps(event, sort_keys=True, default=str), without its
# per-call set-up; a string as json.dumps writes it (ensure_ascii)
_ENCODER = json.JSONEncoder(sort_keys=True, default=str)
_encode_str = encode_basestring_ascii
# the keys `event_json` walks down to reach the shared facets (the rest is encoded whole)
_DESCEND = frozenset(
    {"inputs", "outputs", "job", "facets", "inputFacets", "dataQualityAssertions", "assertions"}
)


def event_json(event: dict[str, Any]) -> str:
    """`json.dumps(event, sort_keys=True, default=str)`, the same text, with each `Shared`
    facet's JSON reused rather than encoded again. Most of a batch's events' ~20 KB are facets
    that every batch of an object repeats (schemas, quality assertions, job types): encoding
    them all was 0.2 s of the sink's 0.4 s CPU on 1,000 small files (bench/sink_replay.py)."""
    return _encode(event, True)


def _encode(value: Any, descend: bool) -> str:
    """`value`'s JSON; a dict or list under a key of `_DESCEND` (`descend`) is walked, to
    reach the shared facets it holds, the rest encoded whole by json's C encoder (strings,
    the most common, and shared facets without a call of their own)."""
    kind = type(value)
    if kind is Shared:
        return value.json  # type: ignore[no-any-return]
    if descend and kind is dict:
        parts = []
        try:
            for k, v in sorted(value.items()):
                if type(v) is str:
                    text = _encode_str(v)
                elif type(v) is Shared:
                    text = v.json
                else:
                    text = _encode(v, k in _DESCEND)
                parts.append(f"{_encode_str(k)}: {text}")
        except TypeError:  # a key that is not a string: json.dumps's to turn into one
            return _ENCODER.encode(value)
        return "{" + ", ".join(parts) + "}"
    if descend and kind is list:
        return (
            "["
            + ", ".join([v.json if type(v) is Shared else _encode(v, True) for v in value])
            + "]"
        )
    return _ENCODER.encode(value)


def facet(key: str, **fields: Any) -> dict[str, Any]:
    """The facet `key` (a name of `FACET_SCHEMAS`) with its producer and schema URL; fields
    that are None are left out, as the spec's optional fields are."""
    out = dict(_FACET_HEADS[key])
    out.update(_dropping_none(**fields))
    return out


def _facet_head(key: str) -> dict[str, str]:
    version, _, name = FACET_SCHEMAS[key].partition("/")
    return {
        "_producer": PRODUCER,
        "_schemaURL": f"{SPEC}/facets/{version}/{name}.json#/$defs/{name}",
    }


# each facet's first two fields, worked out once (12,000 facets on 1,000 small files)
_FACET_HEADS = {key: _facet_head(key) for key in FACET_SCHEMAS}


def _dropping_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def openlineage_sink(project: Project) -> OpenLineageSink:
    """The sink for the project's `lineage:` settings (`transport: none` never gets here)."""
    if project.lineage.transport == "http" and importlib.util.find_spec("openlineage") is None:
        raise MissingExtra(
            f"lineage: sending OpenLineage events over HTTP needs openlineage-python: {EXTRA_LINE}",
            extra="observe",
        ) from None
    return OpenLineageSink(project)


class FileTransport:
    """Appends one event per line to a file, opened once (on the first event) in append mode;
    each line is written whole and flushed, so another process appending to the same file
    (two runs on one project) never interleaves inside a line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._held: list[str] | None = None

    def emit(self, event: dict[str, Any]) -> None:
        line = event_json(event) + "\n"
        if self._held is not None:
            self._held.append(line)
        else:
            self._write(line)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Emit the events of the block with one write at its end (whole lines, so a second
        process appending still never splits one): a sink's delivery of many events."""
        self._held = []
        try:
            yield
            held = self._held
        finally:
            self._held = None  # on an error nothing is written: the bus delivers each again
        if held:
            self._write("".join(held))

    def _write(self, text: str) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(text)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def make_transport(project: Project) -> Transport:
    settings = project.lineage
    if settings.transport == "http":
        from openlineage.client.transport.http import (
            ApiKeyTokenProvider,
            HttpConfig,
            HttpTransport,
            TokenProvider,
        )

        assert settings.url is not None  # the settings model says so
        auth = (
            ApiKeyTokenProvider({"apiKey": settings.api_key})
            if settings.api_key
            else TokenProvider({})
        )
        # HttpTransport.emit serialises with openlineage's Serde, which takes a dict as it is
        http: Transport = HttpTransport(  # type: ignore[assignment]
            HttpConfig(
                url=settings.url,
                endpoint=settings.endpoint,
                timeout=settings.timeout,
                auth=auth,
                retry=dict(HTTP_RETRY),
            )
        )
        return http
    path = Path(settings.file)
    return FileTransport(path if path.is_absolute() else project.root / path)


class OpenLineageSink:
    """The bus sink: builds each OpenLineage event and hands it to the transport, which is
    built with the first event, on the sink's thread."""

    def __init__(self, project: Project, transport: Transport | None = None) -> None:
        self.project = project
        self.namespace = project.lineage.namespace or project.name
        self._transport = transport
        self.tracker = StepTracker(project)
        self.run_at: dict[str, datetime] = {}

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            self._transport = make_transport(self.project)
        return self._transport

    def handle_many(self, events: Sequence[Event]) -> None:
        """Several events in order; to the default file with one write."""
        transport = self.transport
        held = transport.holding() if isinstance(transport, FileTransport) else nullcontext()
        with held:
            for event in events:
                self.handle(event)

    def handle(self, event: Event) -> None:
        self.tracker.note(event)
        match event:
            case RunStarted():
                self.run_at[event.run_id] = event.at
                self._send("START", event.at, event.run_id, event.command, None, event)
            case StepStarted():
                step = self.tracker.started(event)
                self._send("START", event.at, step.step_id, step.job, step, event)
            case StepFinished():
                done = self.tracker.finished(event)
                state = _STEP_STATES.get(event.status, "COMPLETE")
                step = self.tracker.open[event.step_id]
                self._send(state, event.at, event.step_id, done.job, step, event, done)
            case RunFinished():
                command = self.tracker.commands.get(event.run_id, event.command or "run")
                for left in self.tracker.unfinished(event.run_id):
                    self._send("ABORT", event.at, left.step_id, left.job, left, event)
                state = "FAIL" if event.status == "failed" else "COMPLETE"
                self._send(state, event.at, event.run_id, command, None, event)
                self.tracker.run_ended(event.run_id)
                self.run_at.pop(event.run_id, None)

    def _send(
        self,
        state: str,
        at: datetime,
        run_id: str,
        job: str,
        step: OpenStep | None,
        event: Event,
        done: FinishedStep | None = None,
    ) -> None:
        run_facets: dict[str, Any] = {}
        if step is not None:
            run_facets["parent"] = self._parent(step)
        error = getattr(event, "error", None)
        if state == "FAIL" and error:
            run_facets["errorMessage"] = facet(
                "errorMessage", message=redact(str(error)), programmingLanguage="PYTHON"
            )
        inputs, outputs = self._datasets(done) if done is not None else ([], [])
        self.transport.emit(
            {
                "eventTime": at.isoformat(),
                "eventType": state,
                "inputs": inputs,
                "job": _job(step.step if step else "run", job, self.namespace),
                "outputs": outputs,
                "producer": PRODUCER,
                "run": {"facets": run_facets, "runId": ol_uuid(run_id)},
                "schemaURL": RUN_EVENT_SCHEMA,
            }
        )

    def _parent(self, step: OpenStep) -> dict[str, Any]:
        command = self.tracker.commands.get(step.run_id, "run")
        parent_step = self.tracker.open.get(step.parent_id) if step.parent_id else None
        if parent_step is not None:
            parent_job, parent_run = parent_step.job, parent_step.step_id
        else:
            parent_job, parent_run = command, step.run_id
        return facet(
            "parent",
            job=_job_ref(self.namespace, parent_job),
            root={
                "job": _job_ref(self.namespace, command),
                "run": _run_ref(step.run_id),
            },
            run=_run_ref(parent_run),
        )

    def _datasets(self, done: FinishedStep) -> tuple[list[Any], list[Any]]:
        e = done.event
        inputs = []
        for d in e.inputs:
            input_facets: dict[str, Any] = {}
            if e.step == "load" and d.role == "stage":
                input_facets = _quality_facets(e, done.checks)
            inputs.append(
                {
                    "facets": _dataset_facets(d),
                    "inputFacets": input_facets,
                    "name": d.name,
                    "namespace": d.namespace,
                }
            )
        outputs = []
        for d in e.outputs:
            facets = _dataset_facets(d)
            columns = done.columns.get((d.namespace, d.name))
            if columns:
                facets["columnLineage"] = _column_facet(columns)
            outputs.append(
                {
                    "facets": facets,
                    "name": d.name,
                    "namespace": d.namespace,
                    "outputFacets": _statistics(e, d, done),
                }
            )
        return inputs, outputs

    def flush(self) -> None:
        """Nothing is buffered: each event was handed to the transport as it came."""

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _job_ref(namespace: str, name: str) -> dict[str, Any]:
    return {"facets": {}, "name": name, "namespace": namespace}


def _run_ref(run_id: str) -> dict[str, Any]:
    return {"facets": {}, "runId": ol_uuid(run_id)}


@functools.lru_cache(maxsize=1024)
def _job(step: str, name: str, namespace: str) -> Shared:
    """An event's job: one per job (an object's, or one of its step kinds), shared by the
    events of its runs."""
    return Shared({"facets": {"jobType": _job_type(step)}, "name": name, "namespace": namespace})


@functools.lru_cache(maxsize=64)
def _job_type(step: str) -> Shared:
    """The jobType facet of a step kind: one per kind (a few), shared by its events."""
    return Shared(
        facet("jobType", integration=INTEGRATION, jobType=step.upper(), processingType="BATCH")
    )


def _dataset_facets(d: Dataset) -> dict[str, Any]:
    if not d.fields:
        return {}
    if all(f.description is None for f in d.fields):  # nothing to redact: the same facet
        return {"schema": _plain_schema_facet(d.fields)}
    return {"schema": _schema_facet(d.fields)}


@per_spec  # the events of an object's batches share one fields tuple: found without hashing it
@functools.lru_cache(maxsize=64)
def _plain_schema_facet(fields: tuple[SchemaField, ...]) -> Shared:
    """The schema facet of fields without descriptions: the same for every batch of an
    object (thousands of small files' events share one; it is only ever serialised)."""
    return Shared(_schema_facet(fields))


def _schema_facet(fields: tuple[SchemaField, ...]) -> dict[str, Any]:
    described = [
        _dropping_none(
            description=redact(f.description) if f.description else None,
            fields=[],
            name=f.name,
            ordinal_position=i,
            type=f.type,
        )
        for i, f in enumerate(fields, start=1)
    ]
    return facet("schema", fields=described)


def _column_facet(columns: ColumnLineage) -> dict[str, Any]:
    """The columnLineage facet; with its JSON, from its shape's template, when the columns
    are a shape's (`ShapedLineage`): each batch's facet differs from the last only in its
    source dataset's name. (The facets were ~8 KB of a batch's ~20 KB of events on 1,000
    small files: their encoding ~0.04 s of the sink's ~0.26 s.)"""
    built = _column_facet_of(columns)
    if type(columns) is ShapedLineage:
        parts = _column_template(columns.shape, columns.namespace)
        if parts is not None:
            return Shared(built, _encode_str(columns.name).join(parts))
    return built


# a name no dataset has, whose JSON marks where a template's dataset name goes
_NAME_MARK = "\x00penstock: the source dataset's name\x00"


@functools.lru_cache(maxsize=256)
def _column_template(shape: Shape, namespace: str) -> tuple[str, ...] | None:
    """The JSON of a shape's facet split where its source dataset's name goes; None if the
    mark is found anywhere else (then the facet is encoded as it is)."""
    sample = _column_facet_of(from_shape(shape, namespace, _NAME_MARK))
    parts = tuple(_ENCODER.encode(sample).split(_encode_str(_NAME_MARK)))
    names = sum(len(field["inputFields"]) for field in sample["fields"].values())
    return parts if len(parts) == names + 1 else None


def _column_facet_of(columns: ColumnLineage) -> dict[str, Any]:
    return facet(
        "columnLineage",
        dataset=[],
        fields={
            name: {
                "inputFields": [
                    {
                        "field": c.field,
                        "name": c.name,
                        "namespace": c.namespace,
                        "transformations": _transformations(c.description, c.subtype, c.masking),
                    }
                    for c in inputs
                ]
            }
            for name, inputs in columns.items()
        },
    )


@functools.lru_cache(maxsize=256, typed=True)  # masking True and 1 write differently
def _transformations(description: str, subtype: str, masking: bool) -> list[dict[str, Any]]:
    """An input column's transformations: a few kinds, each shared by the columns of every
    batch (27,000 on 1,000 small files; they are only ever serialised)."""
    return [
        _dropping_none(
            description=description, subtype=subtype, type="DIRECT", masking=masking or None
        )
    ]


def _statistics(e: StepFinished, d: Dataset, done: FinishedStep) -> dict[str, Any]:
    rows: int | None = None
    size: int | None = None
    if d.role == "table":
        rows = e.rows_loaded if e.rows_written is None else e.rows_written
    elif d.role == "quarantine":
        rows = e.rows_quarantined
    elif d.role == "stage" and done.staged is not None:
        rows = done.staged.rows + done.staged.rows_malformed
        size = done.staged.bytes
    if rows is None or e.status == "failed":
        return {}
    return {"outputStatistics": facet("outputStatistics", rowCount=rows, size=size)}


def _quality_facets(e: StepFinished, checks: ChecksEvaluated | None) -> dict[str, Any]:
    if checks is None:
        return {}
    missing = {c.column: c.failed_rows for c in checks.checks if c.rule == "required" and c.column}
    return {
        "dataQualityAssertions": facet("dataQualityAssertions", assertions=assertions(checks)),
        "dataQualityMetrics": facet(
            "dataQualityMetrics",
            bytes=e.bytes_in,
            columnMetrics={col: {"nullCount": n, "quantiles": {}} for col, n in missing.items()},
            fileCount=1,
            rowCount=checks.rows_in,
        ),
    }


def assertions(checks: ChecksEvaluated) -> list[Shared]:
    """Every rule's result as an assertion, each built once (`_assertion`)."""
    severity = _SEVERITY.get(checks.on_invalid, "warn")
    return [
        _assertion(c, severity, redact(c.expected) if c.expected is not None else None)
        for c in checks.checks
    ]


@functools.lru_cache(maxsize=1024)
def _assertion(c: CheckResult, severity: str, expected: str | None) -> Shared:
    """A rule's result as an assertion; `expected` is `c.expected` redacted (in the key, so a
    secret registered later is never served from the cache). A batch's rules mostly pass
    with the same result as the batch before: 24 per batch, built once each."""
    return Shared(
        _dropping_none(
            actual=f"{c.failed_rows} failing row(s)",
            assertion=c.rule,
            column=c.column,
            expected=expected,
            name=c.name,
            params={},
            severity=severity,
            success=c.passed,
        )
    )
