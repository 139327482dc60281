"""Where a CSV file's data starts and what its columns are called, read by penstock with the
object's dialect: DuckDB is never asked to guess (no sniffer), and never to find the header.

The lines before the data are, in order: `skip_rows` lines taken verbatim, then (with a header)
blank and comment lines, then the header: the first record, read with the dialect (it may span
lines inside quotes, up to `max_line_span`). Its fields are the column names as DuckDB would
give them: spaces around a name dropped, an empty name is `column<i>` (0-based). Two names
equal ignoring case and surrounding spaces fail the file; so does a header that cannot be read.

DuckDB's `skip` counts its own rows, not lines: a blank line is a row, a comment line is not, a
quoted line break does not end one, and a byte order mark hides a comment. So the data is read
by DuckDB from `duck_skip` only when the lines before it leave no doubt (no skipped line that
opens a quote or looks like a comment, no comment line behind a byte order mark); otherwise
`duck_skip` is None and the file is read record by record (csv_recover.py), which skips lines.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from penstock.catalog import CsvOptions, ObjectSpec
from penstock.catalog.columns import source_key
from penstock.errors import SourceError
from penstock.lake.csv_read import CsvRead
from penstock.sources.csv_grammar import FieldError, Grammar, Line
from penstock.sources.csv_text import INVALID_BYTES, TextLines

_HEAD_BLOCK = 64 * 1024


@dataclass(frozen=True)
class Layout:
    names: list[str]  # the columns to stage, in file order
    data_line: int  # the physical line (1-based) where the data starts
    duck_skip: int | None  # DuckDB's `skip` that starts at data_line; None: read record by record
    new_line: str  # the line break of the file's first line: "\n", "\r\n" or "\r"
    why_not_duckdb: str = ""  # when duck_skip is None


def read_layout(
    path: Path,
    obj: ObjectSpec,
    csv: CsvOptions,
    display_name: str,
    content: bytes | None = None,
) -> Layout | None:
    """The layout of `path` (read from `content`, its bytes, when they are in memory); None
    when it has a header but no record to read it from."""
    grammar = Grammar.of(csv)
    text = TextLines(
        path, csv.encoding, display_name, obj.name, block_bytes=_HEAD_BLOCK, content=content
    )
    lines = enumerate(text, 1)
    new_line = "\n"
    doubt = ""
    blank = 0
    for number, line in lines:
        if number == 1:
            new_line = "\r" if text.separator == "\r" else "\r\n" if line.endswith("\r") else "\n"
        if number <= csv.skip_rows:
            if grammar.start(line) is not Line.CLOSED or grammar.is_comment(line):
                doubt = doubt or f"skipped line {number} opens a quote or is a comment line"
            continue
        if not csv.header:
            return _layout(list(obj.columns), number, csv.skip_rows, new_line, doubt)
        if not line.strip(" \t\r"):
            blank += 1
            continue
        if grammar.is_comment(line):
            if number == 1 and text.had_bom:
                doubt = doubt or "a comment line behind a byte order mark"
            continue
        written, lines_used = _header(grammar, csv, obj, display_name, number, line, lines)
        names = fit_header(written, _first_records(grammar, lines, len(written)))
        skip = csv.skip_rows + blank + 1
        return _layout(names, number + lines_used, skip, new_line, doubt)
    if not csv.header:
        return _layout(list(obj.columns), csv.skip_rows + 1, csv.skip_rows, new_line, doubt)
    return None


def _layout(names: list[str], data_line: int, skip: int, new_line: str, doubt: str) -> Layout:
    return Layout(names, data_line, None if doubt else skip, new_line, doubt)


def _header(
    grammar: Grammar,
    csv: CsvOptions,
    obj: ObjectSpec,
    display_name: str,
    number: int,
    first: str,
    rest: Iterator[tuple[int, str]],
) -> tuple[list[str], int]:
    """The header record starting with `first` (line `number`): names, lines it spans."""
    record = [first]
    state = grammar.start(first)
    while state is Line.OPEN and len(record) < csv.max_line_span:
        following = next(rest, None)
        if following is None:
            break
        record.append(following[1])
        state = grammar.cont(following[1])

    def refuse(problem: str, *, unreadable: bool = False) -> SourceError:
        return SourceError(
            f"{display_name}:{number}: {problem}",
            file=display_name,
            line=number,
            object=obj.name,
            unreadable=unreadable,
        )

    text = "\n".join(record)
    if INVALID_BYTES.search(text):
        raise refuse(
            f"not valid {csv.encoding} text; set `csv: {{encoding: ...}}` on object "
            f"'{obj.name}' (utf-8, utf-16, latin-1 or windows-1252) (the header)",
            unreadable=True,
        )
    if state is not Line.CLOSED:
        why = (
            grammar.problem(record[-1], len(record) > 1)
            if state is Line.BROKEN
            else f"a quoted name is not closed within {len(record)} line(s)"
        )
        raise refuse(f"the header cannot be read: {why}", unreadable=True)
    try:
        written = grammar.fields(text)
    except FieldError as exc:
        raise refuse(f"the header cannot be read: {exc}", unreadable=True) from exc
    if "\0" in text:
        raise refuse("the header holds a NUL character (0x00)", unreadable=True)
    problem = ambiguous_names(written)
    if problem is not None:
        raise refuse(problem, unreadable=True)
    return written, len(record)


def _first_records(
    grammar: Grammar, rest: Iterator[tuple[int, str]], width: int
) -> list[list[str]]:
    """The fields of the first records after the header (up to FIT_RECORDS, within the block
    read), as long as each is one line: a record spanning lines or not split ends them, and
    so does one that is not one field off the header's `width` (it decides: nothing is
    fitted, and most files stop at their first record)."""
    found: list[list[str]] = []
    for _, line in rest:
        if len(found) == FIT_RECORDS or (found and abs(len(found[-1]) - width) != 1):
            break
        if not line.strip(" \t\r") or grammar.is_comment(line):
            continue
        if grammar.start(line) is not Line.CLOSED:
            break
        try:
            found.append(grammar.fields(grammar.without_comment(line, False)))
        except FieldError:
            break
    return found


FIT_RECORDS = 5  # the records a header is fitted to


def fit_header(written: Sequence[str], records: Sequence[Sequence[str]]) -> list[str]:
    """The column names of a header's fields, fitted to the first records below it (up to
    FIT_RECORDS) when every one of them is one field off the header in a way real files are:
    a header line ending with a delimiter its records lack (BLS series files) loses that last,
    empty name; a header of three or more names above two or more records each with one more
    field, not an empty one (R's write.table, which leaves its row names unnamed), gains
    `column0` in front. A single malformed record (one field too many or too few) fits
    nothing: the records after it decide, and it is quarantined as it would be anywhere else.
    Otherwise `header_names`."""
    if records and len(written) > 1:
        widths = {len(record) for record in records}
        if widths == {len(written) - 1} and not _trimmed(written[-1]):
            return header_names(written[:-1])
        if (
            widths == {len(written) + 1}
            and len(records) > 1
            and len(written) > 2
            and all(record[-1].strip() for record in records)
        ):
            return header_names(["", *written])
    return header_names(written)


def ambiguous_names(written: Sequence[str]) -> str | None:
    """Why a header's names cannot name its columns (two equal ignoring case and surrounding
    spaces), or None."""
    seen: dict[str, int] = {}
    for index, name in enumerate(written):
        if not _trimmed(name):
            continue  # read as column<i>
        first_seen = written[seen.setdefault(source_key(name), index)]
        if seen[source_key(name)] != index:
            what = (
                f"'{name}' appears twice"
                if first_seen == name
                else f"'{first_seen}' and '{name}' differ only in case"
                if first_seen.lower() == name.lower()
                else f"'{first_seen}' and '{name}' differ only in case or surrounding spaces"
            )
            return f"header names {what}; every record would be ambiguous (rename one in the file)"
    return None


def header_names(written: Sequence[str]) -> list[str]:
    """The column names of a header's fields: spaces around a name dropped, an empty one
    `column<i>` (0-based; R writes its row names under an empty name). `penstock discover`
    names a file's columns with this too, so its YAML names what a run reads."""
    return [_trimmed(name) or f"column{index}" for index, name in enumerate(written)]


def _trimmed(name: str) -> str:
    """A header name without the spaces DuckDB drops around it (Unicode space separators)."""
    start, end = 0, len(name)
    while start < end and unicodedata.category(name[start]) == "Zs":
        start += 1
    while end > start and unicodedata.category(name[end - 1]) == "Zs":
        end -= 1
    return name[start:end]


def csv_read(csv: CsvOptions, names: list[str], *, skip: int, new_line: str) -> CsvRead:
    """The DuckDB read settings for the data of a file with this layout."""
    return CsvRead(
        names=tuple(names),
        skip=skip,
        new_line=new_line,
        delimiter=csv.delimiter,
        quote=csv.quote,
        escape=csv.escape,
        encoding=csv.encoding,
        comment=csv.comment,
    )


def read_options(
    csv: CsvOptions,
    names: list[str],
    *,
    skip: int,
    new_line: str,
    compression: str | None = None,
) -> list[str]:
    """DuckDB read_csv options for the data of a file: the dialect as declared, every column
    text, no guessing; a record with another number of fields goes to the rejects table."""
    return csv_read(csv, names, skip=skip, new_line=new_line).options(compression=compression)
