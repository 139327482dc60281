"""Which reader errors are about a file's bytes (`SourceError.unreadable`: the run rejects the
file) and which are about the machine (the next run tries again), on real errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from penstock.errors import SourceError
from penstock.sources.unreadable import arrow_refused, duckdb_refused, stream_damaged


def arrow_error(path: Path, compression: str | None) -> BaseException:
    try:
        with pa.input_stream(str(path), compression=compression) as stream:
            while stream.read(1 << 20):
                pass
    except (OSError, pa.ArrowException) as exc:
        return exc
    raise AssertionError(f"{path} read without error")


def duckdb_error(sql: str) -> duckdb.Error:
    try:
        duckdb.connect().execute(sql).fetchall()
    except duckdb.Error as exc:
        return exc
    raise AssertionError(f"{sql} ran without error")


def test_a_stream_that_does_not_decompress_is_refused_a_missing_file_is_not(
    tmp_path: Path,
) -> None:
    cut = tmp_path / "cut.csv.gz"
    packed = gzip.compress(b"".join(b"%d\n" % i for i in range(20000)))
    cut.write_bytes(packed[: len(packed) // 2])
    error = arrow_error(cut, "gzip")
    assert isinstance(error, OSError) and error.errno is None
    assert arrow_refused(error) and stream_damaged(cut)

    whole = tmp_path / "whole.csv.gz"
    whole.write_bytes(packed)
    assert not stream_damaged(whole)

    gone = arrow_error(tmp_path / "gone.csv.gz", "gzip")
    assert isinstance(gone, FileNotFoundError) and not arrow_refused(gone)
    assert not arrow_refused(MemoryError("out of memory"))
    assert not arrow_refused(OSError(28, "No space left on device"))


def test_duckdb_content_errors_are_refused_its_io_errors_only_for_a_damaged_stream(
    tmp_path: Path,
) -> None:
    garbage = tmp_path / "x.parquet"
    garbage.write_bytes(b"PAR1 not a parquet file")
    refused = duckdb_error(f"SELECT count(*) FROM read_parquet('{garbage}')")
    assert isinstance(refused, duckdb.InvalidInputException)
    assert duckdb_refused(refused, garbage)

    cut = tmp_path / "cut.csv.gz"
    packed = gzip.compress(b"id\n" + b"".join(b"%d\n" % i for i in range(20000)))
    cut.write_bytes(packed[: len(packed) // 2])
    io = duckdb_error(f"SELECT count(*) FROM read_csv('{cut}')")
    assert isinstance(io, duckdb.IOException)
    assert duckdb_refused(io, cut)

    # the same kind of error for a file whose stream is fine is not about the bytes
    whole = tmp_path / "whole.csv.gz"
    whole.write_bytes(packed)
    assert not duckdb_refused(io, whole)
    plain = tmp_path / "plain.csv"
    missing = duckdb_error(f"SELECT count(*) FROM read_csv('{plain}')")
    assert isinstance(missing, duckdb.IOException)
    assert not duckdb_refused(missing, plain)


@pytest.mark.parametrize("unreadable", [True, False])
def test_source_error_keeps_its_fields_and_says_unreadable(unreadable: bool) -> None:
    error = SourceError("a.csv:3: not valid utf-8", file="a.csv", line=3, unreadable=unreadable)
    assert error.unreadable is unreadable
    assert error.fields["file"] == "a.csv" and error.fields["line"] == 3
    assert ("unreadable" in error.to_dict()) is unreadable
    assert SourceError("disk full", file="a.csv").unreadable is False
