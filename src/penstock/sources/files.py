"""The `files` source: csv, jsonl and parquet files matched by a glob under a directory.

Each file is one batch whose id derives from its content hash. Values are staged raw: CSV and
JSONL as text exactly as written, Parquet as its own types. Malformed records (a CSV line with
the wrong number of fields, a JSONL line that is not a JSON object) are kept in the batch's
rejects file with their record number and raw text, never dropped.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from penstock.catalog import CsvOptions, FilesSource, ObjectSpec, Project
from penstock.errors import SourceError, first_line
from penstock.lake import Lake, Manifest, StagedBatch, atomic_target
from penstock.lake.manifest import DATA_NAME, PARQUET, REJECTS_NAME
from penstock.sources.base import SourceItem
from penstock.sources.jsonl import stage_jsonl
from penstock.sql import ident, literal

_HASH_CHUNK = 4 * 1024 * 1024


def content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class FilesSourceReader:
    """Reads the files of one `files` source."""

    def __init__(self, project: Project, name: str, spec: FilesSource) -> None:
        self.name = name
        self.spec = spec
        self.root = project.path(spec.path)
        self.project_root = project.root

    def discover(self, obj: ObjectSpec, known: dict[tuple[str, int, int], str]) -> list[SourceItem]:
        if not self.root.is_dir():
            raise SourceError(
                f"source '{self.name}': directory {self.spec.path} does not exist "
                f"(resolved to {self.root})",
                source=self.name,
                file=str(self.root),
            )
        pattern = obj.files or "*"
        items = []
        for path in sorted(p for p in self.root.glob(pattern) if p.is_file()):
            if path.name.startswith("."):
                continue
            stat = path.stat()
            display = self._display(path)
            digest = known.get((display, stat.st_size, stat.st_mtime_ns)) or content_hash(path)
            items.append(
                SourceItem(
                    object=obj.name,
                    source=self.name,
                    path=path,
                    display_name=display,
                    size_bytes=stat.st_size,
                    mtime_ns=stat.st_mtime_ns,
                    content_hash=digest,
                )
            )
        return items

    def _display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.project_root))
        except ValueError:
            return str(path)

    def stage(
        self, conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, item: SourceItem, lake: Lake
    ) -> StagedBatch:
        directory = lake.prepare_batch_dir(obj.name, item.batch_id)
        data_path = directory / DATA_NAME
        rejects_path = directory / REJECTS_NAME
        fmt = obj.format or "csv"
        warnings: list[str] = []
        try:
            if item.size_bytes == 0:
                rows, malformed = _stage_empty(conn, obj, data_path)
                warnings.append(f"{item.display_name}: empty file")
            elif fmt == "csv":
                rows, malformed = _stage_csv(conn, obj, item, data_path, rejects_path)
            elif fmt == "jsonl":
                rows, malformed = stage_jsonl(conn, item, data_path, rejects_path)
            else:
                rows, malformed = _stage_parquet(conn, item, data_path)
            schema = _parquet_schema(conn, data_path)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        manifest = Manifest(
            batch_id=item.batch_id,
            object=obj.name,
            source=self.name,
            source_file=item.display_name,
            content_hash=item.content_hash,
            size_bytes=item.size_bytes,
            mtime_ns=item.mtime_ns,
            format=fmt,
            rows=rows,
            rows_malformed=malformed,
            columns=tuple(schema),
            schema=schema,
            extracted_at=datetime.now(UTC),
            warnings=tuple(warnings),
        )
        return lake.commit_batch(directory, manifest)


def _stage_empty(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, data_path: Path
) -> tuple[int, int]:
    cols = ", ".join(f"NULL::VARCHAR AS {ident(c)}" for c in obj.columns)
    with atomic_target(data_path) as tmp:
        conn.execute(f"COPY (SELECT {cols} WHERE false) TO {literal(str(tmp))} ({PARQUET})")
    return 0, 0


def _stage_csv(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    item: SourceItem,
    data_path: Path,
    rejects_path: Path,
) -> tuple[int, int]:
    csv = obj.csv or CsvOptions()
    suffix = uuid.uuid4().hex[:12]
    rejects_table, rejects_scan = f"_rejects_{suffix}", f"_rejects_scan_{suffix}"
    options = [
        "all_varchar = true",
        f"header = {literal(csv.header)}",
        f"delim = {literal(csv.delimiter)}",
        f"quote = {literal(csv.quote)}",
        f"escape = {literal(csv.escape)}",
        f"encoding = {literal(csv.encoding)}",
        "null_padding = false",
        "store_rejects = true",
        f"rejects_table = {literal(rejects_table)}",
        f"rejects_scan = {literal(rejects_scan)}",
    ]
    if not csv.header:
        options.append("names = [" + ", ".join(literal(c) for c in obj.columns) + "]")
    read = f"read_csv({literal(str(item.path))}, {', '.join(options)})"
    try:
        with atomic_target(data_path) as tmp:
            conn.execute(f"COPY (SELECT * FROM {read}) TO {literal(str(tmp))} ({PARQUET})")
            bad_encoding = conn.execute(
                f"SELECT min(line) FROM {rejects_table} WHERE error_type = 'INVALID ENCODING'"
            ).fetchone()
            if bad_encoding and bad_encoding[0] is not None:
                line = int(bad_encoding[0])
                raise SourceError(
                    f"{item.display_name}:{line}: not valid {csv.encoding} text; set "
                    f"`csv: {{encoding: ...}}` on object '{obj.name}' "
                    f"(utf-8, utf-16 or latin-1)",
                    file=item.display_name,
                    line=line,
                    object=obj.name,
                )
            malformed = _write_rejects(conn, rejects_table, rejects_path, 1 if csv.header else 0)
    except duckdb.Error as exc:
        raise SourceError(
            f"{item.display_name}: cannot read as CSV: {first_line(exc)}",
            file=item.display_name,
            object=obj.name,
        ) from exc
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {rejects_table}")
        conn.execute(f"DROP TABLE IF EXISTS {rejects_scan}")
    rows = _parquet_rows(conn, data_path)
    return rows, malformed


def _write_rejects(
    conn: duckdb.DuckDBPyConnection, rejects_table: str, path: Path, header_lines: int
) -> int:
    """Malformed records (one per line DuckDB rejected): record number, raw text, complaint."""
    row = conn.execute(f"SELECT count(DISTINCT line) FROM {rejects_table}").fetchone()
    count = int(row[0]) if row else 0
    if count:
        with atomic_target(path) as tmp:
            conn.execute(
                f"""
                COPY (
                    SELECT line - {header_lines} AS _row_number,
                           any_value(csv_line) AS _raw_line,
                           lower(arg_min(error_type, column_idx)) || ': '
                               || arg_min(error_message, column_idx) AS _error
                    FROM {rejects_table} GROUP BY line ORDER BY line
                ) TO {literal(str(tmp))} ({PARQUET})
                """
            )
    return count


def _stage_parquet(
    conn: duckdb.DuckDBPyConnection, item: SourceItem, data_path: Path
) -> tuple[int, int]:
    try:
        rows = int(
            conn.execute(
                f"SELECT count(*) FROM read_parquet({literal(str(item.path))})"
            ).fetchone()[0]  # type: ignore[index]
        )
    except duckdb.Error as exc:
        raise SourceError(
            f"{item.display_name}: cannot read as Parquet: {first_line(exc)}",
            file=item.display_name,
        ) from exc
    with atomic_target(data_path) as tmp:
        shutil.copyfile(item.path, tmp)
    return rows, 0


def _parquet_rows(conn: duckdb.DuckDBPyConnection, path: Path) -> int:
    row = conn.execute(
        f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({literal(str(path))})"
    ).fetchone()
    return int(row[0]) if row else 0


def _parquet_schema(conn: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    described = conn.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(str(path))})")
    return {str(name): str(dtype) for name, dtype, *_ in described.fetchall()}
