"""Seeded random files: quarantined record numbers and row accounting are exact.

Malformed lines are removed from the parsed rows and kept apart; each row's record number is
recovered by an ASOF join. Random placements (at the start, at the end, in runs, mixed with
type failures and duplicate keys) check that mapping against what the generator wrote.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import penstock

from helpers import query, write_project

YML = """
name: fuzz
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  t:
    source: landing
    files: "*.{ext}"
    key: [k]
    order_by: v
    load: merge
    columns:
      k: {type: integer, required: true}
      v: {type: integer}
"""


def _file(rng: random.Random, jsonl: bool) -> tuple[str, dict[int, list[str]], int]:
    """Lines, the expected reasons by record number, and the expected duplicate count."""
    lines, expected = [], {}
    winners: dict[int, tuple[int, int]] = {}  # key -> (v, record) of the current winner
    accepted = 0
    for record in range(1, rng.randint(1, 60) + 1):
        kind = rng.choices(["good", "dup", "malformed", "type"], weights=[5, 2, 2, 1])[0]
        if kind == "malformed":
            lines.append("{oops" if jsonl else "1,2,3")
            expected[record] = ["malformed"]
            continue
        if kind == "type":
            lines.append('{"k": "x", "v": 1}' if jsonl else "x,1")
            expected[record] = ["type:k"]
            continue
        key = rng.choice(list(winners)) if kind == "dup" and winners else record * 10
        v = rng.randint(0, 5)
        lines.append(f'{{"k": {key}, "v": {v}}}' if jsonl else f"{key},{v}")
        accepted += 1
        best = winners.get(key)
        if best is None or (v, record) >= best:
            winners[key] = (v, record)
    body = "\n".join(lines) + "\n"
    if not jsonl:
        body = "k,v\n" + body
    return body, expected, accepted - len(winners)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_random_files_keep_exact_record_numbers(tmp_path: Path, seed: int, fmt: str) -> None:
    rng = random.Random(seed)
    files, expected, duplicates = {}, {}, {}
    for index in range(3):
        body, reasons, dups = _file(rng, fmt == "jsonl")
        name = f"landing/f{index}.{fmt}"
        files[name], expected[name], duplicates[name] = body, reasons, dups
    project = write_project(tmp_path, YML.replace("{ext}", fmt), files)
    result = penstock.run(project)
    assert result.status == "success"
    for outcome in result.loads():
        assert outcome.rows_in == (
            outcome.rows_loaded + outcome.rows_quarantined + outcome.rows_duplicate
        )
        assert outcome.rows_duplicate == duplicates[outcome.source_file or ""]
    got = query(
        project,
        "SELECT l.source_file, q._row_number, q._reasons FROM quarantine.t q "
        "JOIN penstock.loads l ON l.batch_id = q._batch_id",
    )
    actual: dict[str, dict[int, list[str]]] = {name: {} for name in files}
    for name, number, reasons in got:
        actual[name][number] = list(reasons)
    assert actual == expected
