"""`csv: {encoding: windows-1252}`: Excel's CSV on Windows. Its bytes 0x80-0x9F are € ’ “ ” – —
and the like; DuckDB reads no Windows-1252, so the file is staged as UTF-8 and every value
loads as written. Read as latin-1, those bytes are control characters: a record holding one is
quarantined as `encoding` (pointing at windows-1252), never loaded as a control character."""

from __future__ import annotations

import gzip
from pathlib import Path

import penstock
from penstock.catalog import CsvOptions

from helpers import query, write_project

YML = """
name: excel
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  sales:
    source: landing
    files: "*.GLOB"
    csv: {encoding: ENCODING}
    columns:
      id:     {type: bigint, required: true}
      name:   {type: text}
      amount: {type: "decimal(8,2)"}
"""

TEXT = (
    "id,name,amount\r\n"
    "1,Café “Müller”,12.50\r\n"
    "2,Zoë’s €uro shop – open,7.25\r\n"
    "3,Ångström—™ Œuvre,3.00\r\n"
)


def project(tmp_path: Path, encoding: str, data: bytes, glob: str = "csv") -> Path:
    yml = YML.replace("GLOB", glob).replace("ENCODING", encoding)
    return write_project(tmp_path, yml, {f"landing/sales.{glob}": data})


def names(root: Path) -> list[tuple[int, str]]:
    return query(root, "SELECT id, name FROM sales ORDER BY id")


WANTED = [(1, "Café “Müller”"), (2, "Zoë’s €uro shop – open"), (3, "Ångström—™ Œuvre")]


def test_a_windows_1252_file_loads_every_character_as_written(tmp_path: Path) -> None:
    root = project(tmp_path, "windows-1252", TEXT.encode("cp1252"))
    result = penstock.run(root)
    assert result.status == "success", [f.error for f in result.failures]
    assert names(root) == WANTED
    # the stage holds the text as UTF-8, which a rebuild reads back alike
    (data,) = (root / "lake" / "stage" / "sales").glob("*/data.csv")
    assert data.read_bytes().decode("utf-8") == TEXT
    assert penstock.rebuild(root).status == "success"
    assert names(root) == WANTED


def test_compressed_and_aliased_alike(tmp_path: Path) -> None:
    root = project(tmp_path, "cp1252", gzip.compress(TEXT.encode("cp1252")), glob="csv.gz")
    assert penstock.run(root).status == "success"
    assert names(root) == WANTED
    assert CsvOptions.model_validate({"encoding": "CP1252"}).encoding == "windows-1252"


def test_a_cut_short_compressed_file_fails_naming_it(tmp_path: Path) -> None:
    """Decompressed as it is transcoded (one pass), a damaged stream still names the file."""
    root = project(
        tmp_path, "windows-1252", gzip.compress((TEXT * 200).encode("cp1252"))[:-30], glob="csv.gz"
    )
    result = penstock.run(root)
    assert result.status == "failed"
    (failure,) = result.failures
    assert str(failure.error).startswith(
        "landing/sales.csv.gz: cannot read as gzip-compressed CSV: "
    ), failure.error
    assert query(root, "SELECT count(*) FROM penstock.loads") == [(0,)]


def test_an_undefined_byte_is_an_encoding_record_with_its_number(tmp_path: Path) -> None:
    # 0x81 has no character in Windows-1252: that record is quarantined, raw bytes escaped
    data = TEXT.encode("cp1252") + b"4,bad \x81 byte,1.00\r\n" + b"5,ok,2.00\r\n" * 200
    root = project(tmp_path, "windows-1252", data)
    result = penstock.run(root)
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (204, 203, 1)
    assert query(root, "SELECT _row_number, _reasons, _raw_line FROM quarantine.sales") == [
        (4, ["encoding"], "4,bad \\x81 byte,1.00")
    ]


def test_read_as_latin_1_its_punctuation_is_quarantined_not_loaded(tmp_path: Path) -> None:
    """latin-1 reads 0x80-0x9F as C1 control characters; DuckDB refuses such a file, and the
    record-by-record read takes them for invalid bytes too: no control character loads."""
    data = TEXT.encode("cp1252") + b"4,plain caf\xe9,1.00\r\n" + b"5,ok,2.00\r\n" * 300
    root = project(tmp_path, "latin-1", data)
    result = penstock.run(root)
    (load,) = result.loads()
    assert (load.rows_loaded, load.rows_quarantined) == (301, 3)
    assert query(root, "SELECT name FROM sales WHERE id = 4") == [("plain café",)]
    errors = query(root, "SELECT DISTINCT _error FROM quarantine.sales")
    assert errors == [
        (
            "invalid encoding: not valid latin-1 text (each invalid byte shown as \\xNN; if the "
            "file is in another encoding, set csv: {encoding: windows-1252})",
        )
    ]
    controls = query(root, "SELECT count(*) FROM sales WHERE regexp_matches(name, '[\\x80-\\x9f]')")
    assert controls == [(0,)]
