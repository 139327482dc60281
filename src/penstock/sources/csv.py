"""Staging CSV: every value as text exactly as written, read with the object's dialect.

Options (`CsvOptions`): delimiter, quote, escape, encoding, `header`, `skip_rows` (lines skipped
verbatim at the top) and `comment` (a line whose first character other than spaces is the
prefix is not a record; later in a line, outside quotes, the prefix ends the record there:
DuckDB's rule), `max_line_span`. With `header: false` the Nth field is the Nth contract column,
and a record with another number of fields is malformed. Nothing is guessed: penstock reads the
header itself (csv_layout.py) and DuckDB's sniffer is never used.

A compressed file is first decompressed once into the staging directory (a stream that does
not decompress fails the file, unreadable); every pass then reads that plain copy (DuckDB in
parallel, where it reads gzip on one thread).

The fast path keeps the file's (plain) bytes as the batch's data, `data.csv`: the manifest
records the read settings (lake/csv_read.py) and validation reads the bytes with them, which
costs a fraction of re-encoding the rows as Parquet. Staging is in three steps:
1. `plan_csv_files`: the header and the read settings of each file (`CsvPlan`);
2. one DuckDB read of the files planned alike (`count_plans`: counting rows; or the
   validation's own read of them, when a run validates what it stages in the same pass),
   with, beside it on a second thread, a read of the bytes (`scan_plans`: NUL characters,
   comments DuckDB would drop with their record, line breaks counted);
3. `finish_plans`: what the read and the scan found (`CsvFacts`) decide each file. A record
   with a wrong number of fields is kept in the rejects file with its record number and raw
   text (csv_rejects.py). Anything else sends the file to the record-by-record pass of
   csv_recover.py, which quarantines each bad record and stages the others as Parquet: what
   DuckDB reports besides field counts (an unbalanced quote, which in DuckDB swallows the rest
   of the file; a bare CR or mixed line breaks, which fail it whole; an invalid byte), what
   the scan found, and a record spanning more than `max_line_span` lines (a stray quote that a
   later one closed: looked for only when the file's lines outnumber its records by that much).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

from penstock.catalog import CsvOptions, ObjectSpec
from penstock.errors import first_line
from penstock.lake import atomic_target
from penstock.lake.csv_read import CsvRead
from penstock.lake.manifest import (
    CSV_DATA_NAME,
    DATA_NAME,
    PARQUET,
    REJECTS_NAME,
    SHARED_REJECTS,
)
from penstock.sources.compression import compression_of
from penstock.sources.csv_layout import Layout, csv_read, read_layout
from penstock.sources.csv_rejects import (
    line_numbers,
    problem,
    reject_kinds,
    reject_record_numbers,
    rejects_tables,
    too_long,
    write_all_rejects,
    write_rejects,
    write_shared_rejects,
)
from penstock.sources.csv_text import ByteScan, scan_bytes, staged_copy
from penstock.sql import ident, literal

_PLAIN = "_decompressed.csv"
_TRANSCODED = "_utf8.csv"


@dataclass(frozen=True)
class CsvStaged:
    """What staging a CSV file wrote into the staging directory: `rows` data rows and
    `malformed` records in the rejects file. With `read` set the data is the file's plain
    bytes as `data.csv` (CSV_DATA_NAME), read with those settings; with None it is Parquet
    (`data.parquet`: a file read record by record, or one with no header)."""

    rows: int
    malformed: int
    warnings: list[str]
    read: CsvRead | None
    # the malformed records are in a rejects file shared with files staged together (its path
    # relative to the staging directory; rows keyed by `_batch_id`), not in the batch's own
    rejects_file: str | None = None


@dataclass(frozen=True)
class CsvFile:
    """A CSV file to stage: a private copy inside its own staging directory."""

    path: Path
    display_name: str
    staging: Path
    batch_id: str = ""  # what its rows are staged under (rejects shared with other files)
    # the bytes of `path`, when they are in memory already (a small plain copy just written):
    # the header read and the byte scan take them instead of opening the file again
    content: bytes | None = None


@dataclass(frozen=True)
class CsvPlan:
    """A file DuckDB may read whole: its plain bytes, already in place as the batch's data
    (`data.csv` in its staging directory), its header and the settings to read it with."""

    file: CsvFile
    read: CsvRead
    layout: Layout

    @property
    def data(self) -> Path:
        return self.file.staging / CSV_DATA_NAME

    @property
    def content(self) -> bytes | None:
        """The data's bytes, when in memory (they are the file's own: it was not
        decompressed)."""
        return self.file.content if self.file.path == self.data else None


@dataclass(frozen=True)
class CsvFacts:
    """What DuckDB's read of a planned file found: its rows, the kinds of error it stored for
    it, and where: its rejects are the rows of `table` with this `file_id`."""

    rows: int
    kinds: frozenset[str]
    table: str
    file_id: int

    @property
    def rejects(self) -> str:
        """SQL selecting the file's rejects."""
        return f"(SELECT * FROM {self.table} WHERE file_id = {self.file_id})"


def stage_csv(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    path: Path,
    display_name: str,
    staging: Path,
) -> CsvStaged:
    """Stage `path` (a private copy inside `staging`, shown as `display_name`)."""
    (staged,) = stage_csv_files(conn, obj, [CsvFile(path, display_name, staging)])
    if isinstance(staged, Exception):
        raise staged
    return staged


def stage_csv_files(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, files: Sequence[CsvFile]
) -> list[CsvStaged | Exception]:
    """Stage several CSV files of `obj` at once: files read with the same settings are read by
    DuckDB together (one read of a thousand small files costs what a few reads of one do).
    Each file's outcome, or the error it alone met (a file that cannot be read is
    SourceError, `unreadable`)."""
    planned = plan_csv_files(conn, obj, files)
    plans = [p for p in planned if isinstance(p, CsvPlan)]
    staged = iter(stage_plans(conn, obj, plans))
    return [next(staged) if isinstance(p, CsvPlan) else p for p in planned]


def stage_plans(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    plans: Sequence[CsvPlan],
    scans: Sequence[ByteScan] | None = None,
) -> list[CsvStaged | Exception]:
    """Read the planned files (those planned alike together) and decide each; `scans`, when
    given, are theirs already made (in plan order)."""
    outcomes: list[CsvStaged | Exception | None] = [None] * len(plans)
    groups: dict[CsvRead, list[int]] = {}
    for index, plan in enumerate(plans):
        groups.setdefault(plan.read, []).append(index)
    for members in groups.values():
        made = [scans[i] for i in members] if scans is not None else None
        staged = _stage_alike(conn, obj, [plans[i] for i in members], made)
        for index, outcome in zip(members, staged, strict=True):
            outcomes[index] = outcome
    return [o if o is not None else RuntimeError("not staged") for o in outcomes]


def _stage_alike(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    plans: Sequence[CsvPlan],
    scans: Sequence[ByteScan] | None,
) -> list[CsvStaged | Exception]:
    """Files planned alike: one count read beside the scan, then each file decided."""
    with ThreadPoolExecutor(1) as pool, rejects_tables(conn) as (table, scan_table):
        # the scan reads the files while DuckDB does (a second core hides it)
        scanning = pool.submit(scan_plans, obj, plans) if scans is None else None
        try:
            facts: Sequence[CsvFacts | str] = count_plans(conn, plans, table, scan_table)
        except duckdb.Error as exc:
            if len(plans) > 1:  # one of them stops the read: each on its own
                scanned = scanning.result() if scanning is not None else scans
                assert scanned is not None
                return [
                    out
                    for plan, scan in zip(plans, scanned, strict=True)
                    for out in _stage_alike(conn, obj, [plan], [scan])
                ]
            name, path = plans[0].file.display_name, str(plans[0].data)
            facts = ["DuckDB's reader refused it: " + first_line(exc).replace(path, name)]
        scanned = scanning.result() if scanning is not None else scans
        assert scanned is not None
        return finish_plans(conn, obj, plans, facts, scanned)


def plan_csv_files(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, files: Sequence[CsvFile]
) -> list[CsvPlan | CsvStaged | Exception]:
    """How DuckDB reads each file (a plan), or its outcome when DuckDB cannot read it (staged
    record by record) or it has no header, or the error it met."""
    declared = obj.csv or CsvOptions()
    csv = declared.as_staged()
    out: list[CsvPlan | CsvStaged | Exception] = []
    for file in files:
        try:
            out.append(_plan(conn, obj, csv, file, declared.encoding))
        except Exception as exc:
            out.append(exc)
        finally:
            # the copy DuckDB read (a plain file in its encoding is read where it is)
            (file.staging / _PLAIN).unlink(missing_ok=True)
            (file.staging / _TRANSCODED).unlink(missing_ok=True)
    return out


def _plan(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    file: CsvFile,
    encoding: str,
) -> CsvPlan | CsvStaged:
    """A file decompressed once (DuckDB then reads in parallel, and every pass reads it
    again), or, declared in an `encoding` DuckDB does not read (Windows-1252), transcoded to
    UTF-8 in the same pass (`csv` reads that copy); its header read by penstock, its bytes put
    in place as the batch's data."""
    path = file.path
    if encoding != csv.encoding:  # decompressed as it is transcoded
        path = file.staging / _TRANSCODED
        staged_copy(file.path, path, encoding, file.display_name, obj.name)
    elif compression_of(path) is not None:
        path = file.staging / _PLAIN
        staged_copy(file.path, path, None, file.display_name, obj.name)
    data = file.staging / CSV_DATA_NAME
    content = file.content if path == file.path else None
    layout = read_layout(path, obj, csv, file.display_name, content)
    if layout is None:
        _stage_no_columns(conn, obj, file.staging / DATA_NAME)
        if path == data:  # a copy written under the data's name is not the data
            path.unlink()
        why = f"{file.display_name}: no header (only blank, comment or skipped lines)"
        return CsvStaged(0, 0, [why], None)
    if layout.duck_skip is None:
        staged = _recover(conn, obj, csv, file, layout, path, layout.why_not_duckdb)
        if path == data:
            path.unlink()
        return staged
    read = csv_read(csv, layout.names, skip=layout.duck_skip, new_line=layout.new_line)
    if path != data:  # a copy under another name (or a decompressed one) becomes the data
        path.rename(data)  # made durable when the batch is committed
    return CsvPlan(file, read, layout)


def scan_plans(obj: ObjectSpec, plans: Sequence[CsvPlan]) -> list[ByteScan]:
    """The byte scan of each planned file (run beside DuckDB's read)."""
    csv = (obj.csv or CsvOptions()).as_staged()
    return [scan_bytes(p.data, csv, p.layout.new_line, p.content) for p in plans]


def count_plans(
    conn: duckdb.DuckDBPyConnection,
    plans: Sequence[CsvPlan],
    rejects_table: str,
    rejects_scan: str,
) -> list[CsvFacts]:
    """Read files planned alike whole, counting: each one's facts. Every column is counted,
    so that every value is read (and checked as text in the encoding) as validation will
    read it; `count(*)` alone would skip them."""
    read = plans[0].read
    files = [str(p.data) for p in plans]
    counts = ", ".join(f"count({ident(name)})" for name in read.names)
    index = "file_index" if len(files) > 1 else "0"
    source = read.sql(
        files[0] if len(files) == 1 else files,
        rejects_table=rejects_table,
        rejects_scan=rejects_scan,
    )
    # fetchall: DuckDB stores the rejects when the result is finished, not at fetchone
    rows = conn.execute(f"SELECT {index}, count(*), {counts} FROM {source} GROUP BY ALL").fetchall()
    counted = {int(i): int(n) for i, n, *_ in rows}
    return facts_of(conn, counted, len(plans), rejects_table)


def facts_of(
    conn: duckdb.DuckDBPyConnection, rows: dict[int, int], files: int, rejects_table: str
) -> list[CsvFacts]:
    """The facts of `files` files read together (by their index in the read: `rows`, and
    their rejects in `rejects_table`)."""
    kinds = reject_kinds(conn, rejects_table)
    return [
        CsvFacts(rows.get(i, 0), frozenset(kinds.get(i, set())), rejects_table, i)
        for i in range(files)
    ]


def finish_plans(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    plans: Sequence[CsvPlan],
    facts: Sequence[CsvFacts | str],
    scans: Sequence[ByteScan],
) -> list[CsvStaged | Exception]:
    """Decide each planned file from what the read (`facts`, or why the read failed) and the
    scan found: staged as its bytes, with its malformed records in its rejects file; or
    read record by record. The malformed records of files read together are counted and
    written together (csv_rejects.py): a statement per file cost more than reading them."""
    csv = (obj.csv or CsvOptions()).as_staged()
    out: list[CsvStaged | str | Exception] = []
    lines = _rejected_lines(conn, facts)
    for plan, fact, scan in zip(plans, facts, scans, strict=True):
        try:
            if isinstance(fact, str):
                out.append(fact)
                continue
            rejected = lines.get((fact.table, fact.file_id), [])
            out.append(_decide(conn, obj, csv, plan, fact, scan, rejected))
        except Exception as exc:
            out.append(exc)
    _write_numbered(conn, plans, facts, out)
    for index, (plan, outcome) in enumerate(zip(plans, out, strict=True)):
        if not isinstance(outcome, str):
            continue
        try:
            path = plan.data
            out[index] = _recover(conn, obj, csv, plan.file, plan.layout, path, outcome)
            path.unlink(missing_ok=True)
        except Exception as exc:
            out[index] = exc
    return [o for o in out if not isinstance(o, str)]


def _rejected_lines(
    conn: duckdb.DuckDBPyConnection, facts: Sequence[CsvFacts | str]
) -> dict[tuple[str, int], list[int]]:
    """The lines DuckDB rejected, by rejects table and file, in order: one query a table."""
    wanted: dict[str, list[int]] = {}
    for fact in facts:
        if isinstance(fact, CsvFacts) and fact.kinds:
            wanted.setdefault(fact.table, []).append(fact.file_id)
    found: dict[tuple[str, int], list[int]] = {}
    for table, ids in wanted.items():
        rows = conn.execute(
            f"SELECT file_id, list(DISTINCT line ORDER BY line) FROM {table} "
            f"WHERE file_id IN ({', '.join(map(str, ids))}) GROUP BY ALL"
        ).fetchall()
        found.update({(table, int(i)): [int(n) for n in lines] for i, lines in rows})
    return found


def _decide(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    plan: CsvPlan,
    facts: CsvFacts,
    scan: ByteScan,
    lines: list[int],
) -> CsvStaged | str:
    """One file's outcome of the read: staged (its malformed records' numbers known; they are
    written with the others' by `_write_numbered`), or why it must be read record by record."""
    if scan.trouble is not None:
        return f"it holds {scan.trouble}"
    layout, rejects, kinds = plan.layout, facts.rejects, set(facts.kinds)
    why = problem(conn, rejects, kinds)
    if why is None and kinds and layout.new_line == "\r":
        why = "malformed records in a file whose lines end in CR alone"
    if why is not None:
        return why
    malformed = len(lines)
    outcome = (facts.rows, malformed)
    spans = too_long(conn, csv, layout, scan, outcome, plan.read, plan.data, rejects)
    if spans is not None:
        return spans
    numbers: list[int] = []
    if malformed:
        direct = line_numbers(layout, scan, outcome, lines)
        if direct is not None:
            numbers = direct
        else:  # the numbered copy decides (and the file's rejects are written now)
            rejects_path = plan.file.staging / REJECTS_NAME
            copied = reject_record_numbers(conn, obj, csv, layout, plan.data, rejects, rejects_path)
            if copied is None:
                return "the record numbers of its malformed records could not be confirmed"
            write_rejects(conn, rejects, rejects_path, copied)
    return NumberedStaged(facts.rows, malformed, [], plan.read, numbers=tuple(numbers))


@dataclass(frozen=True)
class NumberedStaged(CsvStaged):
    """A staged file whose malformed records' numbers (`numbers`, one per rejected line, in
    order) are still to be written to its rejects file."""

    numbers: tuple[int, ...] = ()


def _write_numbered(
    conn: duckdb.DuckDBPyConnection,
    plans: Sequence[CsvPlan],
    facts: Sequence[CsvFacts | str],
    outcomes: list[CsvStaged | str | Exception],
) -> None:
    """Write the malformed records of the files whose records are numbered: those of one
    rejects table into one file shared by their batches (a file per batch cost more than
    staging a small file), or, for a file read alone, its batch's own. A write that fails
    fails its files alone."""
    by_table: dict[str, list[tuple[int, int, tuple[int, ...]]]] = {}
    for index, (fact, outcome) in enumerate(zip(facts, outcomes, strict=True)):
        if isinstance(outcome, NumberedStaged) and outcome.numbers:
            assert isinstance(fact, CsvFacts)
            by_table.setdefault(fact.table, []).append((index, fact.file_id, outcome.numbers))
    for table, files in by_table.items():
        ids = [plans[i].file.batch_id for i, _, _ in files]
        shared = len(files) > 1 and all(ids)
        relative = None
        try:
            if shared:
                # a new name for every parse: a file an earlier parse's manifests name (a
                # restage's old parse) is never written over
                name = f"{uuid.uuid4().hex}.parquet"
                target = plans[files[0][0]].file.staging.parent / SHARED_REJECTS / name
                relative = f"../{SHARED_REJECTS}/{name}"
                write_shared_rejects(
                    conn, table, [(f, ids[k], n) for k, (_, f, n) in enumerate(files)], target
                )
            else:
                write_all_rejects(
                    conn, table, [(f, plans[i].file.staging / REJECTS_NAME, n) for i, f, n in files]
                )
        except Exception as exc:
            for index, _, _ in files:
                outcomes[index] = exc
            continue
        for index, _, _ in files:
            done = outcomes[index]
            assert isinstance(done, NumberedStaged)
            outcomes[index] = CsvStaged(done.rows, done.malformed, [], done.read, relative)


def _recover(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    csv: CsvOptions,
    file: CsvFile,
    layout: Layout,
    path: Path,
    why: str,
) -> CsvStaged:
    """Stage a file DuckDB cannot read whole, record by record, as Parquet."""
    from penstock.sources.csv_recover import stage_recovered

    rejects_path = file.staging / REJECTS_NAME
    rejects_path.unlink(missing_ok=True)
    with atomic_target(file.staging / DATA_NAME) as tmp:
        rows, malformed = stage_recovered(
            conn, obj, csv, layout, path, file.display_name, tmp, rejects_path
        )
    return CsvStaged(
        rows, malformed, [f"{file.display_name}: read record by record, as {why}"], None
    )


def _stage_no_columns(conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, data_path: Path) -> None:
    cols = ", ".join(f"NULL::VARCHAR AS {ident(c)}" for c in obj.columns)
    with atomic_target(data_path) as tmp:
        conn.execute(f"COPY (SELECT {cols} WHERE false) TO {literal(str(tmp))} ({PARQUET})")


def parquet_schema(conn: duckdb.DuckDBPyConnection, path: Path) -> dict[str, str]:
    described = conn.execute(f"DESCRIBE SELECT * FROM read_parquet({literal(str(path))})")
    return {str(name): str(dtype) for name, dtype, *_ in described.fetchall()}
