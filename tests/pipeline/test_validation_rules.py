"""Each rule kind on each type family, CSV dialect options, and reason order."""

from __future__ import annotations

from pathlib import Path

import penstock

from helpers import query, write_project

RULES = """
name: rules
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  things:
    source: landing
    files: "things/*.csv"
    csv: {delimiter: ";", quote: "'", escape: "'", header: false}
    columns:
      id:      {type: integer, required: true, min: 1}
      day:     {type: date, min: "2020-01-01", max: now}
      seen:    {type: timestamp, min: "2020-01-01T00:00:00", max: "2030-01-01 00:00:00"}
      ratio:   {type: double, min: 0, max: 1}
      flag:    {type: boolean}
      size:    {type: integer, in: [1, 2, 3]}
      code:    {type: text, required: true, pattern: "^[a-z;]+$", in: [abc, xyz, "semi;colon"]}
      doc:     {type: json}
    checks:
      - {name: ratio_needs_flag, expression: "ratio IS NULL OR flag"}
"""

ROWS = [
    # good rows, including a quoted field holding the delimiter
    "1;2024-01-01;2024-01-01 10:00:00;0.5;true;1;abc;{}",
    "2;;;;;;'semi;colon';",
    # one defect each
    "0;2024-01-01;;;;;abc;",  # min:id
    "3;2019-12-31;;;;;abc;",  # min:day
    "4;2999-01-01;;;;;abc;",  # max:day (now)
    "5;;2031-01-01 00:00:00;;;;abc;",  # max:seen
    "6;;;1.5;true;;abc;",  # max:ratio
    "7;;;;maybe;;abc;",  # type:flag
    "8;;;;;4;abc;",  # in:size
    "9;;;;;;ABC;",  # pattern:code, in:code
    "10;;;;;;abc;{not json",  # type:doc
    "11;;;0.5;false;;abc;",  # check:ratio_needs_flag
    ";;;;;;;",  # required:id, required:code
    "12;;;;;;   ;",  # required:code (blank text counts as missing)
]


def test_every_rule_kind_with_csv_dialect_options(tmp_path: Path) -> None:
    project = write_project(tmp_path, RULES, {"landing/things/a.csv": "\n".join(ROWS) + "\n"})
    result = penstock.run(project)
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (14, 2, 12)
    got = query(project, "SELECT _row_number, _reasons FROM quarantine.things ORDER BY 1")
    assert [(n, list(r)) for n, r in got] == [
        (3, ["min:id"]),
        (4, ["min:day"]),
        (5, ["max:day"]),
        (6, ["max:seen"]),
        (7, ["max:ratio"]),
        (8, ["type:flag"]),
        (9, ["in:size"]),
        (10, ["in:code", "pattern:code"]),
        (11, ["type:doc"]),
        (12, ["check:ratio_needs_flag"]),
        (13, ["required:id", "required:code"]),
        (14, ["required:code"]),
    ]
    loaded = query(
        project,
        "SELECT id, day::VARCHAR, seen::VARCHAR, ratio, flag, size, code, doc::VARCHAR "
        "FROM things ORDER BY id",
    )
    assert loaded == [
        (1, "2024-01-01", "2024-01-01 10:00:00", 0.5, True, 1, "abc", "{}"),
        (2, None, None, None, None, None, "semi;colon", None),
    ]
    types = dict(
        query(
            project,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'things' AND table_schema = 'main'",
        )
    )
    assert types["day"] == "DATE" and types["seen"] == "TIMESTAMP" and types["doc"] == "JSON"
    assert types["ratio"] == "DOUBLE" and types["flag"] == "BOOLEAN"
