"""Run an object's contract over staged batches; decide what loads and what is quarantined.

Batches are validated together as a chunk (a micro-batch: one batch, or many small ones):
everything is set-based SQL in DuckDB. One pass per read of the staged data computes typed
values and reasons into one checked table, where each row carries its batch's place in the
chunk (`SEQ`); the batch checks read each batch's counts; one window per repeated key picks
its winner within its batch. Every number is kept per batch: a batch validated in a chunk
gives exactly what it gives validated alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb

from penstock.catalog import ObjectSpec
from penstock.errors import ContractViolation
from penstock.lake import StagedBatch
from penstock.lake.read import (
    ENCODING,
    MALFORMED,
    ORDINAL,
    RESERVED_PREFIX,
    SEQ,
    rejects_sql,
    with_record_numbers_sql,
)
from penstock.quality.chunk_read import (
    ChunkRead,
    drop_temp,
    read_chunk,
    row_count_problem,
    seq_in,
)
from penstock.quality.compile import (
    FAILED_COLUMN,
    WARNED_COLUMN,
    raw_value_sql,
    rule_options,
    unbound_columns,
)
from penstock.quality.measures import count_dimensions, null_counts_sql, set_null_counts
from penstock.quality.privacy_sql import load_columns, quarantine_columns
from penstock.quality.set_rules import (
    all_reasons_sql,
    apply_references,
    apply_unique,
    failed_reasons_sql,
    judge_batch_checks,
    rate_failures,
    reconcile_problem,
    warn_reasons,
)
from penstock.sql import ident, idents

__all__ = [
    "ENCODING",
    "MALFORMED",
    "BatchValidation",
    "ChunkRead",
    "ChunkValidation",
    "finish_chunk",
    "read_chunk",
    "row_count_problem",
    "validate_batch",
    "validate_chunk",
]

ROW_COUNT = "check:row_count"
_ROWID = f"{RESERVED_PREFIX}rowid"


@dataclass
class BatchValidation:
    """The outcome of validating one batch, and the numbers.

    `load_table` is a temp view of the validated, deduplicated rows to load; `quarantine_table`
    a temp table of the rows to record in quarantine: those held back (`_loaded` false,
    `rows_quarantined`) and, under on_invalid warn, those that broke the contract but load
    anyway (`_loaded` true, `rows_warned`). Both are the chunk's (its rows have `SEQ`): they
    stay until `drop`. `rows_warned` is not part of the accounting: such a row is counted in
    `rows_loaded`, or in `rows_duplicate` if a later row of its key supersedes it.
    """

    load_table: str
    quarantine_table: str
    rows_in: int
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    rows_invalid: int = 0
    rows_warned: int = 0
    reason_counts: dict[str, int] = field(default_factory=dict)
    # rows that broke at least one rule of each dimension, and missing values per contract
    # column (NULL, not for a type failure): quality/measures.py
    dimension_rows: dict[str, int] = field(default_factory=dict)
    null_counts: dict[str, int] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    # batch checks of severity warn that failed: reported, nothing held back
    warned_checks: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    # source columns not in the contract that loaded as text (schema_drift new_columns: evolve)
    evolved_columns: list[str] = field(default_factory=list)
    temp_tables: list[str] = field(default_factory=list)

    @property
    def rows_recorded(self) -> int:
        """Rows this batch adds to the quarantine table: held back plus loaded anyway."""
        return self.rows_quarantined + self.rows_warned

    def drop(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Drop the chunk's tables (for a batch validated alone, `validate_batch`)."""
        drop_temp(conn, self.load_table, self.temp_tables)


@dataclass
class ChunkValidation:
    """The outcome of validating a chunk of batches: one `BatchValidation` per batch (in the
    chunk's order: batch i has `SEQ` i + 1), and the chunk's tables, until `drop`."""

    batches: list[StagedBatch]
    results: list[BatchValidation]
    load_table: str
    quarantine_table: str
    temp_tables: list[str]

    def drop(self, conn: duckdb.DuckDBPyConnection) -> None:
        drop_temp(conn, self.load_table, self.temp_tables)


def validate_batch(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, batch: StagedBatch
) -> BatchValidation:
    """Validate one batch (a chunk of one); `drop` it when done."""
    chunk = validate_chunk(conn, obj, [batch])
    (result,) = chunk.results
    result.temp_tables = chunk.temp_tables
    return result


def validate_chunk(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, batches: Sequence[StagedBatch]
) -> ChunkValidation:
    """Validate `batches` (of `obj`, in load order): the rows to load become a temp view, the
    rows to quarantine a temp table; both live in `conn` until `ChunkValidation.drop`. A batch
    that cannot be validated (its columns do not bind, the contract does not compile against
    it, it reads differently than staged, or it breaks the contract under on_invalid fail)
    raises, naming the first such batch; nothing of the chunk is kept."""
    return finish_chunk(conn, read_chunk(conn, obj, batches), batches)


def finish_chunk(
    conn: duckdb.DuckDBPyConnection, read: ChunkRead, batches: Sequence[StagedBatch]
) -> ChunkValidation:
    """The second half of validating a chunk: counts, quarantine and the rows to load, for
    `batches` (those read, in the same order; as staged, when they were read while being
    staged)."""
    obj, suffix = read.obj, read.suffix
    batches = list(batches)
    load, quarantine = f"_load_{suffix}", f"_quarantine_{suffix}"
    chunk = ChunkValidation(
        batches,
        [BatchValidation(load, quarantine, rows_in=b.manifest.rows_in) for b in batches],
        load,
        quarantine,
        read.temp_tables,
    )
    try:
        _finish(conn, obj, chunk, read)
    except BaseException:
        chunk.drop(conn)
        raise
    return chunk


def _finish(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, chunk: ChunkValidation, read: ChunkRead
) -> None:
    batches, results = chunk.batches, chunk.results
    checked, suffix = read.checked, read.suffix
    repeated, firsts = f"_repeated_{suffix}", f"_firsts_{suffix}"
    seqs = list(range(1, len(batches) + 1))
    for seq in read.failed_seqs:
        results[seq - 1].failed_checks = [ROW_COUNT]
    for unit, bindings in zip(read.units, read.bindings, strict=True):
        schema = batches[unit[0]].manifest.schema
        for i in unit:
            results[i].missing_columns = (
                [
                    b.name
                    for b in bindings
                    if b.stage_column is None and b.name not in obj.evolved_columns
                ]
                if batches[i].manifest.rows
                else []  # an empty file has no header to miss columns from
            )
            results[i].extra_columns = unbound_columns(bindings, schema)
            results[i].evolved_columns = [
                b.name
                for b in bindings
                if b.stage_column is not None and b.name in obj.evolved_columns
            ]
    # each batch's rows are together, in file order: its first rowid numbers them
    conn.execute(
        f"CREATE TEMP TABLE {firsts} AS SELECT {SEQ}, min(rowid) AS _first, count(*) AS _rows "
        f"FROM {checked} GROUP BY ALL"
    )
    _check_rows_read(conn, batches, firsts)
    apply_references(conn, obj, checked, obj.reference_tables)
    apply_unique(conn, obj, checked, SEQ)
    for seq, check, holds in judge_batch_checks(
        conn, obj, checked, SEQ, batches, version_columns(obj)
    ):
        result = results[seq - 1]
        (result.failed_checks if holds else result.warned_checks).append(check)
    _count_reasons(conn, obj, chunk, checked, seqs)
    # a failed batch check (row count, a rule over its max_failure_rate) holds the batch back
    failed_seqs = [seq for seq, r in enumerate(results, 1) if r.failed_checks]
    count_dimensions(conn, obj, chunk.results, checked)

    accepted = accepted_condition(obj, failed_seqs)
    _create_quarantine_table(conn, obj, chunk, checked, firsts, accepted, failed_seqs)
    versions = version_columns(obj)
    if versions:  # the keys (versions) that more than one loadable row of a batch holds
        conn.execute(
            f"CREATE TEMP TABLE {repeated} AS SELECT {SEQ}, {idents(versions)}, "
            f"count(*) - 1 AS _extra FROM {checked} WHERE {accepted} GROUP BY ALL "
            f"HAVING count(*) > 1"
        )
    per_seq = _per_seq(  # and the missing values per column, in the same scan
        conn,
        f"SELECT {SEQ}, count(*) FILTER (WHERE {accepted}), count(*) FILTER (WHERE "
        f"{FAILED_COLUMN} OR {WARNED_COLUMN}), {null_counts_sql(obj)} FROM {checked} GROUP BY ALL",
    )
    held = _per_seq(
        conn,
        f"SELECT {SEQ}, count(*) FILTER (NOT _loaded), count(*) FILTER (_loaded) "
        f"FROM {chunk.quarantine_table} GROUP BY ALL",
    )
    superseded = (
        _per_seq(conn, f"SELECT {SEQ}, sum(_extra) FROM {repeated} GROUP BY ALL")
        if versions
        else {}
    )
    duplicates = 0
    for seq, (batch, result) in enumerate(zip(batches, results, strict=True), 1):
        accepted_rows, invalid, *nulls = per_seq.get(seq, (0,) * (2 + len(obj.columns)))
        set_null_counts(obj, result, nulls)
        result.rows_duplicate = superseded.get(seq, (0,))[0]
        result.rows_loaded = accepted_rows - result.rows_duplicate
        result.rows_quarantined, result.rows_warned = held.get(seq, (0, 0))
        result.rows_invalid = invalid + batch.manifest.rows_malformed
        if result.failed_checks:
            # a failed batch check fails every record of the batch (each carries its reason)
            result.rows_invalid = result.rows_in
        duplicates += result.rows_duplicate
    _create_load_view(conn, obj, checked, firsts, chunk.load_table, accepted, repeated, duplicates)


def _per_seq(conn: duckdb.DuckDBPyConnection, sql: str) -> dict[int, tuple[int, ...]]:
    """The rows of `sql` (SEQ first, then counts) by SEQ."""
    return {
        int(seq): tuple(int(v or 0) for v in values)
        for seq, *values in conn.execute(sql).fetchall()
    }


def _check_rows_read(
    conn: duckdb.DuckDBPyConnection, batches: Sequence[StagedBatch], firsts: str
) -> None:
    """A batch kept as delivered bytes is split into rows again on every read: it must give
    the rows it gave when it was staged (a changed CSV reader, or bytes changed in the lake,
    would otherwise load other rows silently)."""
    read = dict(conn.execute(f"SELECT {SEQ}, _rows FROM {firsts}").fetchall())
    for seq, batch in enumerate(batches, 1):
        rows = int(read.get(seq, 0))
        if rows == batch.manifest.rows:
            continue
        raise ContractViolation(
            f"batch {batch.batch_id} ({batch.manifest.source_file}): its staged file "
            f"{batch.data_path.name} reads as {rows} row(s) now but gave {batch.manifest.rows} "
            f"when it was staged; parse it again with `penstock rebuild --restage --select "
            f"{batch.manifest.object}`",
            object=batch.manifest.object,
            batch_id=batch.batch_id,
            file=str(batch.data_path),
        )


def _count_reasons(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    chunk: ChunkValidation,
    checked: str,
    seqs: Sequence[int],
) -> None:
    """Each batch's reason counts: the rows' reasons, its malformed and encoding records, a
    failed batch check (every record); under on_invalid fail, the first batch with any."""
    counts = conn.execute(
        f"SELECT {SEQ}, r, count(*) FROM (SELECT {SEQ}, unnest({all_reasons_sql(obj)}) AS r "
        f"FROM {checked}) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    if any(b.manifest.rows_malformed for b in chunk.batches):
        counts += conn.execute(
            f"SELECT {SEQ}, _reason, count(*) FROM ({rejects_sql(chunk.batches, seqs)}) "
            f"GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    for seq, reason, n in counts:
        reasons = chunk.results[int(seq) - 1].reason_counts
        reasons[str(reason)] = reasons.get(str(reason), 0) + int(n)
    options = rule_options(obj)
    warnings = warn_reasons(options)
    for batch, result in zip(chunk.batches, chunk.results, strict=True):
        result.failed_checks += rate_failures(result.reason_counts, result.rows_in, options)
        for failure in result.failed_checks:
            result.reason_counts[failure] = result.rows_in
        result.reason_counts = dict(sorted(result.reason_counts.items()))
        errors = {r: n for r, n in result.reason_counts.items() if r not in warnings}
        if obj.on_invalid == "fail" and errors:
            summary = ", ".join(f"{r} ×{n}" for r, n in errors.items())
            if "check:reconcile" in errors:
                summary += f" ({reconcile_problem(batch.manifest)})"
            raise ContractViolation(
                f"object '{obj.name}': {summary} in batch {batch.batch_id} "
                f"({batch.manifest.source_file}): it breaks its contract and on_invalid is "
                f"fail; nothing was loaded",
                object=obj.name,
                batch_id=batch.batch_id,
                reasons=result.reason_counts,
            )


def version_columns(obj: ObjectSpec) -> list[str]:
    """The columns that tell one loadable row from another in a batch; rows equal in them are
    duplicates and collapse to one. merge: the key. scd2 dated by order_by: the key and the
    order_by value (each distinct date is a version of its own). No key: nothing collapses."""
    if not obj.key:
        return []
    if obj.versions_by_order_by and obj.order_by:
        return [*obj.key, obj.order_by]
    return list(obj.key)


def accepted_condition(obj: ObjectSpec, failed_seqs: Sequence[int]) -> str:
    """Which validated rows go on to load (the others are quarantined)."""
    if obj.on_invalid == "warn":
        if obj.load in ("merge", "scd2") and obj.key:
            # a row without its key cannot be matched, nor one without order_by be ordered
            needed = [*obj.key, *([obj.order_by] if obj.order_by else [])]
            return " AND ".join(f"{ident(k)} IS NOT NULL" for k in needed)
        return "true"
    if failed_seqs:  # a failed batch check holds the whole batch back
        return f"NOT {FAILED_COLUMN} AND NOT {seq_in(failed_seqs)}"
    return f"NOT {FAILED_COLUMN}"


def _numbered(checked: str, firsts: str, condition: str, columns: str, inner: str = "") -> str:
    """`columns` (over alias `c`: the checked rows where `condition` holds, plus the
    expressions `inner` adds over them) with `SEQ` and each row's ordinal in its batch (its
    rowid less its batch's first)."""
    return (
        f"SELECT {columns}, c.{SEQ}, c.{_ROWID} - f._first + 1 AS {ORDINAL} "
        f"FROM (SELECT *, rowid AS {_ROWID}{inner} FROM {checked} WHERE {condition}) c "
        f"JOIN {firsts} f ON c.{SEQ} = f.{SEQ}"
    )


def _create_load_view(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    checked: str,
    firsts: str,
    load: str,
    accepted: str,
    repeated: str,
    duplicates: int,
) -> None:
    """The rows to load, with `SEQ` and `ORDINAL`. Where keys repeat within a batch
    (`repeated` holds them), the window that picks each key's winner runs over those keys' rows
    only; every other row loads as it is.

    The winner is the greatest order_by, at a tie the later record. For SCD2 dated by
    order_by, the window runs per key and order_by value, so every dated version is kept and
    only rows with the same key and date collapse (the later record wins).
    """
    accepted_rows = _numbered(checked, firsts, accepted, load_columns(obj, "c."))
    versions = version_columns(obj)
    if not versions or not duplicates:
        # a view: an initial load or an append reads it once, straight into the target table
        conn.execute(f"CREATE TEMP VIEW {load} AS {accepted_rows}")
        return
    by_value = obj.order_by and obj.order_by not in versions
    order = f"a.{ident(obj.order_by)} DESC NULLS LAST, " if by_value and obj.order_by else ""
    same = " AND ".join(f"a.{ident(v)} IS NOT DISTINCT FROM r.{ident(v)}" for v in [SEQ, *versions])
    conn.execute(
        f"""
        CREATE TEMP VIEW {load} AS
        WITH a AS NOT MATERIALIZED ({accepted_rows})
        SELECT * FROM (SELECT * FROM a ANTI JOIN {repeated} r ON {same})
        UNION ALL
        SELECT * FROM (
            SELECT * FROM a SEMI JOIN {repeated} r ON {same}
            QUALIFY row_number() OVER (PARTITION BY a.{SEQ}, {idents(versions, "a.")}
                                       ORDER BY {order}a.{ORDINAL} DESC) = 1
        )
        """
    )


def _create_quarantine_table(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    chunk: ChunkValidation,
    checked: str,
    firsts: str,
    accepted: str,
    failed_seqs: Sequence[int],
) -> None:
    """Quarantined rows keep their raw values as text, their reasons and record number.

    `_loaded` tells a row held back (false) from one that broke the contract but loads anyway
    under on_invalid warn (true): warn records every failing row, not only those held back.
    """
    batches = chunk.batches
    seqs = list(range(1, len(batches) + 1))
    raw_values = [raw_value_sql("c.", i) for i in range(len(obj.columns))]
    raw = quarantine_columns(obj, "c.", raw_values)
    nulls = ", ".join(f"NULL::VARCHAR AS {ident(c)}" for c in obj.columns)
    # a malformed record of an object with personal data keeps its line in the stage only
    raw_line, error = "_raw_line", "_error"
    if obj.treated_columns:
        raw_line, error = "NULL::VARCHAR", "split_part(_error, ': ', 1)"
    reasons = all_reasons_sql(obj)
    if failed_seqs:
        failed = [(seq, chunk.results[seq - 1].failed_checks) for seq in failed_seqs]
        reasons = (
            f"CASE WHEN {seq_in(failed_seqs)} THEN list_concat({reasons}, "
            f"{failed_reasons_sql(SEQ, failed)}) ELSE {reasons} END"
        )
    held_back = f"NOT coalesce(({accepted}), false)"
    # a row that broke a rule but loads (on_invalid warn, or a rule of severity warn) is
    # recorded too, as loaded
    recorded = f"{WARNED_COLUMN} OR {held_back}"
    if obj.on_invalid == "warn":
        recorded = f"{FAILED_COLUMN} OR {recorded}"
    failing = _numbered(
        checked,
        firsts,
        recorded,
        f"{raw}, c._reasons, c._loaded",
        f", {reasons}::VARCHAR[] AS _reasons, NOT ({held_back}) AS _loaded",
    )
    conn.execute(
        f"""
        CREATE TEMP TABLE {chunk.quarantine_table} AS
        SELECT * FROM (
            SELECT * EXCLUDE ({ORDINAL}), NULL::VARCHAR AS _raw_line, NULL::VARCHAR AS _error
            FROM ({with_record_numbers_sql(batches, seqs, failing)})
            UNION ALL BY NAME
            SELECT {nulls}, [_reason]::VARCHAR[] AS _reasons, false AS _loaded, {SEQ},
                   _row_number, {raw_line} AS _raw_line, {error} AS _error
            FROM ({rejects_sql(batches, seqs)})
        ) ORDER BY {SEQ}, _row_number
        """
    )
