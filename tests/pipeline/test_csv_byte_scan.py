"""The byte scan of a plain CSV (sources/csv_text.py: line breaks, NUL, a comment after a field
of spaces) reads the file in blocks; what it finds does not depend on where blocks end."""

from __future__ import annotations

from pathlib import Path

import pytest

from penstock.catalog import CsvOptions
from penstock.sources import csv_text


@pytest.mark.parametrize("block", [4, 7, 16, 1 << 20])
def test_the_scan_finds_the_same_whatever_the_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(csv_text, "BLOCK_BYTES", block)
    clean = tmp_path / "clean.csv"
    clean.write_bytes(b"id,note\n1,abc\n2,  def\n3,x")
    scan = csv_text.scan_bytes(clean, CsvOptions(comment="#"), "\n")
    assert (scan.trouble, scan.breaks, scan.last) == (None, 3, b"x")
    assert scan.data_lines(2, "\n") == 3

    commented = tmp_path / "commented.csv"  # the spaces and the # fall in different blocks
    commented.write_bytes(b"id,note\n1,abc\n2,        # dropped by DuckDB\n3,x\n")
    scan = csv_text.scan_bytes(commented, CsvOptions(comment="#"), "\n")
    assert scan.trouble == "a comment after a field of spaces (DuckDB would drop its record)"
    assert csv_text.scan_bytes(commented, CsvOptions(), "\n").trouble is None

    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"id,note\n1,abc\n2,de\x00f\n")
    scan = csv_text.scan_bytes(nul, CsvOptions(), "\n")
    assert (scan.trouble, scan.breaks, scan.last) == ("a NUL character", 3, b"\n")

    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("id,note\n1,ab\u0000c\n".encode("utf-16-le"))
    assert csv_text.scan_bytes(utf16, CsvOptions(encoding="utf-16"), "\n").trouble == (
        "a NUL character"
    )
    utf16.write_bytes("id,note\n1,a\u0100c\n".encode("utf-16-le"))  # a 0x00 byte, no NUL unit
    assert csv_text.scan_bytes(utf16, CsvOptions(encoding="utf-16"), "\n").trouble is None


SAMPLES = [
    b"",
    b"id,note\n1,abc\n2,  def\n3,x",
    b"id,note\r\n1,abc\r\n",
    b"id,note\r1,abc\r2,d\r",
    b"\xef\xbb\xbfid,note\n1,\xff\xfe\n",
    b"id,note\n1,de\x00f\n2,        # dropped\n",
]


@pytest.mark.parametrize("data", SAMPLES)
@pytest.mark.parametrize("block", [3, 1 << 20])
def test_bytes_in_memory_read_as_the_file_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: bytes, block: int
) -> None:
    """A small copy's bytes kept in memory give the scan and the lines a read of the file
    gives (staging then opens no file for them)."""
    monkeypatch.setattr(csv_text, "BLOCK_BYTES", block)
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    for options in (CsvOptions(comment="#"), CsvOptions(), CsvOptions(encoding="latin-1")):
        new_line = "\r" if b"\n" not in data else "\n"
        assert csv_text.scan_bytes(path, options, new_line, data) == csv_text.scan_bytes(
            path, options, new_line
        )
        read = csv_text.TextLines(path, options.encoding, "f", "o", block_bytes=block)
        kept = csv_text.TextLines(path, options.encoding, "f", "o", block_bytes=block, content=data)
        assert (list(kept), kept.had_bom, kept.separator) == (
            list(read),
            read.had_bom,
            read.separator,
        )
    utf16 = CsvOptions(encoding="utf-16")
    text = data.decode("latin-1").encode("utf-16-le")
    path.write_bytes(text)
    assert csv_text.scan_bytes(path, utf16, "\n", text) == csv_text.scan_bytes(path, utf16, "\n")
