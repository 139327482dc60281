"""Property: a damaged file never fails whole unless it must, and every record is accounted for.

Hypothesis writes valid CSV and JSON Lines files of a small contract (bigint key, text with
commas, quotes, line breaks and non-ASCII letters, decimal, date; 5 to 60 records), damages
them at random (flipped bytes, a cut, NUL bytes, stray quotes, invalid UTF-8, 100 kB fields,
carriage returns, blank lines), runs penstock and checks for every file:

- no crash: the run ends; a file is refused whole only when it must be (more records hold
  invalid bytes than max_encoding_errors allows), and then names its first bad line;
- exact accounting from the ledger: rows_in = loaded + quarantined + duplicate, rows_in being
  the number of records the file holds;
- every record no mutation touched loads with its exact values (unless a later record took
  its key, which the duplicate count then shows);
- every damaged record is quarantined under its record number (with its raw text and reason
  when it cannot be parsed), or, if the damage left it valid, loads with the damaged values.

The files come from tests/damaged_files.py, the oracles from tests/damage_oracle.py. Each
example runs one project holding one object per file, so a file refused whole touches no
other. The examples are derandomised: every run tests the same files, and a failure is
reported as generated, not shrunk (shrinking runs penstock hundreds of times: minutes). To
look further, `PENSTOCK_PROPERTY_EXAMPLES=500 pytest --timeout 0 ...` runs that many random
examples of each half and shrinks a failure.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

import penstock

from damage_oracle import (
    UNKNOWN,
    Expectation,
    astuple,
    cut_inside_character,
    encoding_limit,
    expect_jsonl,
    invalid_lines,
    lf_line,
    line_of,
)
from damaged_files import (
    CSV_LINE_SPAN,
    Damaged,
    Mutation,
    Row,
    Written,
    mutate,
    mutations,
    project_yml,
    record_bytes,
    record_starts,
    row_lists,
    styles,
    write_csv,
    write_jsonl,
)
from helpers import query, write_project

FILES_PER_EXAMPLE = 3
EXPLORE = os.environ.get("PENSTOCK_PROPERTY_EXAMPLES")
SETTINGS = settings(
    max_examples=int(EXPLORE) if EXPLORE else 70,
    derandomize=not EXPLORE,
    phases=list(Phase) if EXPLORE else [Phase.explicit, Phase.reuse, Phase.generate],
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

damaged_files = st.lists(
    st.tuples(row_lists(), styles, mutations),
    min_size=1,
    max_size=FILES_PER_EXAMPLE,
)


def run_files(
    root: Path, ext: str, files: Sequence[tuple[list[Row], Any, Sequence[Mutation]]]
) -> tuple[Path, penstock.RunResult, list[tuple[str, Written, Damaged]]]:
    """Write each file (ids made distinct across files), damage it, run penstock once."""
    written: list[tuple[str, Written, Damaged]] = []
    landing: dict[str, str | bytes] = {}
    for index, (rows, style, changes) in enumerate(files):
        name = f"f{index}"
        if ext == "csv":
            valid = write_csv(rows, style)
            first = valid.owner.index(0) if rows else len(valid.data)  # after the header
        else:
            valid = write_jsonl(rows, style)
            first = 0
        damaged = mutate(valid, changes, first, csv=ext == "csv")
        written.append((name, valid, damaged))
        landing[f"landing/{name}/{name}.{ext}"] = damaged.data
    project = write_project(root, project_yml([n for n, _, _ in written], ext), landing)
    result = penstock.run(project)
    return project, result, written


def ledger(project: Path, name: str) -> tuple[int, int, int, int] | None:
    rows = query(
        project,
        f"SELECT rows_in, rows_loaded, rows_quarantined, rows_duplicate FROM penstock.loads "
        f"WHERE object = '{name}'",
    )
    if not rows:
        return None
    ((rows_in, loaded, quarantined, duplicate),) = rows
    return int(rows_in), int(loaded), int(quarantined), int(duplicate)


def loaded_rows(project: Path, name: str) -> list[tuple[Any, ...]]:
    return query(project, f"SELECT id, label, amount, day FROM {name}")


def quarantine(project: Path, name: str) -> dict[int, tuple[Any, ...]]:
    """Quarantined rows by record number: (raw line, error, id, label, amount, day)."""
    rows = query(
        project,
        f"SELECT _row_number, _raw_line, _error, id, label, amount, day FROM quarantine.{name}",
    )
    by_number = {int(r[0]): tuple(r[1:]) for r in rows}
    assert len(by_number) == len(rows), "two quarantined rows share a record number"
    return by_number


def failure_of(result: penstock.RunResult, name: str) -> str | None:
    errors = [o.error or "" for o in result.outcomes if o.object == name and o.status == "failed"]
    return errors[0] if errors else None


# -- JSON Lines: an exact oracle ---------------------------------------------------------


def check_jsonl(
    project: Path, result: penstock.RunResult, name: str, d: Damaged, w: Written
) -> None:
    originals = dict(zip(w.records, w.rows, strict=True))
    expected = expect_jsonl(d.data, originals)
    for kind in sorted({r.kind for r in expected.records}):
        event(f"a record {kind}")
    event("refused" if expected.refused_at is not None else "loaded")
    error = failure_of(result, name)
    where = f"landing/{name}/{name}.jsonl"
    if expected.refused_at is not None:
        assert error is not None and error.startswith(
            f"{where}:{expected.refused_at}: not valid UTF-8 text"
        ), error
        assert ledger(project, name) is None
        return
    assert error is None, error
    counts = ledger(project, name)
    assert counts is not None
    rows_in, loaded, quarantined, duplicate = counts
    assert rows_in == len(expected.records) == loaded + quarantined + duplicate
    held = quarantine(project, name)
    _check_jsonl_quarantine(expected, held)
    _check_jsonl_loaded(expected, held, loaded_rows(project, name), duplicate)


def _check_jsonl_quarantine(expected: Expectation, held: dict[int, tuple[Any, ...]]) -> None:
    numbers = {r.number for r in expected.records}
    assert set(held) <= numbers
    for record in expected.records:
        got = held.get(record.number)
        if record.kind in ("encoding", "malformed"):
            assert got is not None, f"record {record.number} ({record.kind}) not quarantined"
            raw, error = got[0], got[1]
            assert (raw, error.split(":")[0]) == (record.raw, record.kind), (record, got)
        elif record.kind == "invalid":
            assert got is not None, f"record {record.number} breaks the contract: {record.raw}"
            assert got[0] is None, (record, got)  # parsed, not malformed
        elif record.kind == "intact" or (record.row and UNKNOWN not in record.row):
            assert got is None, f"record {record.number} is valid but quarantined: {got}"


def _check_jsonl_loaded(
    expected: Expectation,
    held: dict[int, tuple[Any, ...]],
    table: list[tuple[Any, ...]],
    duplicate: int,
) -> None:
    # every record not quarantined loads; on a repeated key the later record wins
    winners: dict[int, tuple[Any, ...]] = {}
    accepted = 0
    for record in expected.records:
        if record.number in held:
            continue
        assert record.row is not None, f"record {record.number} ({record.kind}) loaded"
        accepted += 1
        winners[record.row[0]] = record.row
    assert duplicate == accepted - len(winners)
    by_id = {row[0]: row for row in table}
    assert len(by_id) == len(table) == len(winners)
    for key, row in winners.items():
        got = by_id.get(key)
        assert got is not None, f"id {key} not loaded"
        for want, have in zip(row, got, strict=True):
            assert want is UNKNOWN or want == have, (row, got)


@SETTINGS
@given(files=damaged_files)
def test_damaged_json_lines_files(tmp_path_factory: pytest.TempPathFactory, files: Any) -> None:
    root = tmp_path_factory.mktemp("jsonl")
    project, result, written = run_files(root, "jsonl", files)
    for name, valid, damaged in written:
        check_jsonl(project, result, name, damaged, valid)


# -- CSV: exact where the reader's resynchronisation cannot matter -------------------------


def check_csv(project: Path, result: penstock.RunResult, name: str, d: Damaged, w: Written) -> None:
    texts = record_bytes(d)
    present = sorted(texts)
    untouched = [i for i in present if i not in d.touched]
    bad_records = []
    for index in present:
        try:
            texts[index].decode("utf-8")
        except UnicodeDecodeError:
            if not (index == present[-1] and cut_inside_character(texts[index])):
                bad_records.append(index)  # (a character cut off by a cut may count either way)
    bad_lines = invalid_lines(d.data)
    error = failure_of(result, name)
    # Files of up to 100 records may hold one record with invalid bytes, unless it is their
    # only record. Two bad lines may be two such records; one bad line may be the only record
    # when moved boundaries can join the records left. With no boundary moved, the records
    # are the ones written.
    fewest = max(1, len(present) - len(d.boundaries))
    may_refuse = len(bad_lines) >= 2 or (len(bad_lines) == 1 and fewest == 1)
    must_refuse = not d.boundaries and len(bad_records) > encoding_limit(len(present))
    if error is not None:
        assert may_refuse, f"refused without cause: {error}"
        first = bad_lines[0]
        lines = (first + 1, lf_line(d.data, first))  # a bare CR may end a line or not
        where = {f"landing/{name}/{name}.csv:{n}:" for n in lines}
        assert any(w in error for w in where), (error, where)
        assert ledger(project, name) is None
        return
    assert not must_refuse, f"{len(bad_records)} records hold invalid bytes, yet it loaded"
    counts = ledger(project, name)
    assert counts is not None
    rows_in, loaded, quarantined, duplicate = counts
    assert rows_in == loaded + quarantined + duplicate
    held = quarantine(project, name)
    table = loaded_rows(project, name)
    table_ids = {row[0]: row for row in table}
    originals = {i: astuple(w.rows[i]) for i in present}

    # before the first moved boundary, records keep their numbers exactly
    first_moved = min(d.boundaries, default=len(w.rows))
    for index in present:
        if index >= first_moved:
            break
        got = held.get(index + 1)
        if index in d.touched:
            continue  # quarantined under its number, or loaded with what the damage left
        assert got is None, f"untouched record {index + 1} quarantined: {got}"
    for number in held:
        if number <= first_moved:
            assert number - 1 in d.touched, f"record {number} quarantined, yet untouched"

    # an untouched record loads exactly, unless a moved boundary shortly before it may have
    # swallowed it into a quarantined record, or a later record took its key
    starts = record_starts(d)
    moved_lines = [line_of(d.data, starts[b]) for b in d.boundaries if b in starts]
    # a malformed record is in its raw line; records swallowed by a quoted field that a moved
    # quote left open are in that field's raw value (the last of them may run on into the
    # next fields: its start, after a line break, is there)
    raw_held = [",".join(str(v) for v in row if v is not None) for row in held.values()]
    for index in untouched:
        want = originals[index]
        if table_ids.get(want[0]) == want:
            continue
        if want[0] in table_ids:
            continue  # superseded by a later record with its key (counted as a duplicate)
        line = line_of(d.data, starts[index])
        near = any(0 <= line - m <= CSV_LINE_SPAN for m in moved_lines)
        text = w.records[index].decode()
        start = "\n" + text.split(",", 1)[0] + ","
        assert near and any(text in raw or start in raw for raw in raw_held), (
            f"untouched record {index + 1} not loaded: {want}"
        )
    # no quarantined row is an untouched record on its own
    for number, row in held.items():
        raw = row[0]
        for index in untouched:
            assert raw != w.records[index].decode(), f"untouched record quarantined as {number}"
    # every loaded row is an original record, or explained by the damage
    extra = [row for row in table if row not in originals.values()]
    assert len(extra) <= len(d.touched) + len(d.boundaries), extra


@SETTINGS
@given(files=damaged_files)
def test_damaged_csv_files(tmp_path_factory: pytest.TempPathFactory, files: Any) -> None:
    root = tmp_path_factory.mktemp("csv")
    project, result, written = run_files(root, "csv", files)
    for name, valid, damaged in written:
        check_csv(project, result, name, damaged, valid)
