"""Staging landing files, several at a time: copy and hash each, then parse them together.

1. `prepare`: each file is copied into its own staging directory while its bytes are hashed
   (the copy runs in the kernel), so the batch holds exactly the bytes its id names; a file
   that changed while read, whose content is staged already or rejected under the same read
   settings, stops here.
2. `parse`: CSV files read with the same settings are read by DuckDB in one pass
   (sources/csv.py); JSON Lines, JSON arrays and Parquet one by one. Each file's outcome is a
   manifest, or the error it alone met.
The caller commits the manifests (`Lake.commit_batches`: one sync for them all).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from penstock.catalog import ObjectSpec
from penstock.catalog.columns import source_key
from penstock.errors import SourceError, first_line
from penstock.faults import fault_point
from penstock.lake import Manifest, atomic_target
from penstock.lake.csv_read import CsvRead
from penstock.lake.manifest import CSV_DATA_NAME, DATA_NAME, PARQUET, REJECTS_NAME
from penstock.sources.base import SourceItem
from penstock.sources.csv import CsvFile, CsvStaged, parquet_schema, stage_csv_files
from penstock.sources.unreadable import duckdb_refused
from penstock.sql import ident, literal

# A file up to this size is read once into memory, hashed and written: cheaper than a thread
# for a kernel copy (thousands of small files stage in a chunk).
_SMALL = 4 * 1024 * 1024


def copy_hashing(source: Path, target: Path) -> tuple[str, int]:
    """Copy `source` to `target` and hash `source`: (sha256, bytes copied). A large file is
    copied in the kernel (sendfile) on another thread while this one hashes; the caller
    checks that the file did not change meanwhile (its size, mtime, ctime and inode), so the
    copy holds exactly the bytes hashed."""
    with source.open("rb") as reader:
        head = reader.read(_SMALL + 1)
        if len(head) <= _SMALL:
            target.write_bytes(head)
            return hashlib.sha256(head).hexdigest(), len(head)
    with ThreadPoolExecutor(1) as pool:
        copying = pool.submit(shutil.copyfile, source, target)
        with source.open("rb") as reader:
            digest = hashlib.file_digest(reader, "sha256")
        copying.result()
    return digest.hexdigest(), target.stat().st_size


@dataclass(frozen=True)
class Copied:
    """A landing file copied into its staging directory and hashed."""

    item: SourceItem
    staging: Path
    copy: Path
    digest: str

    def unchanged(self) -> bool:
        """The landing file is still the one discovery saw (it did not grow, was not
        rewritten, replaced or removed while it was being copied)."""
        item = self.item
        try:
            stat = item.path.stat()
        except FileNotFoundError:
            return False
        now = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
        return now == (item.size_bytes, item.mtime_ns, item.ctime_ns, item.inode)


def copy_item(obj: ObjectSpec, item: SourceItem, staging: Path) -> Copied | None:
    """Copy `item` into `staging` while hashing it; None if it changed or vanished meanwhile."""
    copy = staging / ("landed" + "".join(item.path.suffixes[-2:]))
    try:
        digest, copied = copy_hashing(item.path, copy)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SourceError(
            f"{item.display_name}: cannot read: {exc.strerror or exc}",
            file=item.display_name,
            object=obj.name,
        ) from exc
    fault_point("after_copy")
    done = Copied(item, staging, copy, digest)
    if copied != item.size_bytes or not done.unchanged():
        return None
    return done


def parse(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    copies: Sequence[tuple[Copied, str]],
) -> list[Manifest | Exception]:
    """Parse each copy (with the batch id it is staged under) into its staging directory:
    its manifest, or the error it met (SourceError, `unreadable`, when it cannot be read at
    all)."""
    fmt = obj.format or "csv"
    outcomes: list[Manifest | Exception | None] = [None] * len(copies)
    csv_files: list[int] = []
    for index, (copied, batch_id) in enumerate(copies):
        if copied.item.size_bytes and fmt == "csv":
            csv_files.append(index)
            continue
        try:
            outcomes[index] = _parse_one(conn, obj, source, copied, batch_id, fmt)
        except Exception as exc:
            outcomes[index] = exc
    staged = stage_csv_files(
        conn,
        obj,
        [
            CsvFile(copies[i][0].copy, copies[i][0].item.display_name, copies[i][0].staging)
            for i in csv_files
        ],
    )
    for index, outcome in zip(csv_files, staged, strict=True):
        copied, batch_id = copies[index]
        if isinstance(outcome, Exception):
            outcomes[index] = outcome
            continue
        try:
            outcomes[index] = _manifest(conn, obj, source, copied, batch_id, fmt, outcome)
        except Exception as exc:
            outcomes[index] = exc
    for copied, _ in copies:
        copied.copy.unlink(missing_ok=True)
    return [o if o is not None else RuntimeError("not parsed") for o in outcomes]


def _parse_one(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    copied: Copied,
    batch_id: str,
    fmt: str,
) -> Manifest:
    from penstock.sources.json_array import ArrayReader
    from penstock.sources.jsonl import stage_json_records
    from penstock.sources.lines import LineReader

    data_path, rejects_path = copied.staging / DATA_NAME, copied.staging / REJECTS_NAME
    name = copied.item.display_name
    if copied.item.size_bytes == 0:
        _stage_empty(conn, obj, data_path)
        staged = CsvStaged(0, 0, [f"{name}: empty file"], None)
    elif fmt in ("jsonl", "json"):
        records = (
            LineReader(copied.copy, name, "JSON Lines", obj)
            if fmt == "jsonl"
            else ArrayReader(copied.copy, name, obj)
        )
        rows, malformed, warnings = stage_json_records(
            conn, obj, records, name, data_path, rejects_path
        )
        staged = CsvStaged(rows, malformed, warnings, None)
    else:
        rows = _stage_parquet(conn, copied.copy, name, data_path)
        staged = CsvStaged(rows, 0, [], None)
    return _manifest(conn, obj, source, copied, batch_id, fmt, staged)


def _manifest(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    copied: Copied,
    batch_id: str,
    fmt: str,
    staged: CsvStaged,
) -> Manifest:
    read: CsvRead | None = staged.read
    if read is not None:  # the file's bytes, every column text
        data_file, schema = CSV_DATA_NAME, dict.fromkeys(read.names, "VARCHAR")
    else:
        data_file, schema = DATA_NAME, parquet_schema(conn, copied.staging / DATA_NAME)
    item = copied.item
    return Manifest(
        batch_id=batch_id,
        object=obj.name,
        source=source,
        source_file=item.display_name,
        content_hash=copied.digest,
        size_bytes=item.size_bytes,
        mtime_ns=item.mtime_ns,
        ctime_ns=item.ctime_ns,
        inode=item.inode,
        format=fmt,
        rows=staged.rows,
        rows_malformed=staged.malformed,
        columns=tuple(schema),
        schema=schema,
        extracted_at=datetime.now(UTC),
        warnings=tuple(staged.warnings),
        data_file=data_file,
        csv_read=read,
    )


def _stage_empty(conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, data_path: Path) -> None:
    cols = ", ".join(f"NULL::VARCHAR AS {ident(c)}" for c in obj.columns)
    with atomic_target(data_path) as tmp:
        conn.execute(f"COPY (SELECT {cols} WHERE false) TO {literal(str(tmp))} ({PARQUET})")


def _stage_parquet(
    conn: duckdb.DuckDBPyConnection, path: Path, display_name: str, data_path: Path
) -> int:
    try:
        rows = conn.execute(f"SELECT count(*) FROM read_parquet({literal(str(path))})").fetchall()
    except duckdb.Error as exc:
        raise SourceError(
            f"{display_name}: cannot read as Parquet: {first_line(exc)}",
            file=display_name,
            unreadable=duckdb_refused(exc, path),
        ) from exc
    _refuse_ambiguous_columns(path, display_name)
    with atomic_target(data_path) as tmp:
        path.rename(tmp)
    return int(rows[0][0])


def _refuse_ambiguous_columns(path: Path, display_name: str) -> None:
    """Two top-level columns equal ignoring case and surrounding spaces: the header rule of
    CSV (DuckDB would read the second of `Amount, amount` as `amount_1`)."""
    import pyarrow.parquet as pq

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
