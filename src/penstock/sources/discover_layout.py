"""The layout of a CSV file `penstock discover` proposes, read off its first lines: the
delimiter, the lines above the records to skip (`skip_rows`), and whether the first line left
is a header. Real files carry all three: scikit-learn's open with counts above headerless
records, its diabetes file is numbers split by spaces.
"""

from __future__ import annotations

import codecs
import csv
import re
from pathlib import Path

from penstock.errors import UsageError
from penstock.sources.compression import compression_of
from penstock.sources.csv_layout import FIT_RECORDS, fit_header, header_names
from penstock.sources.csv_text import open_stream, transcode

# a space last: only when no other character splits the lines as consistently
DELIMITERS = (",", ";", "\t", "|", " ")
# a number as text: a decimal, or in exponent notation (what a `double` column reads)
NUMBER_TEXT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_MOST_SKIPPED = 10


def csv_layout(path: Path) -> tuple[str, int, bool, int]:
    """How the file's first lines are laid out: (delimiter, lines to skip, has a header,
    fields per record).

    The delimiter splits the lines most consistently into more than one field (damaged lines,
    which a run quarantines, do not sway it). Lines at the top with another number of fields
    than the records after them are skipped (a title, or counts: scikit-learn's CSV files open
    with `569,30,malignant,benign` above 31 fields a record), unless they are one field short
    of records whose last field is always empty (a trailing delimiter), or a header a run
    fits to its records (csv_layout.fit_header: a BLS header's trailing delimiter, R's unnamed
    row names). The first line left
    is a header unless every field of it is a number, as in the records (a file of numbers
    without names). The lines to skip are counted as a run skips them: every line above the
    first line kept, blank ones too (a title, a blank line, a note above the header is 3)."""
    numbered = _head_lines(path)
    lines = [line for _, line in numbered]
    if not lines:
        return ",", 0, True, 1
    best, score, widths = ",", (False, 0.0, 0), [1] * len(lines)
    for candidate in DELIMITERS:
        found = [len(row) for row in csv.reader(lines, delimiter=candidate)]
        if not found:
            continue
        width = max(set(found), key=found.count)
        rank = (width > 1, found.count(width) / len(found), width)
        if rank > score:
            best, score, widths = candidate, rank, found
    if best == " ":
        _refuse_aligned(path, numbered)
    rows = list(csv.reader(lines, delimiter=best))
    later = widths[1:] or widths
    width = max(set(later), key=later.count)
    skip = 0
    while skip < min(_MOST_SKIPPED, len(rows) - 1) and widths[skip] != width:
        skip += 1
    trailing = all(r and r[-1] == "" for r in rows[skip:] if len(r) == width)
    fitted = False  # the header is one field off its records, and a run fits it to them
    if skip and (widths[skip - 1] == width - 1 and trailing):
        skip = 0  # records end with the delimiter: the header is one field short, not a title
    elif skip and looks_like_names(rows[skip - 1]):
        above = rows[skip - 1]
        fitted = fit_header(above, rows[skip : skip + FIT_RECORDS]) != header_names(above)
        if fitted and best == " " and len(above) < width:  # `"a" "b"`: DuckDB reads one name
            _refuse_header(path, above, width)
        skip -= 1 if fitted else 0
    if not fitted and (skip == len(rows) or widths[skip] != width):
        skip = 0  # no record line to start from: read the file as it is
    named = [field.strip() for field in rows[skip] if field.strip()]
    header = not named or not all(NUMBER_TEXT.fullmatch(field) for field in named)
    return best, numbered[skip][0] if skip else 0, header, width


def looks_like_names(row: list[str]) -> bool:
    """Whether a line looks like a header: two or more fields, none of them a number."""
    named = [field.strip() for field in row if field.strip()]
    return len(named) > 1 and not any(NUMBER_TEXT.fullmatch(field) for field in named)


# two spaces outside quotes (one leading space is an empty first field: pandas' to_csv with
# sep=" " writes its index under an empty name)
_ALIGNED = re.compile(r'  (?=(?:[^"]*"[^"]*")*[^"]*$)')


def _refuse_aligned(path: Path, numbered: list[tuple[int, str]]) -> None:
    """A table whose fields are lined up with runs of spaces (printed by a program, or fixed
    width): a run reads one delimiter between two fields, so each extra space would be an
    empty field and the lines would differ in width. Say so rather than propose a layout that
    takes records for a title or a header."""
    aligned = [above + 1 for above, line in numbered if _ALIGNED.search(line)]
    if aligned:
        raise UsageError(
            f"{path}:{aligned[0]}: its fields are lined up with runs of spaces, which a CSV "
            "delimiter cannot split (a run reads one character between two fields); write the "
            "file with one delimiter between fields (e.g. `sed -E 's/^ +//; s/ +/,/g'`)",
            file=str(path),
            line=aligned[0],
        )


def _refuse_header(path: Path, row: list[str], width: int) -> None:
    """R's write.table with its default space delimiter: a header naming one column fewer
    than its records hold, its names quoted and split by spaces, which DuckDB (and so a run)
    reads as one name. Say so: taking the first record for the header would lose it."""
    raise UsageError(
        f"{path}: its header names {len(row)} columns above records of {width} fields, in "
        "quotes split by spaces (R's write.table leaves its row names unnamed): DuckDB reads "
        "such a header as one name, so a run would read every record as malformed; write the "
        "file with a delimiter (write.csv)",
        file=str(path),
    )


def header_and_records(
    path: Path, delimiter: str, skip_rows: int
) -> tuple[list[str], list[list[str]]]:
    """The fields of the file's header as written (its first line after `skip_rows`) and of
    the records below it a run fits the header to (csv_layout.FIT_RECORDS); none when the
    file cannot be read (reading its records says why)."""
    lines = [line for number, line in _head_lines(path) if number >= skip_rows]
    rows = list(csv.reader(lines[: FIT_RECORDS + 1], delimiter=delimiter))
    return (rows[0] if rows else []), rows[1:]


def file_head(path: Path, size: int) -> bytes | None:
    """The first `size` bytes of the file's content (a gzip or zstd file decompressed); None
    when it cannot be read (a damaged stream, a file gone): reading its records says why."""
    try:
        with open_stream(path) as stream:
            head: bytes = stream.read(size)
    except Exception:  # the stream's own errors: OSError, EOFError, zstd's
        return None
    return head


def _head_lines(path: Path) -> list[tuple[int, str]]:
    """The file's first non-blank lines (up to 200 lines read, from its first 64 KiB,
    decompressed), each with the number of lines above it; none when it cannot be read."""
    head = file_head(path, 65536)
    if head is None:
        return []
    text = head.decode("utf-8", errors="replace")
    if len(head) == 65536:  # the last line may be cut
        text = text[: text.rfind("\n") + 1] or text
    return [(n, ln) for n, ln in enumerate(text.splitlines()[:200]) if ln.strip()]


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def csv_encoding(path: Path) -> str:
    """The encoding of a CSV file, from its first 64 KiB: utf-16 by its byte order mark; utf-8
    when its bytes are UTF-8, or mostly (a few damaged bytes among UTF-8 letters are records a
    run quarantines); else windows-1252 when it holds bytes 0x80-0x9F (Excel's € ’ “ ” – —,
    which latin-1 reads as control characters), else latin-1."""
    head = file_head(path, 65536) or b""
    if head[:2] in _UTF16_BOMS:
        return "utf-16"
    text = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(head)
    invalid = sum(1 for c in text if "\udc80" <= c <= "\udcff")
    if invalid == 0 or sum(1 for c in text if c > "\x7f") > 2 * invalid:
        return "utf-8"
    return "windows-1252" if any(0x80 <= b <= 0x9F for b in head) else "latin-1"


def readable_copy(path: Path, scratch: Path, encoding: str) -> Path:
    """`path`, or a copy of it in `scratch` that DuckDB reads: decompressed when DuckDB cannot
    read its compression (bzip2; gzip and zstd it reads itself), as UTF-8 when in another
    encoding (undecodable bytes replaced: the sample is for typing, a run names them)."""
    if compression_of(path) != "bz2" and encoding == "utf-8":
        return path
    name = path.name.removesuffix(path.suffix) if compression_of(path) else path.name
    plain = scratch / f"{len(list(scratch.iterdir()))}-{name}"  # read as plain text
    try:
        transcode(path, plain, encoding, "replace")
    except Exception as exc:  # the stream's own errors: OSError, EOFError
        raise UsageError(f"{path}: cannot be read: {exc}", file=str(path)) from exc
    return plain
