"""Run an object's contract over one staged batch; decide what loads and what is quarantined.

Everything is set-based SQL in DuckDB: one pass computes typed values and reasons, the batch
checks read its counts, and one window picks the winner of each duplicate key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from penstock.catalog import ObjectSpec, RowCountCheck
from penstock.errors import ContractViolation, first_line
from penstock.lake import StagedBatch
from penstock.lake.read import (
    ENCODING,
    MALFORMED,
    ORDINAL,
    check_source_columns,
    rejects_sql,
    staged_rows_sql,
    with_record_numbers_sql,
)
from penstock.quality.casts import raw_text_sql
from penstock.quality.compile import (
    FAILED_COLUMN,
    REASONS_COLUMN,
    ColumnBinding,
    bind_columns,
    compile_validation,
    unbound_columns,
)
from penstock.sql import ident, idents, literal

__all__ = ["ENCODING", "MALFORMED", "BatchValidation", "row_count_problem", "validate_batch"]


@dataclass
class BatchValidation:
    """The outcome of validating one batch, and the numbers.

    `load_table` is a temp view of the validated, deduplicated rows to load; it reads the
    batch's checked rows, which stay until `drop`. `quarantine_table` is a temp table of the
    rows to record in quarantine: those held back (`_loaded` false, `rows_quarantined`) and,
    under on_invalid warn, those that broke the contract but load anyway (`_loaded` true,
    `rows_warned`). `rows_warned` is not part of the accounting: such a row is counted in
    `rows_loaded`, or in `rows_duplicate` if a later row of its key supersedes it.
    """

    load_table: str
    quarantine_table: str
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    rows_invalid: int
    rows_warned: int
    reason_counts: dict[str, int]
    failed_checks: list[str]
    missing_columns: list[str]
    extra_columns: list[str]
    temp_tables: list[str] = field(default_factory=list)

    @property
    def rows_recorded(self) -> int:
        """Rows this batch adds to the quarantine table: held back plus loaded anyway."""
        return self.rows_quarantined + self.rows_warned

    def drop(self, conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute(f"DROP VIEW IF EXISTS {ident(self.load_table)}")
        for table in self.temp_tables:
            conn.execute(f"DROP TABLE IF EXISTS {ident(table)}")


def _row_count_failures(obj: ObjectSpec, rows_in: int) -> list[str]:
    return ["check:row_count"] if row_count_problem(obj, rows_in) else []


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


def validate_batch(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, batch: StagedBatch, now: datetime
) -> BatchValidation:
    """Validate `batch`: the rows to load become a temp view, the rows to quarantine a temp
    table; both live in `conn` until `BatchValidation.drop`."""
    check_source_columns(batch)
    suffix = uuid.uuid4().hex[:12]
    checked, load, quarantine = f"_checked_{suffix}", f"_load_{suffix}", f"_quarantine_{suffix}"
    repeated, rejects = f"_repeated_{suffix}", f"_read_rejects_{suffix}"
    schema = batch.manifest.schema
    bindings = bind_columns(obj, schema)
    missing = [b.name for b in bindings if b.stage_column is None]
    extra = unbound_columns(bindings, schema)
    if batch.manifest.rows == 0:
        missing = []  # an empty file has no header to miss columns from

    batch_failures = _row_count_failures(obj, batch.manifest.rows_in)
    quarantine_all = bool(batch_failures) and obj.on_invalid == "quarantine"
    sql = compile_validation(
        obj, bindings, staged_rows_sql(batch, rejects), now, keep_all_raw=quarantine_all
    )
    result = BatchValidation(
        load_table=load,
        quarantine_table=quarantine,
        rows_in=batch.manifest.rows_in,
        rows_loaded=0,
        rows_quarantined=0,
        rows_duplicate=0,
        rows_invalid=0,
        rows_warned=0,
        reason_counts={},
        failed_checks=[],
        missing_columns=missing,
        extra_columns=extra,
        temp_tables=[checked, quarantine, repeated, rejects, f"{rejects}_scan"],
    )
    try:
        conn.execute(f"CREATE TEMP TABLE {checked} AS {sql}")
    except duckdb.Error as exc:
        result.drop(conn)
        raise ContractViolation(
            f"object '{obj.name}': the contract does not compile against batch "
            f"{batch.batch_id} ({batch.manifest.source_file}): {first_line(exc)}",
            object=obj.name,
            batch_id=batch.batch_id,
        ) from exc
    _check_rows_read(conn, batch, checked, result)

    counts = conn.execute(
        f"SELECT r, count(*) FROM (SELECT unnest({REASONS_COLUMN}) AS r FROM {checked}) "
        f"GROUP BY r ORDER BY r"
    ).fetchall()
    reason_counts = {str(r): int(n) for r, n in counts}
    if batch.manifest.rows_malformed:  # malformed and encoding records, by reason
        rejected = conn.execute(
            f"SELECT _reason, count(*) FROM ({rejects_sql(batch)}) GROUP BY ALL"
        ).fetchall()
        reason_counts.update({str(r): int(n) for r, n in rejected})
    result.failed_checks = batch_failures
    for failure in result.failed_checks:
        reason_counts[failure] = result.rows_in
    result.reason_counts = reason_counts

    if obj.on_invalid == "fail" and reason_counts:
        result.drop(conn)
        summary = ", ".join(f"{r} ×{n}" for r, n in sorted(reason_counts.items()))
        raise ContractViolation(
            f"object '{obj.name}': {summary} in batch {batch.batch_id} "
            f"({batch.manifest.source_file}): it breaks its contract and on_invalid is fail; "
            f"nothing was loaded",
            object=obj.name,
            batch_id=batch.batch_id,
            reasons=reason_counts,
        )

    accepted = _accepted_condition(obj, bool(result.failed_checks))
    _create_quarantine_table(conn, obj, batch, bindings, checked, quarantine, accepted, result)
    versions = _version_columns(obj)
    if versions:  # the keys (versions) that more than one loadable row holds
        conn.execute(
            f"CREATE TEMP TABLE {repeated} AS SELECT {idents(versions)}, count(*) - 1 AS _extra "
            f"FROM {checked} WHERE {accepted} GROUP BY ALL HAVING count(*) > 1"
        )
    superseded = f"(SELECT coalesce(sum(_extra), 0) FROM {repeated})" if versions else "0"
    row = conn.execute(
        f"SELECT (SELECT count(*) FROM {checked} WHERE {accepted}), {superseded}, "
        f"(SELECT count(*) FILTER (NOT _loaded) FROM {quarantine}), "
        f"(SELECT count(*) FILTER (_loaded) FROM {quarantine}), "
        f"(SELECT count(*) FROM {checked} WHERE {FAILED_COLUMN})"
    ).fetchone()
    assert row is not None
    accepted_rows, result.rows_duplicate, result.rows_quarantined, result.rows_warned, invalid = (
        int(v) for v in row
    )
    result.rows_loaded = accepted_rows - result.rows_duplicate
    result.rows_invalid = invalid + batch.manifest.rows_malformed
    if result.failed_checks:
        # a failed batch check fails every record of the batch (each carries its reason)
        result.rows_invalid = result.rows_in
    _create_load_view(
        conn, obj, checked, load, accepted, repeated if result.rows_duplicate else None
    )
    return result


def _check_rows_read(
    conn: duckdb.DuckDBPyConnection, batch: StagedBatch, checked: str, result: BatchValidation
) -> None:
    """A batch kept as delivered bytes is split into rows again on every read: it must give
    the rows it gave when it was staged (a changed CSV reader, or bytes changed in the lake,
    would otherwise load other rows silently)."""
    row = conn.execute(f"SELECT count(*) FROM {checked}").fetchone()
    read = int(row[0]) if row else 0
    if read == batch.manifest.rows:
        return
    result.drop(conn)
    raise ContractViolation(
        f"batch {batch.batch_id} ({batch.manifest.source_file}): its staged file "
        f"{batch.data_path.name} reads as {read} row(s) now but gave {batch.manifest.rows} when "
        f"it was staged; parse it again with `penstock rebuild --restage --select "
        f"{batch.manifest.object}`",
        object=batch.manifest.object,
        batch_id=batch.batch_id,
        file=str(batch.data_path),
    )


def _version_columns(obj: ObjectSpec) -> list[str]:
    """The columns that tell one loadable row from another in a batch; rows equal in them are
    duplicates and collapse to one. merge: the key. scd2 dated by order_by: the key and the
    order_by value (each distinct date is a version of its own). No key: nothing collapses."""
    if not obj.key:
        return []
    if obj.versions_by_order_by and obj.order_by:
        return [*obj.key, obj.order_by]
    return list(obj.key)


def _accepted_condition(obj: ObjectSpec, batch_check_failed: bool) -> str:
    """Which validated rows go on to load (the others are quarantined)."""
    if obj.on_invalid == "warn":
        if obj.load in ("merge", "scd2") and obj.key:
            # a row without its key cannot be matched, nor one without order_by be ordered
            needed = [*obj.key, *([obj.order_by] if obj.order_by else [])]
            return " AND ".join(f"{ident(k)} IS NOT NULL" for k in needed)
        return "true"
    if batch_check_failed:
        return "false"
    return f"NOT {FAILED_COLUMN}"


def _create_load_view(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    checked: str,
    load: str,
    accepted: str,
    repeated: str | None,
) -> None:
    """The rows to load. Where keys repeat (`repeated` holds them), the window that picks
    each key's winner runs over those keys' rows only; every other row loads as it is.

    The winner is the greatest order_by, at a tie the later record. For SCD2 dated by
    order_by, the window runs per key and order_by value, so every dated version is kept and
    only rows with the same key and date collapse (the later record wins).
    """
    accepted_rows = (
        f"SELECT {idents(obj.columns)}, rowid + 1 AS {ORDINAL} FROM {checked} WHERE {accepted}"
    )
    versions = _version_columns(obj)
    if not versions or repeated is None:
        # a view: an initial load or an append reads it once, straight into the target table
        conn.execute(f"CREATE TEMP VIEW {load} AS {accepted_rows}")
        return
    by_value = obj.order_by and obj.order_by not in versions
    order = f"a.{ident(obj.order_by)} DESC NULLS LAST, " if by_value and obj.order_by else ""
    same = " AND ".join(f"a.{ident(v)} IS NOT DISTINCT FROM r.{ident(v)}" for v in versions)
    conn.execute(
        f"""
        CREATE TEMP VIEW {load} AS
        WITH a AS ({accepted_rows})
        SELECT * FROM (SELECT * FROM a ANTI JOIN {repeated} r ON {same})
        UNION ALL
        SELECT * FROM (
            SELECT * FROM a SEMI JOIN {repeated} r ON {same}
            QUALIFY row_number() OVER (PARTITION BY {idents(versions, "a.")}
                                       ORDER BY {order}a.{ORDINAL} DESC) = 1
        )
        """
    )


def _create_quarantine_table(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    batch: StagedBatch,
    bindings: Sequence[ColumnBinding],
    checked: str,
    quarantine: str,
    accepted: str,
    result: BatchValidation,
) -> None:
    """Quarantined rows keep their raw values as text, their reasons and record number.

    `_loaded` tells a row held back (false) from one that broke the contract but loads anyway
    under on_invalid warn (true): warn records every failing row, not only those held back.
    """
    raw = ", ".join(
        f"{raw_text_sql(ident(b.raw_alias), b.stage_type)} AS {ident(b.name)}" for b in bindings
    )
    nulls = ", ".join(f"NULL::VARCHAR AS {ident(b.name)}" for b in bindings)
    reasons = REASONS_COLUMN
    if result.failed_checks:
        extra = ", ".join(literal(f) for f in result.failed_checks)
        reasons = f"list_concat({REASONS_COLUMN}, [{extra}])"
    held_back = f"NOT coalesce(({accepted}), false)"
    recorded = f"{FAILED_COLUMN} OR {held_back}" if obj.on_invalid == "warn" else held_back
    failing = (
        f"SELECT {raw}, {reasons}::VARCHAR[] AS _reasons, NOT ({held_back}) AS _loaded, "
        f"rowid + 1 AS {ORDINAL} FROM {checked} WHERE {recorded}"
    )
    conn.execute(
        f"""
        CREATE TEMP TABLE {quarantine} AS
        SELECT * FROM (
            SELECT * EXCLUDE ({ORDINAL}), NULL::VARCHAR AS _raw_line, NULL::VARCHAR AS _error
            FROM ({with_record_numbers_sql(batch, failing)})
            UNION ALL BY NAME
            SELECT {nulls}, [_reason]::VARCHAR[] AS _reasons, false AS _loaded,
                   _row_number, _raw_line, _error
            FROM ({rejects_sql(batch)})
        ) ORDER BY _row_number
        """
    )
