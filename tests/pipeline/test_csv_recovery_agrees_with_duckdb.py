"""The record-by-record pass splits records by DuckDB's own quoting rules, so a record reads the
same on both paths. Seeded random files with tricky quoting (quoted line breaks and CRs, doubled
and escaped quotes, delimiters and comment marks inside quotes, a space before or after quotes,
`"a" "b"`) are staged twice: clean (DuckDB's reader alone) and with a NUL put inside one record
(which sends the file record by record). Every other record must come out identical, under the
same record number."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import duckdb
import pytest

from penstock.catalog import CsvOptions, ObjectSpec

from helpers import stage_csv_copy


def _value(rng: random.Random, quote: str, escape: str, delimiter: str, comment: str | None) -> str:
    if rng.random() < 0.4:  # unquoted: no delimiter, no comment mark, not opening a quote
        text = "".join(rng.choice(["a", "b", "1", " ", "é", quote, escape]) for _ in range(5))
        text = text.lstrip(" ").replace(comment or "\0", "")
        return "z" + text if text.startswith(quote) else text
    parts = ["a", "b", " ", delimiter, quote, escape, "\n", "\r\n", "\r", "é", "#", "  "]
    inner = "".join(rng.choice(parts) for _ in range(rng.randint(0, 6)))
    if escape == quote:
        inner = inner.replace(quote, quote + quote)
    else:
        inner = inner.replace(escape, escape + escape).replace(quote, escape + quote)
    value = rng.choice(["", " "]) + quote + inner + quote + rng.choice(["", " ", "  "])
    if escape == quote and rng.random() < 0.1:
        value += ' "x"'  # DuckDB reads `"a" "x"` as `a x`
    return value


def _nul_inside(record: str, quote: str, delimiter: str, comment: str | None) -> str:
    """`record` with a NUL where it does not change how the record splits."""
    stripped = record.lstrip(" ")
    if stripped.startswith(quote):
        at = len(record) - len(stripped) + 1
    elif record and record[0] not in (delimiter, comment):
        at = 1
    else:
        at = 0
    return record[:at] + "\0" + record[at:]


def _stage(
    tmp: Path, obj: ObjectSpec, name: str, text: str
) -> tuple[list[Any], list[Any], list[str]]:
    path = tmp / f"{name}.csv"
    path.write_bytes(text.encode())
    conn = duckdb.connect()
    staged, rows = stage_csv_copy(conn, obj, path, name, tmp / f"{name}-staging")
    rejects = tmp / f"{name}-staging" / "rejects.parquet"
    refused = (
        conn.execute(
            f"SELECT _row_number, _reason FROM read_parquet('{rejects}') ORDER BY 1"
        ).fetchall()
        if staged.malformed
        else []
    )
    warnings = staged.warnings
    return rows, refused, warnings


@pytest.mark.parametrize("seed", range(40))
def test_a_record_reads_the_same_on_both_paths(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    quote, escape = '"', rng.choice(['"', "\\"])
    delimiter, comment = rng.choice([",", ";", "\t", "|"]), rng.choice([None, "#"])
    line_break = rng.choice(["\n", "\r\n"])
    width = rng.randint(1, 4)
    header = delimiter.join(f"c{i}" for i in range(width))
    records = [
        delimiter.join(_value(rng, quote, escape, delimiter, comment) for _ in range(width))
        for _ in range(rng.randint(1, 40))
    ]
    ending = line_break if rng.random() < 0.8 else ""
    csv = CsvOptions(
        delimiter=delimiter, quote=quote, escape=escape, comment=comment, max_line_span=100
    )
    obj = ObjectSpec.model_validate(
        {
            "name": "t",
            "source": "s",
            "files": "*.csv",
            "csv": csv.model_dump(),
            "columns": {f"c{i}": {"type": "text"} for i in range(width)},
        }
    )
    clean_text = header + line_break + line_break.join(records) + ending
    clean, clean_refused, _ = _stage(tmp_path, obj, "clean", clean_text)

    damaged_at = rng.randrange(len(records))
    damaged = list(records)
    damaged[damaged_at] = _nul_inside(records[damaged_at], quote, delimiter, comment)
    got, refused, warnings = _stage(
        tmp_path, obj, "damaged", header + line_break + line_break.join(damaged) + ending
    )
    assert warnings == ["damaged: read record by record, as it holds a NUL character"]

    numbers = [n for n in range(1, len(records) + 1) if n not in {n for n, _ in clean_refused}]
    expected = [row for n, row in zip(numbers, clean, strict=True) if n != damaged_at + 1]
    assert got == expected
    assert refused == sorted({*clean_refused, (damaged_at + 1, "malformed")})
