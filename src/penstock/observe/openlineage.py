"""OpenLineage run events of a run's steps, built and sent with openlineage-python
(observe/lineage.py says which events and jobs; `lineage:` in penstock.yml where they go).

Per step: START when it starts; COMPLETE (success, warning, skipped) or FAIL (with the
`errorMessage` facet) when it ends, with the `parent` facet (the object step, or the run; and
the run as `root`), the `jobType` facet, and its datasets: each with its `schema`; outputs
with `columnLineage` and `outputStatistics`; a load's staged batch (what was validated) with
`dataQualityMetrics` (rows, bytes, missing values of required columns) and
`dataQualityAssertions` (every rule of the contract, passed or not, with its failing rows).
A step a run left open when it ended is ABORTed. Only facets whose schema the OpenLineage
spec publishes are emitted (tests validate every event against them).

Transports are openlineage-python's own: the file transport appends one JSON event per line
(`.penstock/openlineage.jsonl` by default); the HTTP transport POSTs to Marquez or any
OpenLineage backend. The client's configuration files and environment are not read, so an
event holds nothing but what penstock puts in it; strings penstock writes (errors, rules) are
redacted of secrets.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from penstock import __version__
from penstock.errors import MissingExtra
from penstock.observe.events import (
    CheckResult,
    ChecksEvaluated,
    Dataset,
    Event,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from penstock.observe.lineage import FinishedStep, OpenStep, StepTracker, ol_uuid
from penstock.secrets import redact

if TYPE_CHECKING:
    from datetime import datetime

    from openlineage.client.transport import Transport

    from penstock.catalog import Project

PRODUCER = f"urn:penstock:{__version__}"
EXTRA_LINE = "pip install 'penstock[observe]'"
INTEGRATION = "PENSTOCK"
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


def openlineage_sink(project: Project) -> OpenLineageSink | None:
    """The sink for the project's `lineage:` settings; None (said once on stderr) when
    openlineage-python is missing and `lineage:` was not written (the default file)."""
    if importlib.util.find_spec("openlineage") is None:  # imported by the sink's own thread
        if "lineage" in project.model_fields_set:
            raise MissingExtra(
                f"lineage: sending OpenLineage events needs openlineage-python: {EXTRA_LINE}",
                extra="observe",
            ) from None
        print(
            f"penstock: OpenLineage events are not written ({project.lineage.file}): "
            f"{EXTRA_LINE} (or `lineage: {{transport: none}}`); lineage is still recorded "
            "in the metadata store",
            file=sys.stderr,
            flush=True,
        )
        return None
    # openlineage-python takes ~0.25 s to import: start now, on a thread of its own, while the
    # session opens the warehouse and the store; the sink's first event finds it loaded
    threading.Thread(
        target=_import_openlineage, name="penstock-openlineage-import", daemon=True
    ).start()
    return OpenLineageSink(project)


def _import_openlineage() -> None:
    with contextlib.suppress(Exception):  # the sink imports it again and reports a failure
        import openlineage.client.event_v2  # noqa: F401


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
        return HttpTransport(
            HttpConfig(
                url=settings.url,
                endpoint=settings.endpoint,
                timeout=settings.timeout,
                auth=auth,
                retry=dict(HTTP_RETRY),
            )
        )
    from openlineage.client.transport.file import FileConfig, FileTransport

    path = Path(settings.file)
    path = path if path.is_absolute() else project.root / path
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileTransport(FileConfig(log_file_path=str(path), append=True))


class OpenLineageSink:
    """The bus sink: builds each OpenLineage event and hands it to the transport.

    openlineage-python takes ~0.25 s to import: it is imported on a thread of its own from
    the start, and the transport is built with the first event, on the sink's thread."""

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

    def handle(self, event: Event) -> None:
        from openlineage.client.event_v2 import RunState

        self.tracker.note(event)
        match event:
            case RunStarted():
                self.run_at[event.run_id] = event.at
                self._send(RunState.START, event.at, event.run_id, event.command, None, event)
            case StepStarted():
                step = self.tracker.started(event)
                self._send(RunState.START, event.at, step.step_id, step.job, step, event)
            case StepFinished():
                done = self.tracker.finished(event)
                state = RunState.FAIL if event.status == "failed" else RunState.COMPLETE
                step = self.tracker.open[event.step_id]
                self._send(state, event.at, event.step_id, done.job, step, event, done)
            case RunFinished():
                command = self.tracker.commands.get(event.run_id, event.command or "run")
                for left in self.tracker.unfinished(event.run_id):
                    self._send(RunState.ABORT, event.at, left.step_id, left.job, left, event)
                state = RunState.FAIL if event.status == "failed" else RunState.COMPLETE
                self._send(state, event.at, event.run_id, command, None, event)
                self.tracker.run_ended(event.run_id)
                self.run_at.pop(event.run_id, None)

    def _send(
        self,
        state: Any,
        at: datetime,
        run_id: str,
        job: str,
        step: OpenStep | None,
        event: Event,
        done: FinishedStep | None = None,
    ) -> None:
        from openlineage.client.event_v2 import Job, Run, RunEvent

        run_facets: dict[str, Any] = {}
        if step is not None:
            run_facets["parent"] = self._parent(step)
        error = getattr(event, "error", None)
        if state.value == "FAIL" and error:
            from openlineage.client.generated.error_message_run import ErrorMessageRunFacet

            run_facets["errorMessage"] = ErrorMessageRunFacet(
                message=redact(str(error)), programmingLanguage="PYTHON", producer=PRODUCER
            )
        inputs, outputs = self._datasets(done) if done is not None else ([], [])
        self.transport.emit(
            RunEvent(
                eventType=state,
                eventTime=at.isoformat(),
                run=Run(runId=ol_uuid(run_id), facets=run_facets),
                job=Job(
                    namespace=self.namespace,
                    name=job,
                    facets={"jobType": self._job_type(step.step if step else "run")},
                ),
                inputs=inputs,
                outputs=outputs,
                producer=PRODUCER,
            )
        )

    def _parent(self, step: OpenStep) -> Any:
        from openlineage.client.generated.parent_run import (
            Job,
            ParentRunFacet,
            Root,
            RootJob,
            RootRun,
            Run,
        )

        command = self.tracker.commands.get(step.run_id, "run")
        parent_step = self.tracker.open.get(step.parent_id) if step.parent_id else None
        if parent_step is not None:
            parent_job, parent_run = parent_step.job, parent_step.step_id
        else:
            parent_job, parent_run = command, step.run_id
        return ParentRunFacet(
            run=Run(runId=ol_uuid(parent_run)),
            job=Job(namespace=self.namespace, name=parent_job),
            root=Root(
                run=RootRun(runId=ol_uuid(step.run_id)),
                job=RootJob(namespace=self.namespace, name=command),
            ),
            producer=PRODUCER,
        )

    @staticmethod
    def _job_type(step: str) -> Any:
        from openlineage.client.generated.job_type_job import JobTypeJobFacet

        return JobTypeJobFacet(
            processingType="BATCH",
            integration=INTEGRATION,
            jobType=step.upper(),
            producer=PRODUCER,
        )

    def _datasets(self, done: FinishedStep) -> tuple[list[Any], list[Any]]:
        from openlineage.client.event_v2 import InputDataset, OutputDataset

        e = done.event
        inputs = []
        for d in e.inputs:
            input_facets: dict[str, Any] = {}
            if e.step == "load" and d.role == "stage":
                input_facets = _quality_facets(e, done.checks, self.project)
            inputs.append(
                InputDataset(
                    namespace=d.namespace,
                    name=d.name,
                    facets=_dataset_facets(d),
                    inputFacets=input_facets,
                )
            )
        outputs = []
        for d in e.outputs:
            facets = _dataset_facets(d)
            columns = done.columns.get((d.namespace, d.name))
            if columns:
                facets["columnLineage"] = _column_facet(columns)
            outputs.append(
                OutputDataset(
                    namespace=d.namespace,
                    name=d.name,
                    facets=facets,
                    outputFacets=_statistics(e, d, done),
                )
            )
        return inputs, outputs

    def flush(self) -> None:
        """Nothing is buffered: each event was handed to the transport as it came."""

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def _dataset_facets(d: Dataset) -> dict[str, Any]:
    if not d.fields:
        return {}
    from openlineage.client.generated.schema_dataset import (
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )

    fields = [
        SchemaDatasetFacetFields(
            name=f.name,
            type=f.type,
            description=redact(f.description) if f.description else None,
            ordinal_position=i,
        )
        for i, f in enumerate(d.fields, start=1)
    ]
    return {"schema": SchemaDatasetFacet(fields=fields, producer=PRODUCER)}


def _column_facet(columns: dict[str, Any]) -> Any:
    from openlineage.client.generated.column_lineage_dataset import (
        ColumnLineageDatasetFacet,
        Fields,
        InputField,
        Transformation,
    )

    return ColumnLineageDatasetFacet(
        fields={
            name: Fields(
                inputFields=[
                    InputField(
                        namespace=c.namespace,
                        name=c.name,
                        field=c.field,
                        transformations=[
                            Transformation(
                                type="DIRECT", subtype=c.subtype, description=c.description
                            )
                        ],
                    )
                    for c in inputs
                ]
            )
            for name, inputs in columns.items()
        },
        producer=PRODUCER,
    )


def _statistics(e: StepFinished, d: Dataset, done: FinishedStep) -> dict[str, Any]:
    from openlineage.client.generated.output_statistics_output_dataset import (
        OutputStatisticsOutputDatasetFacet,
    )

    rows: int | None = None
    size: int | None = None
    if d.role == "table":
        rows = e.rows_loaded
    elif d.role == "quarantine":
        rows = e.rows_quarantined
    elif d.role == "stage" and done.staged is not None:
        rows = done.staged.rows + done.staged.rows_malformed
        size = done.staged.bytes
    if rows is None or e.status == "failed":
        return {}
    return {
        "outputStatistics": OutputStatisticsOutputDatasetFacet(
            rowCount=rows, size=size, producer=PRODUCER
        )
    }


def _quality_facets(
    e: StepFinished, checks: ChecksEvaluated | None, project: Project
) -> dict[str, Any]:
    from openlineage.client.generated.data_quality_assertions_dataset import (
        Assertion,
        DataQualityAssertionsDatasetFacet,
    )
    from openlineage.client.generated.data_quality_metrics_input_dataset import (
        ColumnMetrics,
        DataQualityMetricsInputDatasetFacet,
    )

    if checks is None:
        return {}
    missing = {c.column: c.failed_rows for c in checks.checks if c.rule == "required" and c.column}
    facets: dict[str, Any] = {
        "dataQualityMetrics": DataQualityMetricsInputDatasetFacet(
            rowCount=checks.rows_in,
            bytes=e.bytes_in,
            fileCount=1,
            columnMetrics={col: ColumnMetrics(nullCount=n) for col, n in missing.items()},
            producer=PRODUCER,
        ),
        "dataQualityAssertions": DataQualityAssertionsDatasetFacet(
            assertions=[_assertion(c, checks, Assertion) for c in checks.checks],
            producer=PRODUCER,
        ),
    }
    return facets


def _assertion(c: CheckResult, checks: ChecksEvaluated, cls: Any) -> Any:
    return cls(
        assertion=c.rule,
        success=c.passed,
        column=c.column,
        severity=_SEVERITY.get(checks.on_invalid, "warn"),
        name=c.name,
        expected=redact(c.expected) if c.expected is not None else None,
        actual=f"{c.failed_rows} failing row(s)",
    )
