"""SQL that reads staged batches back, and maps rows to their record number in the source file.

Several batches of one object are read together (a micro-batch, or chunk): each gets its place
in the chunk, `SEQ` (1..n), and its extraction time, `NOW`. Batches staged alike (CSV bytes
read with the same settings, or Parquet with the same schema) are one read over their files.

Staged rows are stored in file order without a row-number column: read into a table, a batch's
rows stay together and in file order, so a row's ordinal in its batch is its rowid less the
batch's first rowid, plus 1, which is free to read. Its record number in the source file is the
ordinal shifted past the malformed records (kept apart in the rejects file) that stood before
it. Reject j (1-based, at record q_j) has g_j = q_j - j good rows before it, so good row k
sits at record k + #{j : g_j < k}. That mapping is one ASOF join per batch, applied only to the
rows that need a record number (the quarantined ones), never to the whole chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

from penstock.errors import ContractViolation
from penstock.lake.stage import StagedBatch
from penstock.sql import literal

# Every column or alias penstock's SQL adds next to the staged (source) columns starts with
# this prefix; a source column may not, so a source column can be named anything else.
RESERVED_PREFIX = "__penstock_"
ORDINAL = f"{RESERVED_PREFIX}ordinal"
SEQ = f"{RESERVED_PREFIX}seq"  # a batch's place in its chunk, 1..n
NOW = f"{RESERVED_PREFIX}now"  # a batch's extraction time (TIMESTAMPTZ)
MALFORMED = "malformed"  # a record the parser could not split (the rejects' default reason)
ENCODING = "encoding"  # a record holding bytes that are not valid in the file's encoding
# what DuckDB's multi-file readers add: the file's index in the list read
_FILE_INDEX = "file_index"
# the column naming each row's file, where a shared rejects file is read
_FILENAME = f"{RESERVED_PREFIX}file"


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


def read_units(batches: Sequence[StagedBatch]) -> list[list[int]]:
    """The batches (their indexes, in order) that one read can take together: CSV bytes read
    with the same settings, or Parquet files of the same schema. A batch whose source has a
    column named like the readers' file index is read alone (the column would hide it)."""
    units: dict[object, list[int]] = {}
    alone: list[list[int]] = []
    for index, batch in enumerate(batches):
        manifest = batch.manifest
        # a batch of several parts (a glob) is read alone: the file index names parts, not batches
        if "*" in manifest.data_file or any(c.lower() == _FILE_INDEX for c in manifest.schema):
            alone.append([index])
            continue
        key: object = (
            ("csv", manifest.csv_read)
            if manifest.csv_read is not None
            else ("parquet", tuple(manifest.schema.items()))
        )
        units.setdefault(key, []).append(index)
    return sorted([*units.values(), *alone], key=lambda unit: unit[0])


def _per_file(values: Sequence[str]) -> str:
    """The value of the file being read, from the reader's file index."""
    if len(values) == 1:
        return values[0]
    return f"list_extract([{', '.join(values)}], {_FILE_INDEX}::BIGINT + 1)"


def extraction_time_sql(batch: StagedBatch) -> str:
    """The batch's extraction time as a TIMESTAMPTZ literal."""
    return f"TIMESTAMPTZ {literal(batch.manifest.extracted_at.isoformat(sep=' '))}"


def staged_rows_sql(batches: Sequence[StagedBatch], seqs: Sequence[int], rejects_table: str) -> str:
    """A SELECT of the raw staged columns of `batches` (one read unit, see `read_units`) plus
    `SEQ` (from `seqs`) and `NOW`, the batches in the order given and each batch's rows in
    file order. CSV bytes are read with the settings they were staged with; the records they
    reject land in `rejects_table` (and `<rejects_table>_scan`), temp tables for the caller to
    drop, as at staging."""
    paths = [literal(str(b.data_path)) for b in batches]
    files = paths[0] if len(paths) == 1 else f"[{', '.join(paths)}]"
    read = batches[0].manifest.csv_read
    if read is not None:
        options = {"rejects_table": rejects_table, "rejects_scan": f"{rejects_table}_scan"}
        source = f"read_csv({files}, {', '.join(read.options(**options))})"
    else:
        source = f"read_parquet({files})"
    seq = _per_file([str(s) for s in seqs])
    now = _per_file([extraction_time_sql(b) for b in batches])
    return f"SELECT *, {seq} AS {SEQ}, {now} AS {NOW} FROM {source}"


def rejects_sql(batches: Sequence[StagedBatch], seqs: Sequence[int]) -> str:
    """A SELECT of the records staging could not read as rows, of every batch: `SEQ`,
    `_row_number`, `_raw_line`, `_error`, `_reason` (`malformed` or `encoding`; a rejects
    file written before the column existed holds malformed records only)."""
    held = [(b, s) for b, s in zip(batches, seqs, strict=True) if b.manifest.rows_malformed]
    if not held:
        return (
            f"SELECT NULL::INTEGER AS {SEQ}, NULL::BIGINT AS _row_number, "
            "NULL::VARCHAR AS _raw_line, NULL::VARCHAR AS _error, NULL::VARCHAR AS _reason "
            "WHERE false"
        )
    own = [(b, s) for b, s in held if not b.rejects_shared]
    shared = [(b, s) for b, s in held if b.rejects_shared]
    parts = [_own_rejects_sql(own)] if own else []
    if shared:
        parts.append(_shared_rejects_sql(shared))
    return " UNION ALL ".join(parts)


def _own_rejects_sql(held: Sequence[tuple[StagedBatch, int]]) -> str:
    """The records of batches that have their own rejects file."""
    with_reason = [_has_reason(b) for b, _ in held]
    paths = [literal(str(b.rejects_path)) for b, _ in held]
    files = paths[0] if len(paths) == 1 else f"[{', '.join(paths)}]"
    if all(with_reason):
        source, reason = f"read_parquet({files})", "_reason"
    elif not any(with_reason):
        source, reason = f"read_parquet({files})", literal(MALFORMED)
    else:
        source = f"read_parquet({files}, union_by_name = true)"
        reason = f"coalesce(_reason, {literal(MALFORMED)})"
    seq = _per_file([str(s) for _, s in held])
    return (
        f"SELECT {seq}::INTEGER AS {SEQ}, _row_number::BIGINT AS _row_number, _raw_line, "
        f"_error, {reason}::VARCHAR AS _reason FROM {source}"
    )


def _shared_rejects_sql(held: Sequence[tuple[StagedBatch, int]]) -> str:
    """The records of batches whose rejects file is shared (each file read once, its rows
    picked by `_batch_id` *and* file: a file may also hold rows of batches not asked for, or
    of another parse of an asked batch, a restaged one or one a parallel part staged twice)."""
    each = [str(b.rejects_path) for b, _ in held]  # once a batch: a normalised path each
    paths = sorted(set(each))
    files = f"[{', '.join(map(literal, paths))}]"
    ids = ", ".join(
        f"({literal(b.batch_id)}, {literal(path)}, {s})"
        for (b, s), path in zip(held, each, strict=True)
    )
    return (
        f"SELECT k.seq::INTEGER AS {SEQ}, r._row_number::BIGINT AS _row_number, r._raw_line, "
        f"r._error, r._reason::VARCHAR AS _reason "
        f"FROM read_parquet({files}, filename = {literal(_FILENAME)}) r "
        f"JOIN (VALUES {ids}) k(batch_id, path, seq) "
        f"ON r._batch_id = k.batch_id AND r.{_FILENAME} = k.path"
    )


def _has_reason(batch: StagedBatch) -> bool:
    """Whether the batch's rejects file has the `_reason` column: every one a version-4
    manifest names does (the file is read only for batches staged before)."""
    if batch.manifest.version >= 4:
        return True
    import pyarrow.parquet as pq

    return "_reason" in pq.read_schema(batch.rejects_path).names


def with_record_numbers_sql(
    batches: Sequence[StagedBatch], seqs: Sequence[int], relation: str
) -> str:
    """`relation` (which has `SEQ` and `ORDINAL`) plus `_row_number`, the record number in
    its batch's file."""
    if not any(b.manifest.rows_malformed for b in batches):
        return f"SELECT *, {ORDINAL} AS _row_number FROM ({relation}) rel"
    return f"""
        SELECT rel.*, rel.{ORDINAL} + coalesce(r.c, 0) AS _row_number
        FROM ({relation}) rel
        ASOF LEFT JOIN (
            SELECT {SEQ}, g, max(c) AS c FROM (
                SELECT {SEQ},
                       _row_number - row_number() OVER (PARTITION BY {SEQ} ORDER BY _row_number)
                           AS g,
                       row_number() OVER (PARTITION BY {SEQ} ORDER BY _row_number) AS c
                FROM ({rejects_sql(batches, seqs)})
            ) GROUP BY {SEQ}, g
        ) r ON rel.{SEQ} = r.{SEQ} AND rel.{ORDINAL} > r.g
    """
