"""The value dialect on small real-shaped files: null tokens, strftime dates, separators.

Every setting is read when a batch is validated, never when it is staged: the stage keeps the
raw text, so a changed setting applies on the next `penstock rebuild`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import penstock

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

HEADER = """
name: dialect
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
"""


def _reasons(project: Path, table: str) -> list[tuple[int, list[str]]]:
    rows = query(project, f"SELECT _row_number, _reasons FROM quarantine.{table} ORDER BY 1")
    return [(int(n), list(r)) for n, r in rows]


PENGUINS_YML = (
    HEADER
    + """
  penguins:
    source: landing
    files: "penguins.csv"
    null_values: [NA, "", "N/A"]
    columns:
      species: {type: text, required: true}
      island: {type: text}
      bill_length_mm: {type: double}
      body_mass_g: {type: integer, required: true}
      sex: {type: text, in: [male, female]}
      year: {type: integer}
"""
)

PENGUINS_CSV = """species,island,bill_length_mm,body_mass_g,sex,year
Adelie,Torgersen,39.1,3750,male,2007
Adelie,Torgersen,NA,3800,NA,2007
Adelie,Torgersen,NA,NA,NA,2007
Adelie, NA ,N/A,3250,female,NA
Gentoo,Biscoe,46.1,4500,na,2007
NA,Biscoe,x,4400,female,2008
"""


def test_na_tokens_are_missing_in_number_and_text_columns(tmp_path: Path) -> None:
    project = write_project(tmp_path, PENGUINS_YML, {"landing/penguins.csv": PENGUINS_CSV})
    (load,) = penstock.run(project).loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (6, 3, 3)
    loaded = query(project, "SELECT * EXCLUDE (_batch_id, _loaded_at) FROM penguins ORDER BY 4")
    assert loaded == [
        # surrounding whitespace is trimmed before matching (island); N/A is a token too
        ("Adelie", None, None, 3250, "female", None),
        ("Adelie", "Torgersen", 39.1, 3750, "male", 2007),
        # NA is NULL in a double and in a text column: no type:, no in: failure
        ("Adelie", "Torgersen", None, 3800, None, 2007),
    ]
    # a token in a required column fires required:, never type:; tokens are case-sensitive
    # (`na` is a value: in:sex fails); a token in a required text column is missing too
    assert _reasons(project, "penguins") == [
        (3, ["required:body_mass_g"]),
        (5, ["in:sex"]),
        (6, ["required:species", "type:bill_length_mm"]),
    ]
    # the quarantine keeps the raw text as written
    raw = query(project, "SELECT species, body_mass_g, sex FROM quarantine.penguins ORDER BY 1")
    assert raw == [("Adelie", "NA", "NA"), ("Gentoo", "4500", "na"), ("NA", "4400", "female")]


STOCKS_YML = (
    HEADER
    + """
  stocks:
    source: landing
    files: "stocks.csv"
    date_format: "%b %d %Y"
    columns:
      symbol: {type: text, required: true}
      date: {type: date, required: true}
      price: {type: "decimal(10,2)", min: 0}
"""
)

STOCKS_CSV = """symbol,date,price
MSFT,Jan 1 2000,39.81
MSFT,Feb 1 2000,36.35
AMZN, Mar 1 2000\t,64.56
AMZN,JAN 1 2001,17.31
IBM,2000-04-01,100.52
IBM,Feb 30 2000,101.00
IBM,Jan 1 2000 noon,99.00
"""


def test_month_name_dates(tmp_path: Path) -> None:
    project = write_project(tmp_path, STOCKS_YML, {"landing/stocks.csv": STOCKS_CSV})
    penstock.run(project)
    assert query(project, "SELECT symbol, date, price FROM stocks ORDER BY date") == [
        ("MSFT", date(2000, 1, 1), Decimal("39.81")),
        ("MSFT", date(2000, 2, 1), Decimal("36.35")),
        ("AMZN", date(2000, 3, 1), Decimal("64.56")),
        # month names match in any letter case (DuckDB's strptime)
        ("AMZN", date(2001, 1, 1), Decimal("17.31")),
    ]
    # ISO is not added to the declared formats; an impossible day and trailing text fail
    assert _reasons(project, "stocks") == [
        (5, ["type:date"]),
        (6, ["type:date"]),
        (7, ["type:date"]),
    ]


FORMATS_YML = (
    HEADER
    + """
  events:
    source: landing
    files: "events.csv"
    date_format: ["%d/%m/%Y", "%Y-%m-%d"]
    timestamp_format: ["%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S.%n"]
    columns:
      id: {type: integer, required: true}
      day: {type: date}
      us_day: {type: date, format: "%m/%d/%Y"}
      midnight: {type: date, format: "%d/%m/%Y %H:%M"}
      at: {type: timestamp}
"""
)

FORMATS_CSV = """id,day,us_day,midnight,at
1,01/02/2000,01/02/2000,01/02/2000 00:00,01/02/2000 10:30
2,2000-02-01,12/31/2000,,01/02/2000 10:30:15.123456000
3,31/12/2000,31/12/2000,,
4,,,01/02/2000 10:30,
5,,,,01/02/2000 10:30:15.123456789
6,,,,2000-02-01 10:30
"""


def test_a_list_of_formats_and_a_column_override(tmp_path: Path) -> None:
    project = write_project(tmp_path, FORMATS_YML, {"landing/events.csv": FORMATS_CSV})
    penstock.run(project)
    assert query(project, 'SELECT id, day, us_day, midnight, "at" FROM events ORDER BY id') == [
        (1, date(2000, 2, 1), date(2000, 1, 2), date(2000, 2, 1), datetime(2000, 2, 1, 10, 30)),
        # the second pattern of the list; nanoseconds that are zeros fit a timestamp
        (2, date(2000, 2, 1), date(2000, 12, 31), None, datetime(2000, 2, 1, 10, 30, 15, 123456)),
    ]
    assert _reasons(project, "events") == [
        (3, ["type:us_day"]),  # the column's own format replaces the object's
        (4, ["type:midnight"]),  # a date read with a time must be midnight: nothing is dropped
        (5, ["type:at"]),  # nanoseconds that are not zeros would be lost
        (6, ["type:at"]),  # ISO is not implied by a declared timestamp_format
    ]


ZONES_YML = (
    HEADER
    + """
  readings:
    source: landing
    files: "readings.csv"
    timestamp_format: ["%d.%m.%Y %H:%M %z", "%d.%m.%Y %H:%M"]
    columns:
      id: {type: integer, required: true}
      local: {type: timestamp}
      oslo: {type: timestamp, timezone: Europe/Oslo}
      instant: {type: timestamptz}
      oslo_instant: {type: timestamptz, timezone: Europe/Oslo}
      named: {type: timestamptz, format: "%Y-%m-%d %H:%M %Z"}
"""
)

ZONES_CSV = (
    "id,local,oslo,instant,oslo_instant,named\n"
    "1,01.07.2024 12:00,01.07.2024 12:00 +00:00,01.07.2024 12:00 +02:00,01.07.2024 12:00,"
    "2024-07-01 12:00 Europe/Oslo\n"
    "2,01.07.2024 12:00 +02:00,,,31.03.2024 02:30,2024-07-01 12:00 Mars/Base\n"
)


def test_offsets_follow_the_timestamp_rules(tmp_path: Path) -> None:
    project = write_project(tmp_path, ZONES_YML, {"landing/readings.csv": ZONES_CSV})
    penstock.run(project)
    got = query(
        project,
        "SELECT id, local::VARCHAR, oslo::VARCHAR, instant::VARCHAR, oslo_instant::VARCHAR, "
        "named::VARCHAR FROM readings",
    )
    assert got == [
        (
            1,
            "2024-07-01 12:00:00",
            "2024-07-01 14:00:00",  # converted to the column's zone
            "2024-07-01 10:00:00+00",  # the offset honoured (the session runs in UTC)
            "2024-07-01 10:00:00+00",  # a local time in Europe/Oslo
            "2024-07-01 10:00:00+00",  # %Z reads a zone name
        )
    ]
    # an offset into a timestamp without timezone fails as with ISO text; a local time the
    # zone skips (DST gap) fails, and so does an unknown zone name
    assert _reasons(project, "readings") == [(2, ["type:local", "type:oslo_instant", "type:named"])]


AMOUNTS_YML = (
    HEADER
    + """
  eu:
    source: landing
    files: "eu.csv"
    decimal_separator: ","
    thousands_separator: "."
    columns:
      id: {type: integer, required: true}
      amount: {type: "decimal(12,2)"}
      count: {type: integer}
      ratio: {type: double}
  us:
    source: landing
    files: "us.csv"
    thousands_separator: ","
    columns:
      id: {type: integer, required: true}
      amount: {type: "decimal(12,2)"}
"""
)

EU_CSV = """id;amount;count;ratio
1;1.234,50;1.234;1.234,5e3
2;1234,5;-1.234.567;0,25
3;-1.234.567,00;7,00;,5
4;12.34,5;;
5;1,999;;
6;;1,5;
7;;;1.5
8;99.999.999.999,00;;
9; 1.234,50 ;;
"""

US_CSV = """id,amount
1,"1,234.50"
2,"1,234,567.5"
3,"1,23.5"
4,"1.234,50"
"""


def test_decimal_comma_with_thousands_dot(tmp_path: Path) -> None:
    yml = AMOUNTS_YML.replace('files: "eu.csv"', 'files: "eu.csv"\n    csv: {delimiter: ";"}')
    files = {"landing/eu.csv": EU_CSV, "landing/us.csv": US_CSV}
    project = write_project(tmp_path, yml, files)
    penstock.run(project)
    assert query(project, "SELECT id, amount, count, ratio FROM eu ORDER BY id") == [
        (1, Decimal("1234.50"), 1234, 1234500.0),
        (2, Decimal("1234.50"), -1234567, 0.25),
        (3, Decimal("-1234567.00"), 7, 0.5),
        (9, Decimal("1234.50"), None, None),
    ]
    assert _reasons(project, "eu") == [
        (4, ["type:amount"]),  # 12.34,5: groups of three digits only
        (5, ["type:amount"]),  # 1,999: a decimal(12,2) keeps no third fraction digit
        (6, ["type:count"]),  # 1,5 is no integer
        (7, ["type:ratio"]),  # 1.5: with decimal comma, a dot is a thousands mark
        (8, ["type:amount"]),  # too many integer digits for decimal(12,2)
    ]
    assert query(project, "SELECT id, amount FROM us ORDER BY id") == [
        (1, Decimal("1234.50")),
        (2, Decimal("1234567.50")),
    ]
    assert _reasons(project, "us") == [(3, ["type:amount"]), (4, ["type:amount"])]


def test_json_lines_string_values(tmp_path: Path) -> None:
    yml = (
        HEADER
        + """
  sales:
    source: landing
    files: "sales.jsonl"
    null_values: [NA, ""]
    date_format: "%b %d %Y"
    columns:
      id: {type: integer, required: true}
      day: {type: date}
      amount: {type: "decimal(12,2)", required: true}
      note: {type: text}
"""
    )
    records = [
        {"id": 1, "day": "Jan 1 2000", "amount": 1234.5, "note": "NA"},
        {"id": 2, "day": "NA", "amount": "12.345", "note": "fine"},
        {"id": 3, "day": "2000-01-01", "amount": "NA", "note": " NA "},
        # the token "" makes blank text NULL in a text column too; a token inside a longer
        # value is no token
        {"id": 4, "day": "Feb 2 2000", "amount": "1.5", "note": " \t "},
        {"id": 5, "day": "Feb 3 2000", "amount": "NAN", "note": "BANANA"},
        {"id": 6, "day": "Feb 4 2000", "amount": 2, "note": "BANANA"},
    ]
    text = "".join(json.dumps(r) + "\n" for r in records)
    project = write_project(tmp_path, yml, {"landing/sales.jsonl": text})
    penstock.run(project)
    assert query(project, "SELECT id, day, amount, note FROM sales ORDER BY id") == [
        (1, date(2000, 1, 1), Decimal("1234.50"), None),
        (4, date(2000, 2, 2), Decimal("1.50"), None),
        (6, date(2000, 2, 4), Decimal("2.00"), "BANANA"),
    ]
    assert _reasons(project, "sales") == [
        (2, ["type:amount"]),
        (3, ["type:day", "required:amount"]),
        (5, ["type:amount"]),
    ]


def test_separators_are_refused_for_json_and_not_inherited(
    tmp_path: Path, cli: Callable[..., tuple[int, str, str]]
) -> None:
    """JSON numbers and JSON strings are staged alike as text: under a thousands dot the
    number 1.234 would silently read as 1234, so JSON objects may not declare separators, and
    a source's separators reach only its CSV and Parquet objects."""
    yml = """
    name: dialect
    sources:
      landing: {kind: files, path: ./landing, settle: 0s, decimal_separator: ",",
                thousands_separator: "."}
    objects:
      sales:
        source: landing
        files: "sales.jsonl"
        columns:
          id: {type: integer, required: true}
          amount: {type: "decimal(12,3)"}
      de:
        source: landing
        files: "de.csv"
        columns:
          id: {type: integer, required: true}
          amount: {type: "decimal(12,3)"}
    """
    files = {
        "landing/sales.jsonl": '{"id": 1, "amount": 1.234}\n',
        "landing/de.csv": 'id,amount\n1,"1.234,5"\n',
    }
    project = write_project(tmp_path, yml, files)
    penstock.run(project)
    assert query(project, "SELECT id, amount FROM sales") == [(1, Decimal("1.234"))]
    assert query(project, "SELECT id, amount FROM de") == [(1, Decimal("1234.5"))]

    own = yml.replace(
        'files: "sales.jsonl"', 'files: "sales.jsonl"\n        decimal_separator: ","'
    )
    write_project(tmp_path / "own", own, files)
    code, _, err = cli("check", "-p", tmp_path / "own")
    assert code == 2
    assert "objects.sales.decimal_separator" in err or "objects.sales.decimal_separator" in _
    assert "not allowed for format json or jsonl" in err + _


def test_source_defaults_overridden_by_an_object(tmp_path: Path) -> None:
    yml = """
    name: dialect
    sources:
      landing:
        kind: files
        path: ./landing
        settle: 0s
        null_values: [NA]
        decimal_separator: ","
        thousands_separator: "."
        date_format: "%d.%m.%Y"
    objects:
      de:
        source: landing
        files: "de.csv"
        csv: {delimiter: ";"}
        columns:
          day: {type: date}
          amount: {type: "decimal(12,2)"}
          note: {type: text}
      us:
        source: landing
        files: "us.csv"
        null_values: ["-"]
        decimal_separator: "."
        thousands_separator: ","
        columns:
          day: {type: date}
          amount: {type: "decimal(12,2)"}
          note: {type: text}
    """
    files = {
        "landing/de.csv": "day;amount;note\n31.12.2000;1.234,5;NA\n",
        "landing/us.csv": 'day,amount,note\n31.12.2000,"1,234.5",NA\n-,-,-\n',
    }
    project = write_project(tmp_path, yml, files)
    penstock.run(project)
    assert query(project, "SELECT day, amount, note FROM de") == [
        (date(2000, 12, 31), Decimal("1234.50"), None)
    ]
    # `us` keeps the source's date_format, replaces its tokens and separators
    assert query(project, "SELECT day, amount, note FROM us ORDER BY day NULLS LAST") == [
        (date(2000, 12, 31), Decimal("1234.50"), "NA"),
        (None, None, None),
    ]


def test_a_changed_value_setting_applies_on_rebuild_without_restaging(tmp_path: Path) -> None:
    yml = STOCKS_YML.replace('    date_format: "%b %d %Y"\n', "")
    csv = "symbol,date,price\nMSFT,Jan 1 2000,39.81\nMSFT,Feb 1 2000,NA\n"
    project = write_project(tmp_path, yml, {"landing/stocks.csv": csv})
    (first,) = penstock.run(project).loads()
    assert _reasons(project, "stocks") == [(1, ["type:date"]), (2, ["type:date", "type:price"])]
    staged = sorted((p, p.read_bytes()) for p in (project / "lake").rglob("*") if p.is_file())

    settings = '    date_format: "%b %d %Y"\n    null_values: [NA]\n'
    (project / "penstock.yml").write_text(
        (project / "penstock.yml")
        .read_text()
        .replace("    columns:\n", settings + "    columns:\n")
    )
    (load,) = penstock.rebuild(project).loads()
    assert load.batch_id == first.batch_id
    assert query(project, "SELECT date, price FROM stocks ORDER BY date") == [
        (date(2000, 1, 1), Decimal("39.81")),
        (date(2000, 2, 1), None),
    ]
    assert _reasons(project, "stocks") == []
    # the stage zone was read again, not rewritten
    stage = [(p, b) for p, b in staged if "stage" in p.parts]
    assert stage and all(p.read_bytes() == b for p, b in stage)


def test_a_bad_pattern_is_refused_with_its_file_and_line(tmp_path: Path, cli: Cli) -> None:
    yml = STOCKS_YML.replace('"%b %d %Y"', '["%b %d %Y", "%d %b %Q"]')
    project = write_project(tmp_path, yml, {"landing/stocks.csv": STOCKS_CSV})
    code, _, err = cli("run", "-p", project)
    assert code == 2
    assert (
        "penstock.yml:10: objects.stocks.date_format[1]: invalid strftime pattern '%d %b %Q': "
        "Unrecognized format for strftime/strptime: %Q"
    ) in " ".join(err.split())
    assert not (project / "lake").exists()
