"""SQL that reads a staged batch back, and maps rows to their record number in the source file.

Staged rows are stored in file order without a row-number column: read into a table, a row's
ordinal is its rowid + 1, which is free to read. Its record number in the source file is the
ordinal shifted past the malformed records (kept apart in the rejects file) that stood before
it. Reject j (1-based, at record q_j) has g_j = q_j - j good rows before it, so good row k
sits at record k + #{j : g_j < k}. That mapping is one ASOF join, applied only to the rows
that need a record number (the quarantined ones), never to the whole batch.
"""

from __future__ import annotations

from penstock.errors import ContractViolation
from penstock.lake.stage import StagedBatch
from penstock.sql import literal

# Every column or alias penstock's SQL adds next to the staged (source) columns starts with
# this prefix; a source column may not, so a source column can be named anything else.
RESERVED_PREFIX = "__penstock_"
ORDINAL = f"{RESERVED_PREFIX}ordinal"
MALFORMED = "malformed"  # a record the parser could not split (the rejects' default reason)
ENCODING = "encoding"  # a record holding bytes that are not valid in the file's encoding


def check_source_columns(batch: StagedBatch) -> None:
    """Refuse a batch whose source has a column named with the reserved prefix."""
    for column in batch.manifest.schema:
        if column.lower().startswith(RESERVED_PREFIX):
            raise ContractViolation(
                f"{batch.manifest.source_file}: column '{column}' starts with "
                f"'{RESERVED_PREFIX}', which is reserved for penstock's own columns; "
                f"rename it in the source",
                file=batch.manifest.source_file,
                column=column,
                batch_id=batch.batch_id,
                object=batch.manifest.object,
            )


def staged_rows_sql(batch: StagedBatch, rejects_table: str) -> str:
    """A SELECT yielding the raw staged columns, rows in file order (a table created from it
    numbers them: `ORDINAL` is its rowid + 1). A CSV batch kept as delivered is read with the
    settings it was staged with; the records it rejects land in `rejects_table` (and
    `<rejects_table>_scan`), temp tables for the caller to drop, as at staging."""
    path = str(batch.data_path)
    read = batch.manifest.csv_read
    if read is not None:
        options = {"rejects_table": rejects_table, "rejects_scan": f"{rejects_table}_scan"}
        return f"SELECT * FROM {read.sql(path, **options)}"
    return f"SELECT * FROM read_parquet({literal(path)})"


def with_record_numbers_sql(batch: StagedBatch, relation: str) -> str:
    """`relation` (which has `ORDINAL`) plus `_row_number`, the record number in the file."""
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
    """A SELECT of the records staging could not read as rows: `_row_number`, `_raw_line`,
    `_error`, `_reason` (`malformed` or `encoding`; a rejects file written before the column
    existed holds malformed records only)."""
    if batch.manifest.rows_malformed == 0:
        return (
            "SELECT NULL::BIGINT AS _row_number, NULL::VARCHAR AS _raw_line, "
            "NULL::VARCHAR AS _error, NULL::VARCHAR AS _reason WHERE false"
        )
    import pyarrow.parquet as pq

    path = batch.rejects_path
    reason = "_reason" if "_reason" in pq.read_schema(path).names else f"{literal(MALFORMED)}"
    return (
        f"SELECT _row_number::BIGINT AS _row_number, _raw_line, _error, "
        f"{reason}::VARCHAR AS _reason FROM read_parquet({literal(str(path))})"
    )
