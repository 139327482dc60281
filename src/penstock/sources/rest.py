"""The REST source kind (`kind: rest`): read an endpoint's pages as one window, stage its
records as a batch.

One extraction is one window (sources/window.py): every page of the endpoint, or, with
`incremental: {param, cursor}`, the pages answered for `param=<watermark>`. The watermark is
the greatest `cursor` value among the records read so far (its text as the API wrote it); it
lives in the manifest of the window's batch, so it advances only with a batch that is staged
and loads before any later window, exactly as a database window's (a run killed before the
manifest is written staged nothing: the same window is read again). A window's batch id is
the object plus a hash of the window, the records and the latest batch of the read: the same
pages read again after a crash are the same batch, and a window that holds exactly what the
latest batch holds stages nothing.

Records are staged as the JSON file sources stage theirs (sources/jsonl.py): a column per
top-level key (keys matched ignoring case), each value kept as its JSON text, numbers with
their digits exactly as the API sent them; a nested object or list is its JSON text (declare
the column `json`, or reach inside with `from: address.city`, a dotted path). The contract's
types apply when the batch is validated, as for any source: a value that does not fit its
column is quarantined with the reason, never rewritten. A record that is not a JSON object is a
malformed record, kept in the batch's rejects.

Pages are written to a local file as they arrive (memory holds one page); a page that fails
(its tries ran out, its body is not JSON, or it has no `records:`) fails the window and nothing
of it is staged.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from penstock.catalog import ObjectSpec, Project
from penstock.catalog.columns import source_key
from penstock.catalog.rest import RestSource
from penstock.errors import MissingExtra, SourceError
from penstock.faults import fault_point
from penstock.lake import Lake, Manifest, SeenFile, StagedBatch
from penstock.lake.manifest import DATA_NAME, PARQUET, REJECTS_NAME
from penstock.lake.stage import FileKey
from penstock.sources.base import Discovery
from penstock.sources.database import Extracted, Served
from penstock.sources.lines import LINES_SCHEMA
from penstock.sources.window import (
    Window,
    last_batch,
    read_identity,
    repeats,
    window_batch_id,
    window_of,
)
from penstock.sql import ident, literal

FORMAT = "rest"  # a manifest's format for records read from an API
_RECORDS_NAME = "_records.parquet"
_INSTALL = "pip install 'penstock[rest]'"


def dump_json(value: Any) -> str:
    """Compact JSON text of a value parsed with `parse_float=Decimal`: numbers keep their
    digits."""
    try:  # the C encoder, when no Decimal is inside
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except TypeError:
        pass
    if isinstance(value, dict):
        items = (f"{json.dumps(k, ensure_ascii=False)}:{dump_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump_json(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not a JSON value: {value!r}")


def value_text(value: Any) -> str | None:
    """A JSON value as staged: a string as itself, a number with its digits, true / false,
    an object or a list as its JSON text; null as None."""
    kind = type(value)
    if value is None or kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int or kind is Decimal:
        return str(value)
    if kind is bool:
        return "true" if value else "false"
    return dump_json(value)


def cursor_order(value: Any, family: str) -> Any:
    """A cursor value as something that orders (None: not a value of its family)."""
    try:
        if family == "integer":
            if isinstance(value, bool):
                return None
            if isinstance(value, int):
                return value
            if isinstance(value, str | Decimal):
                number = Decimal(str(value).strip())
                return int(number) if number == int(number) else None
            return None
        if not isinstance(value, str):
            return None
        if family == "date":
            return date.fromisoformat(value.strip()[:10])
        moment = datetime.fromisoformat(value.strip())
    except (ValueError, ArithmeticError):
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


class WindowRecords:
    """The records of a window's pages, numbered and as JSON text, written to a Parquet file
    as they arrive; their digest, and the greatest cursor value (the window's `high`)."""

    what = "JSON records"

    def __init__(self, obj: ObjectSpec, path: Path, cursor: tuple[str, str] | None) -> None:
        self.obj = obj
        self.path = path
        self.cursor = cursor  # (source name, family)
        self.digest = hashlib.sha256()
        self.rows = 0
        self.high: tuple[Any, str] | None = None
        self.error: SourceError | None = None  # pages fail before staging, not in it
        self.cut_record: int | None = None
        self.cut_note = ""
        self.warnings: list[str] = []
        # contract columns reading a nested value (`from: address.city`)
        self.paths = [
            n for n in (spec.source_name(name) for name, spec in obj.columns.items()) if "." in n
        ]

    def write(self, pages: Iterator[list[Any]]) -> None:
        with pq.ParquetWriter(self.path, LINES_SCHEMA, compression="none") as writer:
            for records in pages:
                lines = [self._line(r) for r in records]
                numbers = list(range(self.rows + 1, self.rows + len(lines) + 1))
                self.rows += len(lines)
                for line in lines:
                    self.digest.update(line.encode())
                    self.digest.update(b"\n")
                writer.write_batch(
                    pa.RecordBatch.from_arrays(
                        [
                            pa.array(numbers, pa.int64()),
                            pa.array(lines, pa.large_string()),
                            pa.nulls(len(lines), pa.large_string()),
                        ],
                        schema=LINES_SCHEMA,
                    )
                )

    def _line(self, record: Any) -> str:
        """A record as the JSON object of its values' texts (JSON text of anything else):
        staged from strings, numbers keep every digit the API sent."""
        if not isinstance(record, dict):
            return dump_json(record)
        if self.paths:
            record = self._reach(record)
        if self.cursor is not None:
            self._advance(record)
        texts = {k: value_text(v) for k, v in record.items()}
        return json.dumps(texts, ensure_ascii=False, separators=(",", ":"))

    def _reach(self, record: dict[str, Any]) -> dict[str, Any]:
        from penstock.sources.json_path import at_path

        added = dict(record)
        for path in self.paths:
            if path not in record:
                found, value = at_path(record, path)
                if found:
                    added[path] = value
        return added

    def _advance(self, record: dict[str, Any]) -> None:
        assert self.cursor is not None
        name, family = self.cursor
        wanted = source_key(name)
        for key, value in record.items():
            if source_key(key) == wanted:
                order = cursor_order(value, family)
                if order is not None and (self.high is None or order > self.high[0]):
                    text = value if isinstance(value, str) else dump_json(value)
                    self.high = (order, text)
                return

    def reader(self) -> pa.RecordBatchReader:
        batches = pq.ParquetFile(self.path).iter_batches(batch_size=65_536)
        return pa.RecordBatchReader.from_batches(LINES_SCHEMA, batches)


class RestSourceReader:
    """Reads the endpoints of one REST source."""

    cannot_restage: ClassVar[str | None] = (
        "a REST window is staged from the pages as the API answered them, which cannot be "
        "asked again"
    )

    def __init__(self, project: Project, name: str, spec: RestSource) -> None:
        self.name = name
        self.spec = spec
        self.display = spec.display()
        self.reached_s: float | None = None  # how long the first request took to answer

    # -- the Source protocol's file-facing part: an API offers no files ----------------------
    def discover(self, obj: ObjectSpec, known: Mapping[FileKey, SeenFile]) -> Discovery:
        return Discovery()

    def locate(self, obj: ObjectSpec, batch: StagedBatch) -> None:
        return None

    def read_settings(self, obj: ObjectSpec) -> str:
        what = json.dumps([obj.endpoint, obj.params, obj.records], sort_keys=True)
        cursor = obj.incremental.cursor if obj.incremental is not None else None
        return read_identity(self.name, what, cursor)

    def describe(self, obj: ObjectSpec) -> str:
        """What the object reads, for logs and manifests (no credentials)."""
        return f"{self.name}:{obj.endpoint}"

    # -- reading -----------------------------------------------------------------------------
    def client(self) -> Any:
        try:
            from penstock.sources.rest_http import RestClient
        except ImportError as exc:
            raise MissingExtra(
                f"a rest source reads through httpx and tenacity, not installed: {_INSTALL}"
            ) from exc
        return RestClient(self.name, self.spec)

    def extract(self, obj: ObjectSpec, lake: Lake, staged: Sequence[StagedBatch]) -> Extracted:
        """Read the object's next window into a staging directory and commit it as a batch
        (or find it staged already). The watermark it advances is its manifest's."""
        from penstock.sources.rest_pages import PageReader

        read = self.read_settings(obj)
        latest = last_batch(staged, read)
        incremental = obj.incremental
        low = window_of(latest).high if latest is not None and incremental else None
        extra = {incremental.param: low} if incremental is not None and low is not None else {}
        staging = lake.staging_dir(obj.name)
        try:
            extracted_at = datetime.now(UTC)
            records = WindowRecords(obj, staging / _RECORDS_NAME, self._cursor(obj))
            with self.client() as client:
                pages = PageReader(client, obj, self.spec.base_url, extra).pages()
                try:
                    records.write(page.records for page in pages)
                finally:
                    self.reached_s = client.first_answer_s
            rows, malformed, warnings = self._stage(obj, records, staging)
            high = records.high[1] if records.high is not None else low
            cursor = incremental.cursor if incremental is not None else None
            window = Window(read, cursor, low, high)
            digest = records.digest.hexdigest()
            fault_point("after_extract")
            if latest is not None and repeats(latest, window, digest):
                shutil.rmtree(staging, ignore_errors=True)
                return Extracted(latest, True, window, self._served())
            batch_id = window_batch_id(obj.name, window, digest, latest)
            manifest = self._manifest(
                obj, batch_id, window, digest, staging, (rows, malformed), warnings, extracted_at
            )
            (batch,) = lake.commit_batches([(staging, manifest)])
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if batch is None:  # committed meanwhile under the same id
            found = lake.staged_batch(obj.name, batch_id)
            assert found is not None
            return Extracted(found, True, window, self._served())
        return Extracted(batch, False, window, self._served())

    def _served(self) -> Served:
        """An API has one server: its base_url."""
        return Served(0, self.spec.base_url, self.display)

    def _cursor(self, obj: ObjectSpec) -> tuple[str, str] | None:
        if obj.incremental is None:
            return None
        name = obj.incremental.cursor
        spec = obj.columns[name]
        kind = spec.column_type
        family = "integer" if kind.name in ("integer", "bigint") else kind.family
        return spec.source_name(name), family

    def _stage(
        self, obj: ObjectSpec, records: WindowRecords, staging: Path
    ) -> tuple[int, int, list[str]]:
        from penstock.sources.jsonl import stage_json_records

        data_path = staging / DATA_NAME
        conn = duckdb.connect(config={"threads": 1})
        try:
            if records.rows == 0:
                cols = ", ".join(f"NULL::VARCHAR AS {ident(c)}" for c in obj.columns)
                conn.execute(
                    f"COPY (SELECT {cols} WHERE false) TO {literal(str(data_path))} ({PARQUET})"
                )
                return 0, 0, []
            return stage_json_records(
                conn, obj, records, self.describe(obj), data_path, staging / REJECTS_NAME
            )
        finally:
            conn.close()
            records.path.unlink(missing_ok=True)

    def _manifest(
        self,
        obj: ObjectSpec,
        batch_id: str,
        window: Window,
        digest: str,
        staging: Path,
        counts: tuple[int, int],
        warnings: list[str],
        extracted_at: datetime,
    ) -> Manifest:
        data_path = staging / DATA_NAME
        conn = duckdb.connect()
        try:
            described = conn.execute(
                f"DESCRIBE SELECT * FROM read_parquet({literal(str(data_path))})"
            ).fetchall()
        finally:
            conn.close()
        schema = {str(row[0]): str(row[1]) for row in described}
        rows, malformed = counts
        return Manifest(
            batch_id=batch_id,
            object=obj.name,
            source=self.name,
            source_file=f"{self.describe(obj)} [{window.describe()}]",
            content_hash=digest,
            size_bytes=data_path.stat().st_size,
            mtime_ns=0,
            format=FORMAT,
            rows=rows,
            rows_malformed=malformed,
            columns=tuple(schema),
            schema=schema,
            extracted_at=extracted_at,
            warnings=tuple(warnings),
            window=window.to_dict(),
        )
