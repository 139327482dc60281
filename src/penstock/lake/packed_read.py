"""Many small staged CSV files read as one: their lines packed into a single file.

DuckDB's read of a list of files pays about half a millisecond a file before any row: opening
it, and storing its rejects. With small files that is more than reading their rows. 1,000
files of 100 rows took 0.60-0.65 s as a list and 0.10 s packed into one file, and the
validation statement over them 0.96-1.02 s against 0.22-0.24 s (bench/README.md).

A read unit (`read_units`: files staged with the same settings) of small files is therefore
read as one file when that read provably splits every file as reading it alone would. Every
file must be plain UTF-8 text (`compression none`) with:

* an even number of quote characters on every line (with quote and escape the same
  character, as RFC 4180 has it), so that no quoted value runs past the end of a line;
* no NUL byte, no comment setting, no blank line, and line breaks that are all the unit's
  `new_line`;
* a byte-order mark only when the unit skips lines (it then goes with them).

Each physical line is then one record, split without regard to the lines before it. The packed
file holds the first file's skipped lines, then every file's lines after its own skipped lines
(a line break added after a last line that has none).

The rows come out in the packed file's order, so a file's rows are a run of consecutive rows.
Each rejected line is mapped back to its file (`file_id`, the file's place in its unit) and to
its line number in that file, as the read of the list would have stored it. A file's rows are
its data lines less its rejected lines. When the counts do not add up to the rows read, nothing
of the packed read is kept, and the caller reads the list as usual.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import duckdb

from penstock.lake.atomic import TMP_PREFIX
from penstock.lake.csv_read import CsvRead
from penstock.lake.read import NOW, SEQ, extraction_time_sql
from penstock.lake.stage import StagedBatch

# A file this large or larger is read as itself: its per-file cost is small beside its rows,
# and packing would copy its bytes.
PACK_FILES_UNDER = 1 << 20
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class _Packed:
    path: Path
    starts: list[int]  # each file's first data line, as a line number of the packed file
    lines: list[int]  # each file's data lines


def packable(batches: Sequence[StagedBatch]) -> bool:
    """Whether a read unit of `batches` is worth packing, before any byte is read: two or more
    plain small CSV files read with settings the packing keeps."""
    if len(batches) < 2:
        return False
    read = batches[0].manifest.csv_read
    if read is None or read.comment is not None or read.encoding.lower() not in ("utf-8", "utf8"):
        return False
    if read.new_line not in ("\n", "\r\n") or len(read.quote) != 1:
        return False
    try:
        return all(b.data_path.stat().st_size < PACK_FILES_UNDER for b in batches)
    except OSError:
        return False


def packed_rows_sql(
    conn: duckdb.DuckDBPyConnection,
    batches: Sequence[StagedBatch],
    seqs: Sequence[int],
    rejects_table: str,
    rows_table: str,
) -> str | None:
    """Read the unit's files packed (module docstring) into the temp table `rows_table` (their
    columns, `SEQ` and `NOW`, in file order) and their rejects into `rejects_table` as the
    read of the list would store them; a SELECT of `rows_table`. None, with nothing left
    behind, when the files cannot be packed or the packed read does not account for them."""
    read = batches[0].manifest.csv_read
    assert read is not None
    target = batches[0].data_path.parent.parent / f"{TMP_PREFIX}packed-{uuid.uuid4().hex}.csv"
    raw, packed_rejects = f"{rows_table}_raw", f"{rejects_table}_packed"
    kept = False
    try:
        packed = _pack(batches, read, target)
        if packed is None:
            return None
        conn.execute(
            f"CREATE TEMP TABLE {raw} AS SELECT * FROM "
            + read.sql(
                str(target), rejects_table=packed_rejects, rejects_scan=f"{rejects_table}_scan"
            )
        )
        rows = _rows_per_file(conn, read, packed, raw, packed_rejects, rejects_table)
        if rows is None:
            return None
        firsts = [0, *accumulate(rows[:-1])]  # each file's first row, as a rowid
        ranges = ", ".join(
            f"({first}, {seq}, {now})"
            for first, seq, now, count in zip(
                firsts, seqs, map(extraction_time_sql, batches), rows, strict=True
            )
            if count
        )
        if ranges:
            conn.execute(
                f"CREATE TEMP TABLE {rows_table} AS SELECT r.*, m.seq AS {SEQ}, m.now AS {NOW} "
                f"FROM {raw} r ASOF JOIN (VALUES {ranges}) m(first, seq, now) "
                f"ON r.rowid >= m.first ORDER BY r.rowid"
            )
        else:
            conn.execute(
                f"CREATE TEMP TABLE {rows_table} AS SELECT *, NULL::INTEGER AS {SEQ}, "
                f"NULL::TIMESTAMPTZ AS {NOW} FROM {raw}"
            )
        kept = True
        return f"SELECT * FROM {rows_table}"
    except (duckdb.Error, OSError):
        return None
    finally:
        dropped = [raw, packed_rejects]
        if not kept:  # the read of the list makes its own
            dropped += [rows_table, rejects_table, f"{rejects_table}_scan"]
        for name in dropped:
            conn.execute(f"DROP TABLE IF EXISTS {name}")
        target.unlink(missing_ok=True)


def _pack(batches: Sequence[StagedBatch], read: CsvRead, target: Path) -> _Packed | None:
    """Write the packed file, a file at a time (one file's bytes in memory); None, and no
    file, when a file breaks a condition."""
    starts: list[int] = []
    lines: list[int] = []
    line = read.skip + 1
    new_line = read.new_line.encode()
    with target.open("wb") as out:
        for n, batch in enumerate(batches):
            data = batch.data_path.read_bytes()
            head = _data_start(data, read)
            if head is None:
                break
            body = data[head:]
            if body and not body.endswith(new_line):
                body += new_line
            out.write(data[:head] + body if n == 0 else body)
            count = body.count(new_line)
            starts.append(line)
            lines.append(count)
            line += count
    if len(starts) < len(batches):
        target.unlink()
        return None
    return _Packed(target, starts, lines)


def _data_start(data: bytes, read: CsvRead) -> int | None:
    """Where the file's data lines start (after its `skip` lines); None when the file breaks
    a condition of the module's docstring."""
    new_line = read.new_line.encode()
    quote, escape = read.quote.encode(), read.escape.encode()
    if b"\x00" in data or b"\n" + new_line in data or not _lines_close_quotes(data, quote, escape):
        return None
    if data.startswith(_BOM) and not read.skip:
        return None
    try:
        data.decode("utf-8")
    except UnicodeError:
        return None
    if new_line == b"\r\n":
        if not data.count(b"\r") == data.count(b"\r\n") == data.count(b"\n"):
            return None
    elif b"\r" in data:
        return None
    head = 0
    for _ in range(read.skip):
        end = data.find(new_line, head)
        if end < 0:
            return None
        head = end + len(new_line)
    if data.startswith(new_line, head):
        return None  # a blank first data line
    return head


def _lines_close_quotes(data: bytes, quote: bytes, escape: bytes) -> bool:
    """Whether every line of `data` holds an even number of quote characters, so that no
    quoted value runs past the end of a line (none, when the escape character is another one
    and appears: an escaped quote is not counted then)."""
    if quote not in data:
        return True
    if escape != quote and escape and escape in data:
        return False
    q = re.escape(quote)
    odd = re.compile(rb"^[^%s\n]*(?:%s[^%s\n]*%s[^%s\n]*)*%s[^%s\n]*$" % ((q,) * 7), re.M)
    return odd.search(data) is None


def _rows_per_file(
    conn: duckdb.DuckDBPyConnection,
    read: CsvRead,
    packed: _Packed,
    raw: str,
    packed_rejects: str,
    rejects_table: str,
) -> list[int] | None:
    """Each file's rows: its data lines less its rejected lines. The packed read's rejects go
    into `rejects_table` with each file's place and line numbers; None when a rejected line
    falls outside its file's data lines or the rows do not add up to those read."""
    # a file without data lines starts where the next one does: it holds no reject
    starts = ", ".join(
        f"({k}, {start})"
        for k, (start, lines) in enumerate(zip(packed.starts, packed.lines, strict=True))
        if lines
    )
    if not starts:
        return [0] * len(packed.lines) if _count(conn, raw) == 0 else None
    try:
        conn.execute(
            f"CREATE TEMP TABLE {rejects_table} AS SELECT r.* REPLACE (s.k AS file_id, "
            f"r.line - s.start + {read.skip + 1} AS line) FROM {packed_rejects} r "
            f"ASOF JOIN (VALUES {starts}) s(k, start) ON r.line >= s.start"
        )
    except duckdb.CatalogException:
        rejected: dict[int, int] = {}  # nothing rejected: DuckDB made no rejects table
    else:
        found = conn.execute(
            f"SELECT file_id, count(DISTINCT line), min(line), max(line) FROM {rejects_table} "
            "GROUP BY ALL"
        ).fetchall()
        first = read.skip + 1
        for k, _, low, high in found:
            if not first <= low <= high < first + packed.lines[k]:
                return None
        rejected = {int(k): int(n) for k, n, _, _ in found}
    rows = [lines - rejected.get(k, 0) for k, lines in enumerate(packed.lines)]
    if _count(conn, raw) != sum(rows):
        return None
    return rows


def _count(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else -1
