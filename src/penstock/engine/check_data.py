"""`penstock check` looks at the data: each object's glob, and a sample of its first file.

The sample (the head of the first matching file, cut at a record boundary: check_sample.py)
goes through the real code a run uses: `FilesSourceReader.stage` into a throwaway lake under a
temporary directory, then `validate_batch`. So every CSV, JSON and mapping setting of the
object is honoured exactly as a run would honour it, and the findings are what a run would
meet in those records:

- contract columns missing from the file (with the closest header names) and extra columns;
- a delimiter that looks wrong: when columns are missing or records malformed, the sample is
  staged again with the other usual delimiters (and DuckDB's sniffed one), and a delimiter
  that matches more contract columns is suggested as a setting;
- a file that cannot be read (its encoding, its syntax), with the file and line staging names,
  and for an encoding error the `encoding` setting that reads it;
- per rule, the share of sampled rows that would fail it, and the malformed records.

Nothing is written to the project: not its lake, warehouse or metadata store.

Levels: an unreadable file, a required column missing from the header, or a header holding
no contract column at all is an error (`check` exits 2): every row of such a file would be
quarantined or the file would fail. Everything else found is a warning.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import duckdb

from penstock.catalog import CsvOptions, FilesSource, ObjectSpec, Project, RowCountCheck
from penstock.defaults import CHECK_SAMPLE_ROWS
from penstock.engine.check_blame import blame_check
from penstock.engine.check_sample import Sample, SampleError, take_sample
from penstock.engine.globs import NoMatch, no_match, shown
from penstock.errors import PenstockError, SourceError, first_line
from penstock.lake import Lake, StagedBatch
from penstock.lake.read import rejects_sql
from penstock.quality.compile import bind_columns
from penstock.quality.privacy_sql import install_key
from penstock.quality.validate import ENCODING, MALFORMED, BatchValidation, validate_batch
from penstock.sources import FilesSourceReader
from penstock.sources.base import SourceItem
from penstock.sql import ident, literal

_BYTES_PER_ROW = 1024  # the sample reads at most this much per record asked, and 1 MiB at least
_MIN_SAMPLE_BYTES = 1024 * 1024
_DELIMITERS = (",", ";", "\t", "|")
_CLOSEST = 3

Level = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    level: Level
    message: str
    details: list[str] = field(default_factory=list)  # one line each, shown indented


@dataclass(frozen=True)
class MissingColumn:
    column: str
    required: bool
    closest: list[str]  # the header names most like it, best first
    source_name: str = ""  # the name looked for: its `from:`, or the column's own


@dataclass(frozen=True)
class SuggestedSetting:
    setting: str  # `csv.delimiter`
    value: str
    yaml: str  # what to write under the object: `csv: {delimiter: ";"}`
    reason: str


@dataclass(frozen=True)
class RuleFailure:
    reason: str  # `type:amount`
    rows: int
    share: float  # of the sampled records
    example: str | None = None  # the first failing value as written (a column's rule)


@dataclass
class DataCheck:
    """What `check` found in one object's files."""

    object: str
    pattern: str
    files_matched: int = 0
    file: str | None = None  # the file sampled: the first the glob matches
    sample_rows: int = 0  # records read from it (malformed ones included)
    sample_complete: bool = False  # the sample is the whole file
    header: list[str] = field(default_factory=list)
    missing_columns: list[MissingColumn] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    suggested_settings: list[SuggestedSetting] = field(default_factory=list)
    rule_failures: list[RuleFailure] = field(default_factory=list)
    malformed: int = 0
    no_match: NoMatch | None = None
    findings: list[Finding] = field(default_factory=list)

    def add(self, level: Level, message: str, details: list[str] | None = None) -> None:
        self.findings.append(Finding(level, message, details or []))


def check_object_data(
    conn: duckdb.DuckDBPyConnection,
    project: Project,
    obj: ObjectSpec,
    workdir: Path,
    *,
    rows: int = CHECK_SAMPLE_ROWS,
) -> DataCheck | None:
    """Check `obj`'s files in `workdir` (a private temporary directory); None when its source
    is not a readable directory of files (the source's own check says so)."""
    spec = project.sources.get(obj.source)
    if not isinstance(spec, FilesSource):
        return None
    # every file counts, however recently written: check waits for nothing
    reader = FilesSourceReader(project, obj.source, spec.model_copy(update={"settle": "0s"}))
    pattern = obj.files or "*"
    report = DataCheck(obj.name, shown(project.root, reader.root, pattern))
    try:
        items = reader.discover(obj, {}).new
    except SourceError:
        return None
    report.files_matched = len(items)
    if not items:
        report.no_match = no_match(obj.name, project.root, reader.root, pattern)
        report.add("warning", report.no_match.text)
        return report
    _SampleCheck(conn, project, obj, reader, items[0], workdir / obj.name, report, rows).run()
    return report


class _SampleCheck:
    """Stage and validate the sample of one file, filling in `report`."""

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        project: Project,
        obj: ObjectSpec,
        reader: FilesSourceReader,
        item: SourceItem,
        workdir: Path,
        report: DataCheck,
        rows: int,
    ) -> None:
        self.conn = conn
        self.project = project
        self.obj = obj
        self.reader = reader
        self.item = item
        self.workdir = workdir
        self.report = report
        self.rows = rows
        self.name = item.display_name
        self.attempts = 0

    def run(self) -> None:
        report = self.report
        report.file = self.name
        self.workdir.mkdir(parents=True)
        try:
            sample = take_sample(
                self.conn,
                self.item.path,
                self.workdir,
                self.obj.format or "csv",
                self.obj.csv,
                rows=self.rows,
                max_bytes=max(_MIN_SAMPLE_BYTES, self.rows * _BYTES_PER_ROW),
            )
        except (SampleError, OSError) as exc:
            report.add("error", f"{self.name}: cannot read: {exc}")
            return
        if sample is None:
            report.add(
                "warning",
                f"{self.name}: not sampled (a {self.obj.format} file cannot be cut short, and "
                f"this one is too large to read whole for a check)",
            )
            return
        report.sample_complete = sample.complete
        try:
            batch = self._stage(sample, self.obj)
        except SourceError as exc:
            report.add("error", exc.message)
            self._suggest_encoding(sample, exc)
            self._suggest_delimiter(sample, matched=-1, malformed=0)
            return
        except PenstockError as exc:
            report.add("error", exc.message)
            return
        report.header = list(batch.manifest.columns)
        report.sample_rows = batch.manifest.rows_in
        contract = self._contract(sample)
        install_key(self.conn, self.project.privacy.key)
        try:
            validation = validate_batch(self.conn, contract, batch)
        except PenstockError as exc:
            report.add("error", self._blame(contract, batch, exc))
            return
        try:
            self._report(sample, batch, validation)
        finally:
            validation.drop(self.conn)

    # -- staging through the real code -------------------------------------------------
    def _stage(self, sample: Sample, obj: ObjectSpec) -> StagedBatch:
        """Stage `sample` as `obj` into a lake of its own (the same content staged twice in
        one lake would be the same batch, whatever the settings)."""
        self.attempts += 1
        stat = sample.path.stat()
        item = SourceItem(
            object=obj.name,
            source=self.item.source,
            path=sample.path,
            display_name=self.name,
            size_bytes=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            ctime_ns=stat.st_ctime_ns,
            inode=stat.st_ino,
        )
        lake = Lake(self.workdir / f"lake-{self.attempts}")
        staged = self.reader.stage(self.conn, obj, item, lake)
        if staged.error is not None:  # a file a run would reject: say why
            raise staged.error
        if staged.batch is None:  # the sample is private: nothing changes it while read
            raise SourceError(f"{self.name}: the sample could not be staged ({staged.status})")
        return staged.batch

    def _contract(self, sample: Sample) -> ObjectSpec:
        """The object's contract as the sample can judge it: every failing row is counted
        (on_invalid fail would stop at the first), row_count applies to whole files only, and
        `references` is left to runs (it reads the warehouse)."""
        checks = [c for c in self.obj.checks if sample.complete or not isinstance(c, RowCountCheck)]
        # `references` looks values up in another object's warehouse table: not on a sample
        columns = {
            name: spec.model_copy(
                update={
                    "references": None,
                    "rule_options": {
                        r: o for r, o in spec.rule_options.items() if r != "references"
                    },
                }
            )
            if spec.references
            else spec
            for name, spec in self.obj.columns.items()
        }
        return self.obj.model_copy(
            update={"on_invalid": "quarantine", "checks": checks, "columns": columns}
        )

    def _blame(self, contract: ObjectSpec, batch: StagedBatch, error: PenstockError) -> str:
        """A contract that fails on the sample's values: name the check at fault if one is."""

        def fails(variant: ObjectSpec) -> str | None:
            try:
                validate_batch(self.conn, variant, batch).drop(self.conn)
            except PenstockError as exc:
                return first_line(exc.__cause__ or exc)
            return None

        blamed = blame_check(self.project, contract, fails, f"fails on {self.name}")
        return blamed.message if blamed is not None else error.message

    # -- findings ----------------------------------------------------------------------
    def _report(self, sample: Sample, batch: StagedBatch, v: BatchValidation) -> None:
        report = self.report
        header = report.header
        rows = report.sample_rows
        what = (
            f"the whole file, {rows:,} record(s)"
            if sample.complete
            else f"its first {rows:,} record(s)"
        )
        start = len(report.findings)
        # as validation binds them (which leaves out a file without records: a header alone
        # still shows what is missing)
        absent = [
            b.name for b in bind_columns(self.obj, batch.manifest.schema) if not b.stage_column
        ]
        missing = set(absent)
        for column in absent:
            required = self.obj.is_required(column)
            looked_for = self.obj.columns[column].source_name(column)
            closest = _closest(looked_for, v.extra_columns or header)
            report.missing_columns.append(MissingColumn(column, required, closest, looked_for))
        if rows and len(missing) == len(self.obj.columns):
            shown_header = _quoted(header[:5]) + (" …" if len(header) > 5 else "")
            report.add(
                "error",
                f"{self.name}: none of the contract's columns is in the header "
                f"(read as {shown_header})",
            )
        else:
            for m in report.missing_columns:
                level: Level = "error" if m.required and rows else "warning"
                effect = "required: every row would fail" if m.required else "reads as empty"
                name = (
                    m.column
                    if m.source_name == m.column
                    else f"{m.column} (from: {m.source_name!r})"
                )
                report.add(
                    level,
                    f"{self.name}: column {name} is missing from the header ({effect})"
                    + (f"; closest: {_quoted(m.closest)}" if m.closest else ""),
                )
        for warning in batch.manifest.warnings:  # what staging warns about (an empty file)
            report.add("warning", warning)
        if not rows and not batch.manifest.warnings:
            report.add("warning", f"{self.name}: no records")
        report.extra_columns = list(v.extra_columns)
        if v.extra_columns and len(missing) < len(self.obj.columns):
            report.add(
                "warning",
                f"{self.name}: column(s) not in the contract, staged but not loaded: "
                f"{', '.join(v.extra_columns)}",
            )
        report.malformed = batch.manifest.rows_malformed
        if missing or report.malformed:
            self._suggest_delimiter(sample, len(self.obj.columns) - len(missing), report.malformed)
        skipped = {f"required:{c}" for c in missing} | {MALFORMED, ENCODING}
        failing = sorted(
            ((r, n) for r, n in v.reason_counts.items() if r not in skipped and rows),
            key=lambda rc: (-rc[1], rc[0]),
        )
        report.rule_failures = [
            RuleFailure(r, n, n / rows, self._example(v, r)) for r, n in failing
        ]
        if failing:
            width = max(len(r) for r, _ in failing)
            invalid = self._rows_failing(v, skipped)
            report.add(
                "warning",
                f"{self.name}: {invalid:,} of {rows:,} sampled row(s) would fail a rule "
                f"({_percent(invalid / rows)}); per rule:",
                [
                    f"{f.reason:<{width}}  {f.rows:>7,}  {_percent(f.share):>6}"
                    + (f"  e.g. {_shown_value(f.example)}" if f.example is not None else "")
                    for f in report.rule_failures
                ],
            )
        if report.malformed:
            for message in self._malformed_messages(batch, rows):
                report.add("warning", message)
        if v.reason_counts.get(ENCODING):
            self._suggest_encoding(sample)
        if len(report.findings) == start:
            report.add("ok", f"{self.name}: sampled {what}: every record passes the contract")
        else:
            report.findings.insert(start, Finding("ok", f"{self.name}: sampled {what}"))

    def _example(self, v: BatchValidation, reason: str) -> str | None:
        """The first value, as written, that fails a column's rule (`type:amount`); None for
        a check or a blank value."""
        _, _, column = reason.partition(":")
        if column not in self.obj.columns:
            return None
        row = self.conn.execute(
            f"SELECT {ident(column)} FROM {ident(v.quarantine_table)} "
            f"WHERE list_contains(_reasons, ?) AND {ident(column)} IS NOT NULL "
            f"ORDER BY _row_number LIMIT 1",
            [reason],
        ).fetchone()
        return None if row is None or not str(row[0]).strip() else str(row[0])

    def _rows_failing(self, v: BatchValidation, skipped: set[str]) -> int:
        """Rows failing a rule other than those in `skipped` (a column missing from the
        header is reported once, not as every row failing required)."""
        row = self.conn.execute(
            f"SELECT count(*) FROM {ident(v.quarantine_table)} "
            f"WHERE len(list_filter(_reasons, lambda r: NOT list_contains(?, r))) > 0",
            [sorted(skipped)],
        ).fetchone()
        return int(row[0]) if row else 0

    def _malformed_messages(self, batch: StagedBatch, rows: int) -> list[str]:
        """One line per reason staging refused records for (malformed, encoding)."""
        found = self.conn.execute(
            f"SELECT _reason, count(*), arg_min(_row_number, _row_number), "
            f"arg_min(_error, _row_number) FROM ({rejects_sql([batch], [1])}) "
            f"GROUP BY ALL ORDER BY 1"
        ).fetchall()
        messages = []
        for reason, count, first, error in found:
            what = (
                f"hold bytes that are not valid {(self.obj.csv or CsvOptions()).encoding} text"
                if reason == ENCODING
                else "are malformed"
            )
            messages.append(
                f"{self.name}: {count:,} of {rows:,} sampled record(s) {what} "
                f"({_percent(count / rows)}); the first is record {first}: "
                f"{' '.join(str(error).split())}"
            )
        return messages

    # -- suggestions -------------------------------------------------------------------
    def _suggest_delimiter(self, sample: Sample, matched: int, malformed: int) -> None:
        """Stage the sample with each other delimiter; suggest the one that matches the most
        contract columns (then: the fewest malformed records), if it beats the current one."""
        csv = self.obj.csv
        if self.obj.format != "csv" or csv is None:
            return
        candidates = [d for d in (*_DELIMITERS, self._sniffed(sample)) if d and d != csv.delimiter]
        best: tuple[int, int, str] | None = None
        for delimiter in dict.fromkeys(candidates):
            other = self.obj.model_copy(
                update={"csv": csv.model_copy(update={"delimiter": delimiter})}
            )
            try:
                batch = self._stage(sample, other)
            except PenstockError:
                continue
            bound = sum(1 for b in bind_columns(other, batch.manifest.schema) if b.stage_column)
            score = (bound, -batch.manifest.rows_malformed, delimiter)
            if best is None or score[:2] > best[:2]:
                best = score
        if best is None or best[0] < 1 or best[:2] <= (matched, -malformed):
            return
        bound, bad, delimiter = best
        shown_as = {"\t": "\\t"}.get(delimiter, delimiter)
        reason = (
            f"with it {bound} of {len(self.obj.columns)} contract column(s) are in the header"
            + (f" and {-bad:,} record(s) malformed" if bad else "")
        )
        self._suggest("csv.delimiter", delimiter, f'csv: {{delimiter: "{shown_as}"}}', reason)

    def _sniffed(self, sample: Sample) -> str | None:
        """DuckDB's guess at the sample's delimiter (a suggestion only; never trusted blindly:
        the sample is staged with it and must match more columns)."""
        try:
            row = self.conn.execute(
                f"SELECT Delimiter FROM sniff_csv({literal(str(sample.path))})"
            ).fetchone()
        except duckdb.Error:
            return None
        value = str(row[0]) if row and row[0] else None
        return value if value is not None and len(value) == 1 else None

    def _suggest_encoding(self, sample: Sample, error: SourceError | None = None) -> None:
        """Suggest the encoding that reads the sample without invalid bytes, after a staging
        error naming them (`error`) or records quarantined for them."""
        csv = self.obj.csv
        if self.obj.format != "csv" or csv is None:
            return
        if error is not None and "not valid" not in error.message:
            return
        head = sample.path.read_bytes()[:2]
        utf16 = head in (b"\xff\xfe", b"\xfe\xff")
        for encoding in ("utf-16",) if utf16 else ("latin-1", "windows-1252"):
            if encoding == csv.encoding:
                continue
            other = self.obj.model_copy(
                update={"csv": csv.model_copy(update={"encoding": encoding})}
            )
            try:
                staged = self._stage(sample, other)
            except PenstockError:
                continue
            if self._encoding_records(staged):
                continue
            self._suggest(
                "csv.encoding",
                encoding,
                f"csv: {{encoding: {encoding}}}",
                f"the sample reads as {encoding}",
            )
            return  # the first that reads it: latin-1 before windows-1252, which reads more

    def _encoding_records(self, batch: StagedBatch) -> int:
        row = self.conn.execute(
            f"SELECT count(*) FROM ({rejects_sql([batch], [1])}) "
            f"WHERE _reason = {literal(ENCODING)}"
        ).fetchone()
        return int(row[0]) if row else 0

    def _suggest(self, setting: str, value: str, yaml: str, reason: str) -> None:
        self.report.suggested_settings.append(SuggestedSetting(setting, value, yaml, reason))
        self.report.add(
            "warning", f"{self.name}: try `{yaml}` on object {self.obj.name} ({reason})"
        )


def _normal(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", name.lower())


def _closest(column: str, names: list[str]) -> list[str]:
    """The header names most like `column`, ignoring case, spaces and punctuation."""
    by_normal: dict[str, str] = {}
    for name in names:
        by_normal.setdefault(_normal(name), name)
    close = difflib.get_close_matches(_normal(column), list(by_normal), n=_CLOSEST, cutoff=0.6)
    return [by_normal[c] for c in close]


def _shown_value(value: str, limit: int = 40) -> str:
    """A value for one line of text: quoted, line breaks escaped, cut at `limit`."""
    text = value.replace("\r", "\\r").replace("\n", "\\n")
    return f'"{text[:limit]}…"' if len(text) > limit else f'"{text}"'


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _percent(share: float) -> str:
    """A share that never rounds a failure away: 0.04% shows as <0.1%, 99.96% as >99.9%."""
    if 0 < share < 0.001:
        return "<0.1%"
    if 0.999 < share < 1:
        return ">99.9%"
    return f"{share:.1%}"
