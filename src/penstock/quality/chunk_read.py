"""The first half of validating a chunk: its batches read and checked into one table.

`read_chunk` reads the chunk's batches by read units (`lake.read.read_units`): the files of a
unit in one statement, or, when they are many small CSV files, packed into one file
(`lake/packed_read.py`). Each unit's rows go through the contract's compiled validation
(`quality.compile`) into the chunk's checked table; `quality.validate.finish_chunk` then
takes the counts, the quarantine and the rows to load.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from penstock.catalog import ObjectSpec, RowCountCheck
from penstock.errors import ContractViolation, first_line
from penstock.lake import StagedBatch
from penstock.lake.packed_read import packable, packed_rows_sql
from penstock.lake.read import NOW, SEQ, check_source_columns, read_units, staged_rows_sql
from penstock.quality.compile import ColumnBinding, bind_columns, compile_validation, rule_options
from penstock.quality.drift import check_drift
from penstock.quality.set_rules import keeps_all_raw
from penstock.sql import ident


def drop_temp(conn: duckdb.DuckDBPyConnection, view: str, tables: Sequence[str]) -> None:
    """Drop a validation's temp view and tables (those that exist)."""
    conn.execute(f"DROP VIEW IF EXISTS {ident(view)}")
    for table in tables:
        conn.execute(f"DROP TABLE IF EXISTS {ident(table)}")


def row_count_problem(obj: ObjectSpec, rows_in: int) -> str | None:
    """Why a batch of `rows_in` records fails the object's row_count check, or None."""
    for check in obj.checks:
        if isinstance(check, RowCountCheck):
            bounds = check.row_count
            if bounds.min is not None and rows_in < bounds.min:
                return f"{rows_in} record(s), row_count wants at least {bounds.min}"
            if bounds.max is not None and rows_in > bounds.max:
                return f"{rows_in} record(s), row_count allows at most {bounds.max}"
    return None


@dataclass
class ChunkRead:
    """The first half of validating a chunk: its batches read and checked into one table
    (`checked`), by read units (`read_units`); their counts not taken yet. A run that stages
    CSV files and validates them in the same pass reads them here while they are still being
    staged: what the read stored in each unit's rejects table (`unit_rejects`; a file's
    `file_id` is its place in its unit) is what staging needs to decide each file."""

    obj: ObjectSpec
    suffix: str
    units: list[list[int]]
    bindings: list[list[ColumnBinding]]
    failed_seqs: list[int]

    @property
    def checked(self) -> str:
        return f"_checked_{self.suffix}"

    def unit_rejects(self, unit: int) -> str:
        return f"_read_rejects_{self.suffix}_{unit}"

    @property
    def temp_tables(self) -> list[str]:
        rejects = [self.unit_rejects(n) for n in range(len(self.units))]
        names = ("checked", "quarantine", "repeated", "firsts")
        own = [f"_{name}_{self.suffix}" for name in names]
        return [*own, *rejects, *(f"{r}_scan" for r in rejects)]

    def rows(self, conn: duckdb.DuckDBPyConnection) -> dict[int, int]:
        """Rows read, by SEQ."""
        found = conn.execute(f"SELECT {SEQ}, count(*) FROM {self.checked} GROUP BY ALL")
        return {int(seq): int(n) for seq, n in found.fetchall()}

    def drop(self, conn: duckdb.DuckDBPyConnection) -> None:
        drop_temp(conn, f"_load_{self.suffix}", self.temp_tables)


def read_chunk(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    batches: Sequence[StagedBatch],
    *,
    counted: bool = True,
) -> ChunkRead:
    """Read and check `batches` into one table (see `ChunkRead`); `finish_chunk` takes the
    counts. Their row_count checks are judged from their manifests' records; with `counted`
    false (batches read while they are being staged, not counted yet) they are not, and the
    caller must not finish a chunk that holds a batch failing one."""
    batches = list(batches)
    failed = [
        s
        for s, b in enumerate(batches, 1)
        if counted and row_count_problem(obj, b.manifest.rows_in)
    ]
    units = read_units(batches)
    read = ChunkRead(obj, uuid.uuid4().hex[:12], units, [], failed)
    try:
        _read(conn, obj, read, batches)
    except BaseException:
        read.drop(conn)
        raise
    return read


def _read(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, read: ChunkRead, batches: list[StagedBatch]
) -> None:
    seqs = list(range(1, len(batches) + 1))
    for batch in batches:
        check_source_columns(batch)
        check_drift(obj, batch)  # a schema_drift policy may fail the batch (quality/drift.py)
    failed_seqs = read.failed_seqs
    quarantine_all = (
        seq_in(failed_seqs) if failed_seqs and obj.on_invalid == "quarantine" else "false"
    )
    if keeps_all_raw(obj, rule_options(obj)):
        quarantine_all = "true"  # rows may fail after the pass (quality/set_rules.py)
    for n, unit in enumerate(read.units):
        unit_batches = [batches[i] for i in unit]
        bindings = bind_columns(obj, unit_batches[0].manifest.schema)
        read.bindings.append(bindings)
        unit_seqs = [seqs[i] for i in unit]
        packed = f"_packed_{read.suffix}_{n}"
        try:
            _read_unit(conn, obj, read, n, unit_batches, unit_seqs, quarantine_all, packed)
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {packed}")


def _read_unit(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    read: ChunkRead,
    n: int,
    unit_batches: list[StagedBatch],
    unit_seqs: list[int],
    quarantine_all: str,
    packed: str,
) -> None:
    """Read and check one read unit into the chunk's checked table; many small files are
    read packed into one (lake/packed_read.py) into the temp table `packed`."""
    rows = None
    if packable(unit_batches):
        rows = packed_rows_sql(conn, unit_batches, unit_seqs, read.unit_rejects(n), packed)
    if rows is None:
        rows = staged_rows_sql(unit_batches, unit_seqs, read.unit_rejects(n))
    # one batch's extraction time is a constant; several batches each have their own
    now = NOW if len(unit_batches) > 1 else unit_batches[0].manifest.extracted_at
    sql = compile_validation(
        obj, read.bindings[n], rows, now, keep_all_raw=quarantine_all, passthrough=[SEQ]
    )
    into = (
        f"CREATE TEMP TABLE {read.checked} AS" if n == 0 else f"INSERT INTO {read.checked} BY NAME"
    )
    try:
        conn.execute(f"{into} {sql}")
    except duckdb.Error as exc:
        first = unit_batches[0]
        raise ContractViolation(
            f"object '{obj.name}': the contract does not compile against batch "
            f"{first.batch_id} ({first.manifest.source_file}): {first_line(exc)}",
            object=obj.name,
            batch_id=first.batch_id,
        ) from exc


def seq_in(seqs: Sequence[int]) -> str:
    return f"{SEQ} IN ({', '.join(str(s) for s in seqs)})" if seqs else "false"
