"""SQL that reads a staged batch back, and maps rows to their record number in the source file.

Staged rows are stored in file order without a row-number column: a row's `_ordinal` is its
Parquet row index + 1, which is free to read. Its record number in the source file is the
ordinal shifted past the malformed records (kept apart in the rejects file) that stood before
it. Reject j (1-based, at record q_j) has g_j = q_j - j good rows before it, so good row k
sits at record k + #{j : g_j < k}. That mapping is one ASOF join, applied only to the rows
that need a record number (the quarantined ones), never to the whole batch.
"""

from __future__ import annotations

from penstock.lake.stage import StagedBatch
from penstock.sql import literal

ORDINAL = "_ordinal"


def staged_rows_sql(batch: StagedBatch) -> str:
    """A SELECT yielding the raw staged columns plus `_ordinal` (1-based, in file order)."""
    data = f"read_parquet({literal(str(batch.data_path))}, file_row_number = true)"
    return f"SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS {ORDINAL} FROM {data}"


def with_record_numbers_sql(batch: StagedBatch, relation: str) -> str:
    """`relation` (which has `_ordinal`) plus `_row_number`, the record number in the file."""
    if batch.manifest.rows_malformed == 0:
        return f"SELECT *, {ORDINAL} AS _row_number FROM ({relation}) rel"
    return f"""
        SELECT rel.*, rel.{ORDINAL} + coalesce(r.c, 0) AS _row_number
        FROM ({relation}) rel
        ASOF LEFT JOIN (
            SELECT g, max(c) AS c FROM (
                SELECT _row_number - row_number() OVER (ORDER BY _row_number) AS g,
                       row_number() OVER (ORDER BY _row_number) AS c
                FROM ({rejects_sql(batch)})
            ) GROUP BY g
        ) r ON rel.{ORDINAL} > r.g
    """


def rejects_sql(batch: StagedBatch) -> str:
    """A SELECT of the malformed records: `_row_number`, `_raw_line`, `_error`."""
    if batch.manifest.rows_malformed == 0:
        return (
            "SELECT NULL::BIGINT AS _row_number, NULL::VARCHAR AS _raw_line, "
            "NULL::VARCHAR AS _error WHERE false"
        )
    return (
        f"SELECT _row_number::BIGINT AS _row_number, _raw_line, _error "
        f"FROM read_parquet({literal(str(batch.rejects_path))})"
    )
