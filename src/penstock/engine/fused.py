"""One read of new CSV files for both staging and validation.

Staging a CSV file reads it whole with DuckDB (to count its rows and find its malformed
records), and validating it reads it again. When a run stages new files of an object and
loads them next, the second read is the first one's twin: so the run plans the files, reads
them once into the validation's checked table (`quality.chunk_read.read_chunk`), and staging
decides each file from what that read stored (its rows, and the records DuckDB rejected) and
from the byte scan made beside it. The batches are committed as usual, then the chunk is
finished from the same table and loaded.

The shared read is given up (staging then reads as usual) whenever it might not be the read a
later replay makes: a file that must be read record by record, a file with columns the
contract does not read (validation would not look at their bytes), a file missing a
contract column under `schema_drift: {missing_columns: fail}`, a batch that fails its row_count
check (its rows' raw values were not kept), or any file not staged as planned. The
caller fuses only when the staged files load next (no earlier batch of the object waits).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import duckdb

from penstock.catalog import ObjectSpec
from penstock.errors import PenstockError
from penstock.lake import Lake, StagedBatch
from penstock.quality.compile import bind_columns, unbound_columns
from penstock.quality.validate import ChunkRead, read_chunk, row_count_problem
from penstock.sources.base import SourceItem, StageResult
from penstock.sources.csv import CsvFacts, facts_of, scan_plans
from penstock.sources.files import FilesSourceReader, PreparedItems


def stage_reading(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    source: FilesSourceReader,
    items: Sequence[SourceItem],
    lake: Lake,
) -> tuple[list[StageResult], ChunkRead | None]:
    """Stage `items` (as `FilesSourceReader.stage_many` does); when every new file is a CSV
    file DuckDB reads whole, read them once for staging and validation. The results, and the
    chunk's read (whose batches are the items staged, in order), or None."""
    prepared = source.prepare_many(conn, obj, items, lake)
    provisional = _fusable(obj, prepared)
    if not provisional:
        return source.finish_many(conn, prepared), None
    assert prepared.parsing is not None
    plans = list(prepared.parsing.plans.values())
    with ThreadPoolExecutor(1) as pool:
        scanning = pool.submit(scan_plans, obj, plans)  # the byte scan beside DuckDB's read
        try:
            reading: ChunkRead | None = read_chunk(conn, obj, provisional, counted=False)
        except (PenstockError, duckdb.Error):
            reading = None  # staging reads as usual, and says what is wrong
        scans = scanning.result()
    if reading is None:
        return source.finish_many(conn, prepared, scans=scans), None
    try:
        results = source.finish_many(conn, prepared, _facts(conn, reading, provisional), scans)
    except BaseException:
        reading.drop(conn)
        raise
    staged = [r.batch for r in results if r.status == "staged" and r.batch is not None]
    as_planned = [b.batch_id for b in staged] == [b.batch_id for b in provisional] and all(
        b.manifest.csv_read is not None and not row_count_problem(obj, b.manifest.rows_in)
        for b in staged
    )
    if not as_planned:
        reading.drop(conn)
        return results, None
    return results, reading


def _fusable(obj: ObjectSpec, prepared: PreparedItems) -> list[StagedBatch]:
    """The batches one read may take for staging and validation (see the module's
    docstring), in order; empty when it may not."""
    parsing = prepared.parsing
    if parsing is None or not parsing.plans:
        return []
    if len(parsing.plans) != len(parsing.copies):  # some are parsed another way
        return []
    provisional = parsing.provisional()
    for batch in provisional:
        try:
            bindings = bind_columns(obj, batch.manifest.schema)
        except PenstockError:
            return []
        if unbound_columns(bindings, batch.manifest.schema):
            return []
        if obj.schema_drift.missing_columns == "fail" and any(
            b.stage_column is None for b in bindings
        ):
            return []  # the batch fails once its rows are counted: staging reads as usual
    return provisional


def _facts(
    conn: duckdb.DuckDBPyConnection, reading: ChunkRead, batches: Sequence[StagedBatch]
) -> list[CsvFacts]:
    """What the read found of each batch's file, in the batches' order."""
    rows = reading.rows(conn)
    facts: list[CsvFacts | None] = [None] * len(batches)
    for n, unit in enumerate(reading.units):
        # a file's place in its unit is its file_id in the unit's rejects
        unit_rows = {k: rows.get(i + 1, 0) for k, i in enumerate(unit)}
        for k, fact in enumerate(facts_of(conn, unit_rows, len(unit), reading.unit_rejects(n))):
            facts[unit[k]] = fact
    return [f for f in facts if f is not None]
