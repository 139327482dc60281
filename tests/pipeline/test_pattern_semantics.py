"""A pattern searches the value (RE2 `regexp_matches`); `^…$` anchors it to the whole value."""

from __future__ import annotations

from pathlib import Path

import penstock

from helpers import query, write_project

YML = """
name: patterns
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  codes:
    source: landing
    files: "codes/*.csv"
    columns:
      id:       {type: integer, required: true}
      loose:    {type: text, pattern: "[A-Z]{2}"}
      anchored: {type: text, pattern: "^[A-Z]{2}$"}
"""


def test_an_unanchored_pattern_matches_anywhere_in_the_value(tmp_path: Path) -> None:
    body = "id,loose,anchored\n1,ABC1,AB\n2,xAB,ABC1\n3,zzXYzz,NO\n"
    project = write_project(tmp_path, YML, {"landing/codes/a.csv": body})
    assert penstock.run(project).status == "success"
    assert query(project, "SELECT id FROM codes ORDER BY id") == [(1,), (3,)]
    reasons = query(project, "SELECT _row_number, _reasons FROM quarantine.codes ORDER BY 1")
    assert reasons == [(2, ["pattern:anchored"])]
