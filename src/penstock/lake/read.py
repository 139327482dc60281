"""SQL that reads a staged batch back, with each row's record number in its source file.

Staged rows are stored in file order without a row-number column; the record number is the
Parquet row index shifted past the malformed records (kept apart in the rejects file) that
stood before it. Reject j (1-based, at record q_j) has g_j = q_j - j good rows before it, so
good row k sits at record k + #{j : g_j < k}: one ASOF join, no per-row Python.
"""

from __future__ import annotations

from penstock.lake.stage import StagedBatch
from penstock.sql import literal


def staged_rows_sql(batch: StagedBatch) -> str:
    """A SELECT yielding the raw staged columns plus `_row_number` (1-based record number)."""
    data = f"read_parquet({literal(str(batch.data_path))}, file_row_number = true)"
    if batch.manifest.rows_malformed == 0:
        return f"SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS _row_number FROM {data}"
    rejects = rejects_sql(batch)
    return f"""
        SELECT d.* EXCLUDE (file_row_number),
               d.file_row_number + 1 + coalesce(r.c, 0) AS _row_number
        FROM {data} d
        ASOF LEFT JOIN (
            SELECT g, max(c) AS c FROM (
                SELECT _row_number - row_number() OVER (ORDER BY _row_number) AS g,
                       row_number() OVER (ORDER BY _row_number) AS c
                FROM ({rejects})
            ) GROUP BY g
        ) r ON d.file_row_number + 1 > r.g
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
