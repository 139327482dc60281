"""The `files` source: csv, jsonl, json and parquet files matched by a glob under a directory.

Each file is one batch whose id derives from its content hash (for `load: replace`, from the
content hash plus the delivered file's name and mtime: each delivery is a snapshot). A file is
copied into the lake while its bytes are hashed, and the copy is parsed, so a batch holds
exactly the bytes its id names. Values are staged raw: a CSV file read cleanly as its own bytes
(`sources.csv`, read again with the settings its manifest records), JSON Lines and JSON arrays
(`sources.jsonl`) as text exactly as written in Parquet, Parquet as its own types. Malformed
records (a CSV record that cannot be split or has the wrong number of fields, a JSON Lines line
or array element that is not a JSON object) and records holding bytes that are not valid in the
file's encoding are kept in the batch's rejects file with their record number, raw text and
reason (`malformed` or `encoding`), never dropped. A file that cannot be read at all (a reader's
`SourceError` with `unreadable`) is not staged: staging returns its rejection
(lake/rejected.py) for the run to record, and a file whose content is already rejected under the
same read settings is not parsed again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import duckdb
import pyarrow.parquet as pq

from penstock.catalog import CsvOptions, FilesSource, ObjectSpec, Project
from penstock.catalog.columns import source_key
from penstock.errors import SourceError, first_line
from penstock.faults import fault_point
from penstock.lake import Lake, Manifest, SeenFile, StagedBatch, atomic_target
from penstock.lake.csv_read import CsvRead
from penstock.lake.manifest import CSV_DATA_NAME, DATA_NAME, PARQUET, REJECTS_NAME
from penstock.lake.rejected import Rejection
from penstock.lake.stage import FileKey
from penstock.sources.base import Discovery, SourceItem, StageResult, batch_id_for, holds_batch
from penstock.sources.csv import parquet_schema, stage_csv
from penstock.sources.json_array import ArrayReader
from penstock.sources.jsonl import stage_json_records
from penstock.sources.lines import LineReader
from penstock.sources.unreadable import duckdb_refused
from penstock.sql import ident, literal


def copy_hashing(source: Path, target: Path) -> tuple[str, int]:
    """Copy `source` to `target` and hash `source`: (sha256, bytes copied). The copy runs in
    the kernel (sendfile) on another thread while this one hashes; the caller checks that the
    file did not change meanwhile (its size, mtime, ctime and inode), so the copy holds
    exactly the bytes hashed."""
    with ThreadPoolExecutor(1) as pool:
        copying = pool.submit(shutil.copyfile, source, target)
        with source.open("rb") as reader:
            digest = hashlib.file_digest(reader, "sha256")
        copying.result()
    return digest.hexdigest(), target.stat().st_size


class FilesSourceReader:
    """Reads the files of one `files` source."""

    cannot_restage: ClassVar[str | None] = None  # a landing file can always be parsed again

    def __init__(self, project: Project, name: str, spec: FilesSource) -> None:
        self.name = name
        self.spec = spec
        self.root = project.path(spec.path)
        self.project_root = project.root

    def discover(self, obj: ObjectSpec, known: Mapping[FileKey, SeenFile]) -> Discovery:
        if not self.root.is_dir():
            raise SourceError(
                f"source '{self.name}': directory {self.spec.path} does not exist "
                f"(resolved to {self.root})",
                source=self.name,
                file=str(self.root),
            )
        pattern = obj.files or "*"
        settle_ns = round(self.spec.settle_seconds * 1e9)
        now_ns = time.time_ns()
        found = Discovery()
        for path in sorted(p for p in self.root.glob(pattern) if p.is_file()):
            if path.name.startswith("."):
                continue
            stat = path.stat()
            item = SourceItem(
                object=obj.name,
                source=self.name,
                path=path,
                display_name=self._display(path),
                size_bytes=stat.st_size,
                mtime_ns=stat.st_mtime_ns,
                ctime_ns=stat.st_ctime_ns,
                inode=stat.st_ino,
            )
            legacy = (item.display_name, item.size_bytes, item.mtime_ns, None, None)
            seen = known.get(item.key) or known.get(legacy)
            if seen is not None:
                found.unchanged.append(seen)
            elif settle_ns and now_ns - stat.st_mtime_ns < settle_ns:
                found.unsettled.append(item.display_name)
            else:
                found.new.append(item)
        return found

    def _display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.project_root))
        except ValueError:
            return str(path)

    def locate(self, obj: ObjectSpec, batch: StagedBatch) -> SourceItem | None:
        """The landing file `batch` was staged from (the path its manifest names, even if the
        glob no longer matches it), as it is now; None when it is gone."""
        name = batch.manifest.source_file
        path = Path(name) if Path(name).is_absolute() else self.project_root / name
        try:
            stat = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        return SourceItem(
            object=obj.name,
            source=self.name,
            path=path,
            display_name=name,
            size_bytes=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            ctime_ns=stat.st_ctime_ns,
            inode=stat.st_ino,
        )

    def stage(
        self,
        conn: duckdb.DuckDBPyConnection,
        obj: ObjectSpec,
        item: SourceItem,
        lake: Lake,
        *,
        restaging: StagedBatch | None = None,
    ) -> StageResult:
        staging = lake.staging_dir(obj.name)
        try:
            result = self._stage_in(conn, obj, item, lake, staging, restaging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if result.status not in ("staged", "restaged"):
            shutil.rmtree(staging, ignore_errors=True)
        return result

    def _stage_in(
        self,
        conn: duckdb.DuckDBPyConnection,
        obj: ObjectSpec,
        item: SourceItem,
        lake: Lake,
        staging: Path,
        restaging: StagedBatch | None = None,
    ) -> StageResult:
        # A private copy, hashed while copied: the bytes parsed are exactly the bytes hashed.
        copy = staging / ("landed" + "".join(item.path.suffixes[-2:]))
        try:
            digest, copied = copy_hashing(item.path, copy)
        except FileNotFoundError:
            return StageResult("changed", item)
        except OSError as exc:
            raise SourceError(
                f"{item.display_name}: cannot read: {exc.strerror or exc}",
                file=item.display_name,
                object=obj.name,
            ) from exc
        fault_point("after_copy")
        if copied != item.size_bytes or _state_changed(item):
            return StageResult("changed", item)
        delivery = (item.display_name, item.mtime_ns) if obj.load == "replace" else None
        batch_id = batch_id_for(obj.name, digest, delivery)
        if restaging is not None:  # parse the batch's bytes again, under its own id
            if not holds_batch(restaging, digest, item):
                return StageResult("changed", item)
            batch_id = restaging.batch_id
        elif (existing := lake.staged_batch(obj.name, batch_id)) is not None:
            return StageResult("duplicate", item, existing, digest)
        elif (rejected := lake.rejection(obj.name, batch_id)) is not None and (
            rejected.read_settings == self.read_settings(obj)
        ):
            return StageResult("still_rejected", item, content_hash=digest, rejection=rejected)
        try:
            return self._parse(conn, obj, item, lake, staging, copy, digest, batch_id, restaging)
        except SourceError as exc:
            if restaging is not None or not exc.unreadable:
                raise
            rejection = self._rejection(obj, item, digest, batch_id, exc)
            return StageResult(
                "rejected", item, content_hash=digest, rejection=rejection, error=exc
            )

    def _rejection(
        self, obj: ObjectSpec, item: SourceItem, digest: str, batch_id: str, exc: SourceError
    ) -> Rejection:
        line = exc.fields.get("line")
        return Rejection(
            batch_id=batch_id,
            object=obj.name,
            source=self.name,
            source_file=item.display_name,
            content_hash=digest,
            size_bytes=item.size_bytes,
            mtime_ns=item.mtime_ns,
            ctime_ns=item.ctime_ns,
            inode=item.inode,
            format=obj.format or "csv",
            reason=exc.message,
            line=line if isinstance(line, int) else None,
            read_settings=self.read_settings(obj),
            rejected_at=datetime.now(UTC),
        )

    def read_settings(self, obj: ObjectSpec) -> str:
        """A hash of what the parse of a file depends on besides its bytes: the format and,
        for CSV, the `csv:` options (and, without a header, the contract's column names)."""
        fmt = obj.format or "csv"
        settings: dict[str, object] = {"format": fmt}
        if fmt == "csv":
            csv = obj.csv or CsvOptions()
            settings["csv"] = csv.model_dump(mode="json")
            if not csv.header:
                settings["columns"] = list(obj.columns)
        text = json.dumps(settings, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def _parse(
        self,
        conn: duckdb.DuckDBPyConnection,
        obj: ObjectSpec,
        item: SourceItem,
        lake: Lake,
        staging: Path,
        copy: Path,
        digest: str,
        batch_id: str,
        restaging: StagedBatch | None,
    ) -> StageResult:
        data_path = staging / DATA_NAME
        rejects_path = staging / REJECTS_NAME
        fmt = obj.format or "csv"
        warnings: list[str] = []
        read: CsvRead | None = None
        if item.size_bytes == 0:
            rows, malformed = _stage_empty(conn, obj, data_path)
            warnings.append(f"{item.display_name}: empty file")
        elif fmt == "csv":
            staged = stage_csv(conn, obj, copy, item.display_name, staging)
            rows, malformed, read = staged.rows, staged.malformed, staged.read
            warnings += staged.warnings
        elif fmt in ("jsonl", "json"):
            records = (
                LineReader(copy, item.display_name, "JSON Lines", obj)
                if fmt == "jsonl"
                else ArrayReader(copy, item.display_name, obj)
            )
            rows, malformed, json_warnings = stage_json_records(
                conn, obj, records, item.display_name, data_path, rejects_path
            )
            warnings += json_warnings
        else:
            rows, malformed = _stage_parquet(conn, copy, item.display_name, data_path)
        copy.unlink(missing_ok=True)
        if read is not None:  # the file's bytes, every column text
            data_file, schema = CSV_DATA_NAME, dict.fromkeys(read.names, "VARCHAR")
        else:
            data_file, schema = DATA_NAME, parquet_schema(conn, data_path)
        manifest = Manifest(
            batch_id=batch_id,
            object=obj.name,
            source=self.name,
            source_file=item.display_name,
            content_hash=digest,
            size_bytes=item.size_bytes,
            mtime_ns=item.mtime_ns,
            ctime_ns=item.ctime_ns,
            inode=item.inode,
            format=fmt,
            rows=rows,
            rows_malformed=malformed,
            columns=tuple(schema),
            schema=schema,
            extracted_at=datetime.now(UTC),
            warnings=tuple(warnings),
            data_file=data_file,
            csv_read=read,
        )
        if restaging is not None:  # the caller puts it in place (Lake.replace_batch)
            parse = StagedBatch(restaging.manifest.reparsed(manifest), staging)
            return StageResult("restaged", item, parse, digest)
        batch = lake.commit_batch(staging, manifest)
        if batch is None:  # staged meanwhile under the same id
            existing = lake.staged_batch(obj.name, batch_id)
            return StageResult("duplicate", item, existing, digest)
        return StageResult("staged", item, batch, digest)


def _state_changed(item: SourceItem) -> bool:
    """True when the landing file is no longer the one discovery saw (it grew, was rewritten,
    replaced or removed while it was being copied)."""
    try:
        stat = item.path.stat()
    except FileNotFoundError:
        return True
    now = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
    return now != (item.size_bytes, item.mtime_ns, item.ctime_ns, item.inode)


def _stage_empty(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, data_path: Path
) -> tuple[int, int]:
    cols = ", ".join(f"NULL::VARCHAR AS {ident(c)}" for c in obj.columns)
    with atomic_target(data_path) as tmp:
        conn.execute(f"COPY (SELECT {cols} WHERE false) TO {literal(str(tmp))} ({PARQUET})")
    return 0, 0


def _stage_parquet(
    conn: duckdb.DuckDBPyConnection, path: Path, display_name: str, data_path: Path
) -> tuple[int, int]:
    try:
        rows = int(
            conn.execute(f"SELECT count(*) FROM read_parquet({literal(str(path))})").fetchone()[0]  # type: ignore[index]
        )
    except duckdb.Error as exc:
        raise SourceError(
            f"{display_name}: cannot read as Parquet: {first_line(exc)}",
            file=display_name,
            unreadable=duckdb_refused(exc, path),
        ) from exc
    _refuse_ambiguous_columns(path, display_name)
    with atomic_target(data_path) as tmp:
        path.rename(tmp)
    return rows, 0


def _refuse_ambiguous_columns(path: Path, display_name: str) -> None:
    """Two top-level columns equal ignoring case and surrounding spaces: the header rule of
    CSV (DuckDB would read the second of `Amount, amount` as `amount_1`)."""
    seen: dict[str, str] = {}
    for name in pq.read_schema(path).names:
        first = seen.setdefault(source_key(name), name)
        if first != name:
            raise SourceError(
                f"{display_name}: columns '{first}' and '{name}' differ only in case or "
                f"surrounding spaces; every row would be ambiguous (rename one in the file)",
                file=display_name,
                unreadable=True,
            )
