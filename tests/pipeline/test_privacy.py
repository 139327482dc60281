"""`pii: hash | mask | drop | keep`: personal data never rests in the warehouse or the
quarantine in clear; hashed keys still merge; the stage zone keeps the data as it came."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

import penstock
from penstock.errors import ProjectError

from helpers import query, write_project

KEY = "a-test-key-of-32-characters-long"
YML = """
name: privacy
privacy:
  key: "${env:PENSTOCK_TEST_PII_KEY}"
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  customers:
    source: landing
    files: "customers/*.csv"
    key: [customer_id]
    order_by: updated_at
    load: merge
    columns:
      customer_id: {type: integer, required: true, pii: hash}
      email:       {type: text, pattern: "@", pii: hash}
      phone:       {type: text, pii: mask}
      notes:       {type: text, pii: drop}
      name:        {type: text, pii: keep}
      age:         {type: integer, min: 0}
      updated_at:  {type: timestamp, required: true}
"""
HEADER = "customer_id,email,phone,notes,name,age,updated_at\n"
FIRST = (
    HEADER
    + "007,ann@example.com,+44 20 7946 0958,likes cats,Ann,34,2024-01-01 10:00\n"
    + "2,bob@example.com,555,,Bob,-3,2024-01-01 10:00\n"
    + "3,no-at-sign,+15550100777,secret note,Cy,20,2024-01-01 10:00\n"
    + "4,dan@example.com,1,2,3,4,5,6\n"
)
CLEAR = [
    "ann@example.com",
    "bob@example.com",
    "no-at-sign",
    "dan@example.com",
    "+44 20 7946 0958",  # whole values: a few digits alone turn up in ids and hashes
    "likes cats",
    "secret note",
    KEY,
]


def hmac_hex(text: str) -> str:
    return hmac.new(KEY.encode(), text.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch, no_secrets: None) -> Iterator[None]:
    monkeypatch.setenv("PENSTOCK_TEST_PII_KEY", KEY)
    yield


def test_each_treatment_in_the_table_and_the_quarantine(tmp_path: Path, keyed: None) -> None:
    project = write_project(tmp_path, YML, {"landing/customers/a.csv": FIRST})
    assert penstock.run(project).status == "success"
    columns = [r[0] for r in query(project, "DESCRIBE customers")]
    assert "notes" not in columns  # dropped: never stored
    types = dict(query(project, "SELECT column_name, column_type FROM (DESCRIBE customers)"))
    assert types["customer_id"] == "VARCHAR" and types["age"] == "INTEGER"
    rows = query(project, "SELECT customer_id, email, phone, name, age FROM customers")
    # '007' is the integer 7: its text as the warehouse shows it is hashed
    assert rows == [(hmac_hex("7"), hmac_hex("ann@example.com"), "***0958", "Ann", 34)]

    held = query(
        project,
        "SELECT _row_number, customer_id, email, phone, notes, name, _raw_line, _error "
        "FROM quarantine.customers ORDER BY _row_number",
    )
    assert held == [
        (2, hmac_hex("2"), hmac_hex("bob@example.com"), "***", None, "Bob", None, None),
        (3, hmac_hex("3"), hmac_hex("no-at-sign"), "***0777", None, "Cy", None, None),
        # malformed: the line stays in the stage zone only; the error keeps its kind
        (4, None, None, None, None, None, None, "too many columns"),
    ]
    (lake_file,) = (project / "lake" / "quarantine" / "customers").glob("*.parquet")
    in_lake = duckdb.sql(
        f"SELECT customer_id, email, phone, notes, _raw_line FROM '{lake_file}' "
        "ORDER BY _row_number"
    ).fetchall()
    assert [r[:4] for r in in_lake] == [r[1:5] for r in held]
    assert all(r[4] is None for r in in_lake)


def _every_text(project: Path) -> str:
    """Every value of every table of the warehouse, the lake's quarantine files, the metadata
    store and the lineage file, as one text."""
    parts: list[str] = []
    conn = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    try:
        tables = conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT internal"
        ).fetchall()
        for schema, table in tables:
            parts.append(repr(conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()))
    finally:
        conn.close()
    for path in (project / "lake" / "quarantine").rglob("*.parquet"):
        parts.append(repr(duckdb.sql(f"SELECT * FROM '{path}'").fetchall()))
    store = sqlite3.connect(project / ".penstock" / "metadata.db")
    try:
        names = [r[0] for r in store.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for name in names:
            parts.append(repr(store.execute(f'SELECT * FROM "{name}"').fetchall()))
    finally:
        store.close()
    lineage = project / ".penstock" / "openlineage.jsonl"
    if lineage.exists():
        parts.append(lineage.read_text())
    return "\n".join(parts)


def test_no_clear_value_rests_outside_the_stage_zone(tmp_path: Path, keyed: None) -> None:
    project = write_project(tmp_path, YML, {"landing/customers/a.csv": FIRST})
    penstock.run(project)
    penstock.rebuild(project)
    text = _every_text(project)
    assert [value for value in CLEAR if value in text] == []
    # the stage zone is the raw copy rebuilds replay: it still holds them (the check above
    # would pass vacuously if nothing were read)
    staged = next((project / "lake" / "stage" / "customers").iterdir())
    assert "likes cats" in (staged / "data.csv").read_text()


def test_a_hashed_key_still_merges_and_supersedes(
    tmp_path: Path, keyed: None, cli: Callable[..., tuple[int, str, str]]
) -> None:
    project = write_project(tmp_path, YML, {"landing/customers/a.csv": FIRST})
    penstock.run(project)
    (project / "landing" / "customers" / "b.csv").write_text(
        HEADER
        + "7,ann@example.com,+44 20 7946 0999,,Ann,35,2024-02-01 10:00\n"
        + "2,bob@example.com,555,,Bob,41,2024-02-01 10:00\n"
    )
    penstock.run(project)
    rows = query(project, "SELECT customer_id, phone, age FROM customers ORDER BY age")
    assert rows == [(hmac_hex("7"), "***0999", 35), (hmac_hex("2"), "***", 41)]
    counts = query(project, "SELECT rows_inserted, rows_updated FROM penstock.loads")
    assert sorted(counts) == [(1, 0), (1, 1)]
    # bob's quarantined row (age -3) is superseded by his later loaded row
    code, out, _ = cli("quarantine", "customers", "-p", project, "--json")
    assert code == 0
    superseded = {(r["_row_number"], r["_superseded"]) for r in json.loads(out)["rows"]}
    assert superseded == {(2, True), (3, False), (4, False)}


def test_rebuild_gives_the_same_hashes(tmp_path: Path, keyed: None) -> None:
    project = write_project(tmp_path, YML, {"landing/customers/a.csv": FIRST})
    penstock.run(project)
    before = query(project, "SELECT * EXCLUDE (_loaded_at) FROM customers")
    penstock.rebuild(project)
    assert query(project, "SELECT * EXCLUDE (_loaded_at) FROM customers") == before


SCD2 = """
name: privacy_scd2
privacy: {key: "${env:PENSTOCK_TEST_PII_KEY}"}
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  people:
    source: landing
    files: "people/*.csv"
    key: [id]
    load: scd2
    columns:
      id:    {type: integer, required: true}
      email: {type: text, pii: hash}
      phone: {type: text, pii: mask}
"""


def test_scd2_tracks_versions_of_treated_values(tmp_path: Path, keyed: None) -> None:
    project = write_project(
        tmp_path, SCD2, {"landing/people/1.csv": "id,email,phone\n1,a@x.org,+15550100111\n"}
    )
    penstock.run(project)
    (project / "landing" / "people" / "2.csv").write_text("id,email,phone\n1,b@x.org,+1 5550\n")
    penstock.run(project)
    rows = query(project, "SELECT email, phone, _is_current FROM people ORDER BY _valid_from")
    assert rows == [(hmac_hex("a@x.org"), "***0111", False), (hmac_hex("b@x.org"), "***", True)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('privacy:\n  key: "${env:PENSTOCK_TEST_PII_KEY}"\n', None),
        ("", "pii: hash needs a key"),
        ('privacy:\n  key: "a-literal-key-in-the-yaml-file"\n', "give the key by reference"),
        ('privacy:\n  key: "${env:PENSTOCK_TEST_SHORT_KEY}"\n', "use at least 16"),
    ],
)
def test_the_key_must_be_a_long_enough_reference(
    tmp_path: Path,
    keyed: None,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
    message: str | None,
) -> None:
    monkeypatch.setenv("PENSTOCK_TEST_SHORT_KEY", "too-short")
    yml = YML.replace('privacy:\n  key: "${env:PENSTOCK_TEST_PII_KEY}"\n', change)
    project = write_project(tmp_path, yml)
    if message is None:
        penstock.load_project(project)
        return
    with pytest.raises(ProjectError) as raised:
        penstock.load_project(project)
    assert message in raised.value.message
    assert "penstock.yml:" in raised.value.message
    assert KEY not in raised.value.message and "too-short" not in raised.value.message


@pytest.mark.parametrize(
    ("column", "treatment", "message"),
    [
        ("customer_id", "mask", "a key must be stored as read, or hashed"),
        ("customer_id", "drop", "a key must be stored as read, or hashed"),
        ("updated_at", "hash", "order_by column 'updated_at' is pii: hash"),
    ],
)
def test_keys_and_order_by_cannot_be_masked_or_dropped(
    tmp_path: Path, keyed: None, column: str, treatment: str, message: str
) -> None:
    line = next(row for row in YML.splitlines() if row.strip().startswith(f"{column}:"))
    treated = line.rstrip("}").split(", pii:")[0].rstrip(" }") + f", pii: {treatment}}}"
    project = write_project(tmp_path, YML.replace(line, treated))
    with pytest.raises(ProjectError) as raised:
        penstock.load_project(project)
    assert message in raised.value.message


def test_lineage_says_which_columns_are_masked(tmp_path: Path, keyed: None) -> None:
    project = write_project(tmp_path, YML, {"landing/customers/a.csv": FIRST})
    penstock.run(project)
    events = [
        json.loads(line)
        for line in (project / ".penstock" / "openlineage.jsonl").read_text().splitlines()
    ]
    table = next(
        output
        for event in events
        for output in event.get("outputs", [])
        if output["name"].endswith(".customers")
        and "columnLineage" in output.get("facets", {})
        and not output["name"].startswith("quarantine")
    )
    fields = table["facets"]["columnLineage"]["fields"]
    assert "notes" not in fields
    masking = {
        name: spec["inputFields"][0]["transformations"][0].get("masking", False)
        for name, spec in fields.items()
    }
    assert masking == {
        "customer_id": True,
        "email": True,
        "phone": True,
        "name": False,
        "age": False,
        "updated_at": False,
    }
    schema = {f["name"]: f["type"] for f in table["facets"]["schema"]["fields"]}
    assert schema["email"] == "text" and schema["customer_id"] == "text"
    assert "notes" not in schema


def test_the_catalog_records_which_columns_are_personal_data(tmp_path: Path, keyed: None) -> None:
    project = write_project(tmp_path, YML, {"landing/customers/a.csv": FIRST})
    penstock.run(project)
    store = sqlite3.connect(project / ".penstock" / "metadata.db")
    try:
        rows = dict(store.execute("SELECT name, pii FROM catalog_attributes").fetchall())
    finally:
        store.close()
    assert rows == {
        "customer_id": "hash",
        "email": "hash",
        "phone": "mask",
        "notes": "drop",
        "name": "keep",
        "age": None,
        "updated_at": None,
    }
