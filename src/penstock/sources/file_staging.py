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
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from penstock.catalog import ObjectSpec
from penstock.catalog.columns import source_key
from penstock.errors import SourceError, first_line
from penstock.faults import fault_point
from penstock.lake import Manifest, StagedBatch, atomic_target
from penstock.lake.atomic import start_writeback
from penstock.lake.manifest import CSV_DATA_NAME, DATA_NAME, PARQUET, REJECTS_NAME
from penstock.sources.base import SourceItem
from penstock.sources.compression import compression_of
from penstock.sources.csv import (
    CsvFacts,
    CsvFile,
    CsvPlan,
    CsvStaged,
    finish_plans,
    parquet_schema,
    plan_csv_files,
    stage_plans,
)
from penstock.sources.csv_text import ByteScan
from penstock.sources.unreadable import duckdb_refused
from penstock.sql import ident, literal

# A file up to this size is read once into memory, hashed and written: cheaper than a thread
# for a kernel copy (thousands of small files stage in a chunk).
_SMALL = 4 * 1024 * 1024

# A plain CSV copy up to this size keeps its bytes in memory (`Copied.content`) until it is
# parsed: its header read and byte scan then open no file (two opens and reads a file, of a
# thousand small files staged together); while the bytes kept for a chunk stay within
# KEEP_BUDGET, so that a chunk of many such files does not grow the process by much.
_KEEP = 64 * 1024
KEEP_BUDGET = 16 * 1024 * 1024


def copy_hashing(source: Path, target: Path) -> tuple[str, int, bytes | None]:
    """Copy `source` to `target` and hash `source`: (sha256, bytes copied, the bytes when the
    file was small enough to be read whole). A large file is copied in the kernel (sendfile)
    on another thread while this one hashes; the caller checks that the file did not change
    meanwhile (its size, mtime, ctime and inode), so the copy holds exactly the bytes
    hashed."""
    with source.open("rb") as reader:
        head = reader.read(_SMALL + 1)
        if len(head) <= _SMALL:
            target.write_bytes(head)
            return hashlib.sha256(head).hexdigest(), len(head), head
    with ThreadPoolExecutor(1) as pool:
        copying = pool.submit(shutil.copyfile, source, target)
        with source.open("rb") as reader:
            digest = hashlib.file_digest(reader, "sha256")
        copying.result()
    start_writeback(target)  # made durable at the batch's commit; its pages go to disk now
    return digest.hexdigest(), target.stat().st_size, None


@dataclass(frozen=True)
class Copied:
    """A landing file copied into its staging directory and hashed."""

    item: SourceItem
    staging: Path
    copy: Path
    digest: str
    content: bytes | None = None  # the copy's bytes, kept in memory (see _KEEP)

    def parsed(self) -> Copied:
        """The copy without its bytes in memory (its parse no longer needs them)."""
        return replace(self, content=None) if self.content is not None else self

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


def copy_name(obj: ObjectSpec, item: SourceItem) -> str:
    """The name of `item`'s copy in its staging directory. A plain CSV file's copy is written
    as the batch's data file (`data.csv`), which it stays when DuckDB reads it whole: no rename
    into place and no unlink of a copy already gone, per file (a thousand small files staged
    together did both a thousand times). Any other copy (compressed, or transcoded to UTF-8 for
    DuckDB) is `landed…`, removed once parsed."""
    if (
        (obj.format or "csv") == "csv"
        and item.size_bytes
        and compression_of(item.path) is None
        and (obj.csv is None or obj.csv.as_staged() is obj.csv)  # not transcoded
    ):
        return CSV_DATA_NAME
    return "landed" + "".join(item.path.suffixes[-2:])


def copy_item(obj: ObjectSpec, item: SourceItem, staging: Path, keep: bool = True) -> Copied | None:
    """Copy `item` into `staging` while hashing it; None if it changed or vanished meanwhile.
    `keep`: a small plain CSV copy may keep its bytes in memory (see _KEEP)."""
    copy = staging / copy_name(obj, item)
    try:
        digest, copied, content = copy_hashing(item.path, copy)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SourceError(
            f"{item.display_name}: cannot read: {exc.strerror or exc}",
            file=item.display_name,
            object=obj.name,
        ) from exc
    fault_point("after_copy")
    if not keep or content is None or len(content) > _KEEP or copy.name != CSV_DATA_NAME:
        content = None
    done = Copied(item, staging, copy, digest, content)
    if copied != item.size_bytes or not done.unchanged():
        return None
    return done


@dataclass
class Parsing:
    """Copies being parsed (each with the batch id it is staged under), between `begin_parse`
    and `end_parse`: the outcomes known so far, and the CSV files DuckDB is yet to read
    (`plans`, by copy index), planned alike or not."""

    obj: ObjectSpec
    source: str
    copies: list[tuple[Copied, str]]
    outcomes: list[Manifest | Exception | None]
    plans: dict[int, CsvPlan]
    extracted_at: datetime

    def provisional(self) -> list[StagedBatch]:
        """The planned CSV files as batches (in copy order) whose rows are not counted yet:
        enough to read them (their bytes are in place, their settings known)."""
        return [
            StagedBatch(self._manifest(i, CsvStaged(0, 0, [], plan.read)), plan.file.staging)
            for i, plan in self.plans.items()
        ]

    def _manifest(self, index: int, staged: CsvStaged) -> Manifest:
        copied, batch_id = self.copies[index]
        return manifest(self.obj, self.source, copied, batch_id, staged, self.extracted_at)


def parse(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    copies: Sequence[tuple[Copied, str]],
) -> list[Manifest | Exception]:
    """Parse each copy (with the batch id it is staged under) into its staging directory:
    its manifest, or the error it met (SourceError, `unreadable`, when it cannot be read at
    all)."""
    return end_parse(conn, begin_parse(conn, obj, source, copies))


def begin_parse(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: str,
    copies: Sequence[tuple[Copied, str]],
    extracted_at: datetime | None = None,
) -> Parsing:
    """Parse what needs no DuckDB read of CSV data (JSON, Parquet, empty files, CSV read
    record by record), and plan the CSV files DuckDB reads. `extracted_at`: the batches'
    extraction time (default now; files staged in parallel parts of one chunk share one)."""
    fmt = obj.format or "csv"
    at = extracted_at or datetime.now(UTC)
    parsing = Parsing(obj, source, list(copies), [None] * len(copies), {}, at)
    csv_files: list[int] = []
    for index, (copied, _) in enumerate(copies):
        if copied.item.size_bytes and fmt == "csv":
            csv_files.append(index)
            continue
        try:
            staged = _parse_one(conn, obj, copied, fmt)
            parsing.outcomes[index] = _checked_manifest(conn, parsing, index, staged)
        except Exception as exc:
            parsing.outcomes[index] = exc
    files = [copies[i] for i in csv_files]
    planned = plan_csv_files(
        conn, obj, [CsvFile(c.copy, c.item.display_name, c.staging, b, c.content) for c, b in files]
    )
    for index, plan in zip(csv_files, planned, strict=True):
        if isinstance(plan, CsvPlan):
            parsing.plans[index] = plan
        elif isinstance(plan, Exception):
            parsing.outcomes[index] = plan
        else:
            parsing.outcomes[index] = _checked_manifest(conn, parsing, index, plan)
    return parsing


def end_parse(
    conn: duckdb.DuckDBPyConnection,
    parsing: Parsing,
    facts: Sequence[CsvFacts] | None = None,
    scans: Sequence[ByteScan] | None = None,
) -> list[Manifest | Exception]:
    """Read the planned CSV files (or take what a read of them found: `facts` and `scans`, in
    plan order) and decide them; every copy's manifest, or its error."""
    indexes = list(parsing.plans)
    plans = [parsing.plans[i] for i in indexes]
    if facts is not None and scans is not None:
        staged = finish_plans(conn, parsing.obj, plans, facts, scans)
    else:
        staged = stage_plans(conn, parsing.obj, plans, scans)
    for index, outcome in zip(indexes, staged, strict=True):
        parsing.outcomes[index] = (
            outcome
            if isinstance(outcome, Exception)
            else _checked_manifest(conn, parsing, index, outcome)
        )
    for copied, _ in parsing.copies:
        if copied.copy.name != CSV_DATA_NAME:  # a `data.csv` copy is the data, or gone
            copied.copy.unlink(missing_ok=True)
    return [o if o is not None else RuntimeError("not parsed") for o in parsing.outcomes]


def _checked_manifest(
    conn: duckdb.DuckDBPyConnection, parsing: Parsing, index: int, staged: CsvStaged
) -> Manifest | Exception:
    try:
        if staged.read is None:  # Parquet: its schema as written
            copied = parsing.copies[index][0]
            schema = parquet_schema(conn, copied.staging / DATA_NAME)
            return replace(parsing._manifest(index, staged), columns=tuple(schema), schema=schema)
        return parsing._manifest(index, staged)
    except Exception as exc:
        return exc


def _parse_one(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, copied: Copied, fmt: str
) -> CsvStaged:
    """An empty file, JSON Lines, a JSON array or Parquet, staged as Parquet."""
    from penstock.sources.json_array import ArrayReader
    from penstock.sources.jsonl import stage_json_records
    from penstock.sources.lines import LineReader

    data_path, rejects_path = copied.staging / DATA_NAME, copied.staging / REJECTS_NAME
    name = copied.item.display_name
    if copied.item.size_bytes == 0:
        _stage_empty(conn, obj, data_path)
        return CsvStaged(0, 0, [f"{name}: empty file"], None)
    if fmt in ("jsonl", "json"):
        records = (
            LineReader(copied.copy, name, "JSON Lines", obj)
            if fmt == "jsonl"
            else ArrayReader(copied.copy, name, obj)
        )
        rows, malformed, warnings = stage_json_records(
            conn, obj, records, name, data_path, rejects_path
        )
        return CsvStaged(rows, malformed, warnings, None)
    return CsvStaged(_stage_parquet(conn, copied.copy, name, data_path), 0, [], None)


def manifest(
    obj: ObjectSpec,
    source: str,
    copied: Copied,
    batch_id: str,
    staged: CsvStaged,
    extracted_at: datetime,
) -> Manifest:
    """The manifest of a copy staged as `staged` (a Parquet stage's schema is filled in by
    the caller, from the file written)."""
    read = staged.read
    schema = dict.fromkeys(read.names, "VARCHAR") if read is not None else {}
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
        format=obj.format or "csv",
        rows=staged.rows,
        rows_malformed=staged.malformed,
        columns=tuple(schema),
        schema=schema,
        extracted_at=extracted_at,
        warnings=tuple(staged.warnings),
        data_file=CSV_DATA_NAME if read is not None else DATA_NAME,
        csv_read=read,
        rejects_file=staged.rejects_file,
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
