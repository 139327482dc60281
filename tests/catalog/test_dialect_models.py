"""The value-dialect keys: their models, source defaults, and errors located at file:line."""

from collections.abc import Callable
from pathlib import Path

import pytest

from penstock.catalog import ColumnSpec, FilesSource, ObjectSpec, load_project
from penstock.catalog.dialect import PLAIN, ColumnDialect, column_dialect

LoadErrors = Callable[[Path], list[str]]
WriteFiles = Callable[..., Path]

PROJECT = """
name: shop
sources:
  landing:
    kind: files
    path: ./landing
    null_values: [NA, "", "N/A"]
    date_format: "%d/%m/%Y"
    decimal_separator: ","
    thousands_separator: "."
objects:
  inherits:
    source: landing
    files: "a/*.csv"
    columns:
      day: {type: date}
      amount: {type: "decimal(12,2)"}
  overrides:
    source: landing
    files: "b/*.csv"
    null_values: ["-"]
    date_format: ["%b %d %Y", "%Y-%m-%d"]
    timestamp_format: "%Y-%m-%d %H:%M:%S%z"
    thousands_separator: " "
    columns:
      day: {type: date}
      seen: {type: timestamptz}
      own: {type: timestamp, format: ["%d.%m.%Y %H:%M"]}
      amount: {type: double}
      note: {type: text}
"""


def test_objects_take_source_defaults_key_by_key(write_files: WriteFiles) -> None:
    project = load_project(write_files({"penstock.yml": PROJECT}))
    inherits, overrides = project.objects["inherits"], project.objects["overrides"]
    assert inherits.null_values == ("NA", "", "N/A")
    assert inherits.date_format == ("%d/%m/%Y",)
    assert (inherits.decimal_separator, inherits.thousands_separator) == (",", ".")
    # the object's own keys win; the others still come from the source
    assert overrides.null_values == ("-",)
    assert overrides.date_format == ("%b %d %Y", "%Y-%m-%d")
    assert overrides.timestamp_format == ("%Y-%m-%d %H:%M:%S%z",)
    assert (overrides.decimal_separator, overrides.thousands_separator) == (",", " ")
    # the source keeps its own settings
    source = project.sources["landing"]
    assert isinstance(source, FilesSource) and source.date_format == ("%d/%m/%Y",)


def test_what_each_column_gets(write_files: WriteFiles) -> None:
    obj = load_project(write_files({"penstock.yml": PROJECT})).objects["overrides"]
    got = {name: column_dialect(obj, spec) for name, spec in obj.columns.items()}
    assert got["day"] == ColumnDialect(null_values=("-",), formats=("%b %d %Y", "%Y-%m-%d"))
    assert got["seen"].formats == ("%Y-%m-%d %H:%M:%S%z",)
    # a column's own format replaces the object's
    assert got["own"].formats == ("%d.%m.%Y %H:%M",)
    # separators only for numbers, formats only for dates and timestamps
    assert got["amount"] == ColumnDialect(("-",), None, ",", " ")
    assert got["note"] == ColumnDialect(null_values=("-",))


def test_no_dialect_declared_is_the_plain_dialect() -> None:
    obj = ObjectSpec(
        name="o",
        source="s",
        files="*.csv",
        columns={"n": ColumnSpec(type="integer"), "d": ColumnSpec(type="date")},
    )
    assert obj.null_values is None and obj.date_format is None
    assert all(column_dialect(obj, spec) == PLAIN for spec in obj.columns.values())
    assert PLAIN.plain_numbers and PLAIN.formats is None


def test_patterns_and_tokens_errors_name_file_line_and_key(
    write_files: WriteFiles, load_errors: LoadErrors
) -> None:
    root = write_files(
        {
            "penstock.yml": """
            name: shop
            include: [objects/*.yml]
            sources:
              landing:
                kind: files
                path: ./landing
                null_values: [NA, -999, " x", off]
            objects:
              a:
                source: landing
                files: "a/*.csv"
                date_format:
                  - "%d/%m/%Y"
                  - "%Q/%m/%Y"
                  - "%d/%m"
                columns:
                  d: {type: date, format: "%Y-%m-%d %z"}
                  n: {type: integer, format: "%Y"}
            """,
            "objects/b.yml": """
            objects:
              b:
                source: landing
                files: "b/*.csv"
                timestamp_format: 5
                decimal_separator: ",,"
                thousands_separator: "e"
                columns:
                  t: {type: timestamp}
            """,
        }
    )
    assert load_errors(root) == [
        "penstock.yml:7: sources.landing.null_values[1]: expected text: quote the token as it "
        'is written ("-999")',
        "penstock.yml:7: sources.landing.null_values[2]: ' x' has surrounding whitespace, which "
        "every value loses before it is matched: it could never match",
        "penstock.yml:7: sources.landing.null_values[3]: expected text: quote the token "
        "(unquoted, YAML reads yes, no, on and off as true or false)",
        "penstock.yml:14: objects.a.date_format[1]: invalid strftime pattern '%Q/%m/%Y': "
        "Unrecognized format for strftime/strptime: %Q",
        "penstock.yml:15: objects.a.date_format[2]: '%d/%m': a pattern must name a whole day: "
        "year, month and day (%Y or %y; %m, %b or %B; %d), year and day of the year (%Y %j), "
        "or ISO year, week and weekday (%G %V %u)",
        "penstock.yml:17: objects.a.columns.d.format: '%Y-%m-%d %z': a date has no offset or "
        "zone (%z, %Z): read such values into a timestamp or timestamptz column",
        "penstock.yml:18: objects.a.columns.n.format: format applies to date, timestamp and "
        "timestamptz columns, not integer",
        "objects/b.yml:5: objects.b.timestamp_format: expected a strftime pattern or a list of "
        "them",
        "objects/b.yml:6: objects.b.decimal_separator: must be a single character, got ',,'",
        "objects/b.yml:7: objects.b.thousands_separator: 'e' cannot be a separator (not a digit, "
        "+, -, e or E)",
    ]


@pytest.mark.parametrize(
    ("source_keys", "object_keys", "expected"),
    [
        (
            "",
            'decimal_separator: ",", thousands_separator: ","',
            "penstock.yml:6: objects.o.thousands_separator: decimal_separator and "
            "thousands_separator are both ','",
        ),
        (
            "",
            'thousands_separator: "."',
            "penstock.yml:6: objects.o.thousands_separator: thousands_separator '.' is the "
            "default decimal separator: declare decimal_separator too",
        ),
        (
            ', decimal_separator: ",", thousands_separator: "."',
            'decimal_separator: "."',
            "penstock.yml:6: objects.o.decimal_separator: decimal_separator and "
            "thousands_separator are both '.' (one from the defaults of source 'landing')",
        ),
        (
            ', thousands_separator: "."',
            "",
            "penstock.yml:3: sources.landing.thousands_separator: thousands_separator '.' is the "
            "default decimal separator: declare decimal_separator too",
        ),
    ],
)
def test_separator_clashes_are_located(
    write_files: WriteFiles,
    load_errors: LoadErrors,
    source_keys: str,
    object_keys: str,
    expected: str,
) -> None:
    root = write_files(
        {
            "penstock.yml": f"""
            name: shop
            sources:
              landing: {{kind: files, path: ./landing{source_keys}}}
            objects:
              o:
                {{source: landing, files: "o/*.csv", {object_keys}{", " if object_keys else ""}columns: {{n: {{type: double}}}}}}
            """  # noqa: E501
        }
    )
    assert load_errors(root) == [expected]


def test_an_object_may_fix_its_sources_separators(write_files: WriteFiles) -> None:
    root = write_files(
        {
            "penstock.yml": """
            name: shop
            sources:
              landing:
                {kind: files, path: ./landing, decimal_separator: ",", thousands_separator: "."}
            objects:
              us:
                source: landing
                files: "us/*.csv"
                decimal_separator: "."
                thousands_separator: ","
                columns: {n: {type: double}}
            """
        }
    )
    obj = load_project(root).objects["us"]
    assert (obj.decimal_separator, obj.thousands_separator) == (".", ",")


def test_the_dialect_is_part_of_the_catalog_version(write_files: WriteFiles) -> None:
    text = PROJECT
    first = load_project(write_files({"penstock.yml": text})).project_hash
    changed = text.replace('date_format: "%d/%m/%Y"', 'date_format: "%m/%d/%Y"')
    second = load_project(write_files({"penstock.yml": changed})).project_hash
    assert first != second


def test_a_timestamp_column_no_pattern_could_fill_is_refused(
    write_files: WriteFiles, load_errors: LoadErrors
) -> None:
    root = write_files(
        {
            "penstock.yml": """
            name: shop
            sources:
              landing: {kind: files, path: ./landing, timestamp_format: "%d.%m.%Y %H:%M %z"}
            objects:
              own:
                source: landing
                files: "own/*.csv"
                timestamp_format: ["%Y-%m-%d %H:%M %Z", "%Y-%m-%d %H:%M:%S %z"]
                columns:
                  local: {type: timestamp}
                  oslo: {type: timestamp, timezone: Europe/Oslo}
                  instant: {type: timestamptz}
                  mixed: {type: timestamp, format: ["%d.%m.%Y %H:%M %z", "%d.%m.%Y %H:%M"]}
                  zoned: {type: timestamp, format: "%d.%m.%Y %H:%M %z"}
              inherited:
                source: landing
                files: "inherited/*.csv"
                columns:
                  local: {type: timestamp}
            """
        }
    )
    rule = (
        "every pattern reads an offset (%z or %Z), but timestamp column '{}' holds local "
        "times: declare its timezone: (to convert to), use type timestamptz, or add a pattern "
        "without an offset"
    )
    assert load_errors(root) == [
        "penstock.yml:8: objects.own.timestamp_format: " + rule.format("local"),
        "penstock.yml:14: objects.own.columns.zoned.format: " + rule.format("zoned"),
        "penstock.yml:19: objects.inherited.columns.local: " + rule.format("local"),
    ]
