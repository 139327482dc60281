"""Many small CSV files read packed into one (lake/packed_read.py): the same rows, record
numbers, malformed records and counts as reading each file alone, or the files are read alone."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import penstock
import penstock.lake.packed_read as packed_read
from penstock.lake.csv_read import CsvRead

from helpers import query, write_project

PROJECT = """
name: packed
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    load: merge
    columns:
      id:   {type: bigint, required: true}
      qty:  {type: integer, min: 0}
      note: {type: text}
"""

BOM = "\ufeff"


def _line(rng: random.Random, ident: int) -> str:
    """A record, now and then one that breaks the contract or has another number of fields."""
    kind = rng.random()
    if kind < 0.06:
        return f"{ident},{rng.randint(0, 9)}"  # a field missing: malformed
    if kind < 0.12:
        return f"{ident},{rng.randint(0, 9)},x,extra"  # a field too many: malformed
    if kind < 0.18:
        return f"{ident},minus one,bad qty"  # a value the contract refuses: quarantined
    if kind < 0.22:
        return f"{ident},-3,negative"
    if kind < 0.26:
        return ",4,no id"
    if kind < 0.32:
        return f'{ident},{rng.randint(0, 99)},"a, ""quoted"" note"'  # quotes closed on the line
    return f"{ident},{rng.randint(0, 99)},n{ident % 7}"


def landing(seed: int, *, spoil: str | None = None) -> dict[str, str | bytes]:
    """Small files of `id,qty,note` with LF or CRLF line breaks, a byte-order mark, a last line
    without a line break, a header alone, keys repeated across files; `spoil` adds a file that
    cannot be packed to the LF files' unit (a quoted value over two lines, a blank line, a bare
    CR, a byte that is not UTF-8)."""
    rng = random.Random(seed)
    files: dict[str, str | bytes] = {}
    for n in range(24):
        crlf = n % 5 == 4
        rows = [_line(rng, rng.randint(1, 60)) for _ in range(rng.randint(0, 12))]
        eol = "\r\n" if crlf else "\n"
        text = eol.join(["id,qty,note", *rows])
        if rng.random() < 0.7 or not rows:
            text += eol
        if n % 7 == 3:
            text = BOM + text
        files[f"landing/orders/part_{n:03d}.csv"] = text
    spoilt = {
        "quote": 'id,qty,note\n5,1,"a\nb"\n6,2,c\n',
        "blank": "id,qty,note\n5,1,a\n\n6,2,c\n",
        "cr": "id,qty,note\n5,1,a\r6,2,c\n",
        "latin1": b"id,qty,note\n5,1,caf\xe9\n6,2,c\n",
    }
    if spoil is not None:
        files["landing/orders/part_900.csv"] = spoilt[spoil]
    return files


def outcome(root: Path) -> dict[str, Any]:
    """What a run made of the files: the table, the quarantine (record numbers, raw lines,
    errors) and the ledger's counts per file."""
    return {
        "orders": sorted(query(root, "SELECT id, qty, note, _batch_id FROM orders")),
        "quarantine": sorted(
            query(
                root,
                "SELECT _batch_id, _row_number, id, qty, note, _reasons, _raw_line, _error, "
                "_loaded FROM quarantine.orders",
            ),
            key=repr,
        ),
        "loads": sorted(
            query(
                root,
                "SELECT source_file, rows_in, rows_loaded, rows_quarantined, rows_duplicate, "
                "rows_inserted, rows_updated, rows_unchanged FROM penstock.loads",
            )
        ),
    }


def spy_on_packing(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each packed read was kept (True) or given up (False), as they come."""
    kept: list[bool] = []
    original = packed_read.packed_rows_sql

    def spy(*args: Any, **kwargs: Any) -> str | None:
        rows = original(*args, **kwargs)
        kept.append(rows is not None)
        return rows

    monkeypatch.setattr("penstock.quality.chunk_read.packed_rows_sql", spy)
    return kept


def run_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str | bytes]
) -> tuple[dict[str, Any], dict[str, Any], list[bool]]:
    """The same landing run packed and, in another project, with every file read alone; and
    whether each packed read was kept (True) or given up (False)."""
    kept = spy_on_packing(monkeypatch)
    packed = write_project(tmp_path / "packed", PROJECT, files)
    assert penstock.run(packed).status in ("success", "warning")
    with monkeypatch.context() as alone:
        alone.setattr(packed_read, "PACK_FILES_UNDER", 0)
        single = write_project(tmp_path / "single", PROJECT, files)
        assert penstock.run(single).status in ("success", "warning")
    return outcome(packed), outcome(single), kept


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_packed_read_loads_what_reading_each_file_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    packed, single, kept = run_both(tmp_path, monkeypatch, landing(seed))
    assert kept and all(kept)  # the LF files and the CRLF files: two units, both packed
    assert packed == single
    malformed = [q for q in packed["quarantine"] if q[6] is not None]
    assert malformed, "the files hold malformed records"
    # a malformed record keeps its line as the file has it, and its record number
    assert all(q[1] is not None and "," in q[6] for q in malformed)


@pytest.mark.parametrize("spoil", ["quote", "blank", "cr", "latin1"])
def test_a_file_that_cannot_be_packed_has_its_unit_read_file_by_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spoil: str
) -> None:
    packed, single, kept = run_both(tmp_path, monkeypatch, landing(11, spoil=spoil))
    assert False in kept  # the unit holding the spoilt file was given up
    assert packed == single


def test_a_rebuild_reads_the_stage_packed_and_gets_the_same_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_project(tmp_path / "p", PROJECT, landing(5))
    with monkeypatch.context() as alone:
        alone.setattr(packed_read, "PACK_FILES_UNDER", 0)
        assert penstock.run(root).status in ("success", "warning")
    before = outcome(root)
    kept = spy_on_packing(monkeypatch)
    penstock.rebuild(root)
    assert kept and all(kept)
    after = outcome(root)
    assert after["orders"] == before["orders"]
    assert after["quarantine"] == before["quarantine"]
    assert not list((root / "lake" / "stage" / "orders").glob(".tmp-packed-*"))


READ = CsvRead(
    names=("id", "qty", "note"),
    skip=1,
    new_line="\n",
    delimiter=",",
    quote='"',
    escape='"',
    encoding="utf-8",
)


class _Batch:
    """What `_pack` reads of a staged batch: its data file."""

    def __init__(self, path: Path) -> None:
        self.data_path = path


def pack(tmp_path: Path, *contents: bytes, read: CsvRead = READ) -> Any:
    batches = []
    for n, content in enumerate(contents):
        path = tmp_path / f"{n}.csv"
        path.write_bytes(content)
        batches.append(_Batch(path))
    return packed_read._pack(batches, read, tmp_path / "packed.csv")  # type: ignore[arg-type]


def test_pack_keeps_the_first_header_and_numbers_each_file_s_lines(tmp_path: Path) -> None:
    packed = pack(tmp_path, b"id,qty,note\n1,2,a\n2,3,b\n", b"id,qty,note\n", b"id,qty,note\n3,4,c")
    assert packed.path.read_bytes() == b"id,qty,note\n1,2,a\n2,3,b\n3,4,c\n"
    assert packed.starts == [2, 4, 4]  # the packed file's line of each file's first data line
    assert packed.lines == [2, 0, 1]  # a last line without a line break counts


@pytest.mark.parametrize(
    "content",
    [
        b'id,qty,note\n1,2,"a\n"\n',  # a quoted value over two lines
        b'id,qty,note\n1,2,"a""b\n',  # an odd number of quotes on a line
        b"id,qty,note\n1,2,a\n\n2,3,b\n",  # a blank line: DuckDB skips it, not a record
        b"id,qty,note\n\n1,2,a\n",  # a blank first data line
        b"id,qty,note\n1,2,a\r2,3,b\n",  # a bare CR in a file of LF line breaks
        b"id,qty,note\n1,2,\x00\n",  # a NUL byte
    ],
)
def test_pack_refuses_what_reads_differently_packed(tmp_path: Path, content: bytes) -> None:
    assert pack(tmp_path, b"id,qty,note\n1,2,a\n", content) is None
    assert not (tmp_path / "packed.csv").exists()


def test_pack_refuses_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    assert pack(tmp_path, b"id,qty,note\n1,2,a\n", b"id,qty,note\n1,2,caf\xe9\n") is None
    assert not (tmp_path / "packed.csv").exists()


def test_a_byte_order_mark_goes_with_the_skipped_lines_or_the_file_is_refused(
    tmp_path: Path,
) -> None:
    packed = pack(tmp_path, b"id,qty,note\n1,2,a\n", b"\xef\xbb\xbfid,qty,note\n2,3,b\n")
    assert packed.path.read_bytes() == b"id,qty,note\n1,2,a\n2,3,b\n"
    headerless = replace(READ, skip=0)
    assert pack(tmp_path, b"1,2,a\n", b"\xef\xbb\xbf2,3,b\n", read=headerless) is None


def test_crlf_files_pack_when_every_break_is_crlf(tmp_path: Path) -> None:
    crlf = replace(READ, new_line="\r\n")
    packed = pack(tmp_path, b"id,qty,note\r\n1,2,a\r\n", b"id,qty,note\r\n2,3,b", read=crlf)
    assert packed.path.read_bytes() == b"id,qty,note\r\n1,2,a\r\n2,3,b\r\n"
    assert pack(tmp_path, b"id,qty,note\r\n1,2,a\n", read=crlf) is None


def test_a_packed_read_that_does_not_add_up_is_given_up_without_a_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the rows of the packed read do not account for the files' lines, the unit is
    read file by file, and none of the packed read's tables is left for that read to meet."""
    original = packed_read._rows_per_file
    left: list[list[str]] = []

    def not_adding_up(conn: Any, *args: Any) -> None:
        original(conn, *args)  # its rejects table is made, then the rows do not add up

    def tables_after(*args: Any, **kwargs: Any) -> str | None:
        conn, rejects_table, rows_table = args[0], args[3], args[4]
        rows = packed_read.packed_rows_sql(*args, **kwargs)
        names = {r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        mine = {rejects_table, f"{rejects_table}_scan", f"{rejects_table}_packed", rows_table}
        left.append(sorted(names & {*mine, f"{rows_table}_raw"}))
        return rows

    monkeypatch.setattr(packed_read, "_rows_per_file", not_adding_up)
    monkeypatch.setattr("penstock.quality.chunk_read.packed_rows_sql", tables_after)
    files = landing(7)
    given_up = write_project(tmp_path / "given_up", PROJECT, files)
    assert penstock.run(given_up).status in ("success", "warning")
    assert left == [[], []]  # two units (LF and CRLF files), each given up without a trace
    monkeypatch.setattr(packed_read, "PACK_FILES_UNDER", 0)
    single = write_project(tmp_path / "single", PROJECT, files)
    assert penstock.run(single).status in ("success", "warning")
    assert outcome(given_up) == outcome(single)


def test_quoted_values_pack_when_every_line_closes_its_quotes(tmp_path: Path) -> None:
    quoted = b'"id","qty","note"\n1,2,"a, ""b"""\n'
    packed = pack(tmp_path, b"id,qty,note\n0,1,x\n", quoted)
    assert packed.path.read_bytes() == b'id,qty,note\n0,1,x\n1,2,"a, ""b"""\n'
    backslash = replace(READ, escape="\\")
    assert (
        pack(tmp_path, b"id,qty,note\n0,1,x\n", b'id,qty,note\n1,2,"a\\"b\\"c"\n', read=backslash)
        is None
    )
