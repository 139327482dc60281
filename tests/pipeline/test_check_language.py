"""The check language beyond min/max/in/pattern: between, length, references, and the options
every rule may carry (severity, max_failure_rate). Each rule catches exactly its planted
defects, record numbers stay right, and a run and a rebuild agree."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import penstock
from penstock.errors import PenstockError, ProjectError

from helpers import query, write_project

Cli = Callable[..., tuple[int, str, str]]

YML = """
name: checks
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  customers:
    source: landing
    files: "customers/*.csv"
    key: [id]
    columns:
      id:      {type: integer, required: true}
      country: {type: text, length: 2}
  orders:
    source: landing
    files: "orders/*.csv"
    key: [order_id]
    depends_on: [customers]
    columns:
      order_id:    {type: integer, required: true}
      customer_id: {type: integer, references: customers.id}
      qty:         {type: integer, between: [1, 100]}
      note:        {type: text, length: {max: 5, severity: warn}}
      email:       {type: text, pattern: {value: "@", max_failure_rate: 40%}}
    checks:
      - {name: small_order, expression: "qty < 50", severity: warn}
"""
CUSTOMERS = "id,country\n1,NO\n2,SWE\n3,DK\n4,ÆØ\n"
ORDERS = (
    "order_id,customer_id,qty,note,email\n"
    "10,1,5,ok,a@b\n"  # clean
    "11,2,0,fine,b@c\n"  # qty below between; customer 2 was quarantined: not in the table
    "12,9,60,too long,c@d\n"  # unknown customer; note too long (warn); small_order (warn)
    "13,,200,x,nope\n"  # qty above between, pattern, small_order; NULL customer passes
    "14,3,7,hello!,e@f\n"  # note too long: warn only, loads
    "15,4,8,ÆØÅ,g@h\n"  # three characters: length counts characters, not bytes
)


def reasons_by_id(cli: Cli, project: Path, obj: str, key: str) -> dict[int, tuple[bool, list[str]]]:
    code, out, _ = cli("quarantine", obj, "-p", project, "--json")
    assert code == 0, out
    return {
        int(r[key]): (r["_loaded"], r["_reasons"], r["_row_number"])
        for r in json.loads(out)["rows"]
    }


def test_each_rule_catches_exactly_its_defects(tmp_path: Path, cli: Cli) -> None:
    project = write_project(
        tmp_path,
        YML,
        {"landing/customers/c.csv": CUSTOMERS, "landing/orders/o.csv": ORDERS},
    )
    assert penstock.run(project).status == "success"
    assert reasons_by_id(cli, project, "customers", "id") == {2: (False, ["length:country"], 2)}
    assert reasons_by_id(cli, project, "orders", "order_id") == {
        11: (False, ["between:qty", "references:customer_id"], 2),
        12: (False, ["length:note", "check:small_order", "references:customer_id"], 3),
        13: (False, ["between:qty", "pattern:email", "check:small_order"], 4),
        14: (True, ["length:note"], 5),
    }
    assert query(project, "SELECT order_id FROM orders ORDER BY 1") == [(10,), (14,), (15,)]
    ledger = query(
        project,
        "SELECT rows_in, rows_loaded, rows_quarantined, rows_warned FROM penstock.loads "
        "WHERE object = 'orders'",
    )
    assert ledger == [(6, 3, 3, 1)]


def test_a_rate_over_its_limit_fails_the_whole_batch(tmp_path: Path, cli: Cli) -> None:
    yml = YML.replace("max_failure_rate: 40%", "max_failure_rate: 10%")
    project = write_project(
        tmp_path, yml, {"landing/customers/c.csv": CUSTOMERS, "landing/orders/o.csv": ORDERS}
    )
    penstock.run(project)
    held = reasons_by_id(cli, project, "orders", "order_id")
    assert sorted(held) == [10, 11, 12, 13, 14, 15]
    assert all(not loaded for loaded, _, _ in held.values())
    assert all(reasons[-1] == "failure_rate:pattern:email" for _, reasons, _ in held.values())
    assert [held[i][2] for i in range(10, 16)] == [1, 2, 3, 4, 5, 6]  # record numbers
    assert query(project, "SELECT count(*) FROM orders") == [(0,)]
    ledger = query(
        project,
        "SELECT rows_in, rows_loaded, rows_quarantined FROM penstock.loads WHERE object = 'orders'",
    )
    assert ledger == [(6, 0, 6)]


def test_a_warning_rule_does_not_fail_an_on_invalid_fail_object(tmp_path: Path) -> None:
    yml = YML.replace(
        "    depends_on: [customers]\n", "    depends_on: [customers]\n    on_invalid: fail\n"
    )
    clean = "order_id,customer_id,qty,note,email\n10,1,5,ok,a@b\n14,3,7,hello!,e@f\n"
    project = write_project(
        tmp_path, yml, {"landing/customers/c.csv": CUSTOMERS, "landing/orders/o.csv": clean}
    )
    assert penstock.run(project).status == "success"
    assert query(project, "SELECT order_id FROM orders ORDER BY 1") == [(10,), (14,)]
    (project / "landing" / "orders" / "p.csv").write_text(
        "order_id,customer_id,qty,note,email\n16,1,0,ok,a@b\n"
    )
    result = penstock.run(project)
    assert result.status == "failed"  # between is an error: on_invalid fail refuses the batch
    assert query(project, "SELECT count(*) FROM orders") == [(2,)]


def test_a_missing_referenced_table_refuses_the_batch_until_it_loads(tmp_path: Path) -> None:
    # orders alone: its batch is refused while customers has no table, and loads the run after
    project = write_project(tmp_path, YML, {"landing/orders/o.csv": ORDERS})
    result = penstock.run(project, select="orders")
    assert result.status == "failed"
    failure = next(o for o in result.outcomes if o.status == "failed")
    assert "references customers.id" in (failure.error or "")
    assert "load 'customers' first" in (failure.error or "")
    (project / "landing" / "customers").mkdir(parents=True)
    (project / "landing" / "customers" / "c.csv").write_text(CUSTOMERS)
    assert penstock.run(project).status == "success"
    assert query(project, "SELECT order_id FROM orders ORDER BY 1") == [(10,), (14,), (15,)]


def test_a_rebuild_gives_the_same_tables(tmp_path: Path) -> None:
    project = write_project(
        tmp_path, YML, {"landing/customers/c.csv": CUSTOMERS, "landing/orders/o.csv": ORDERS}
    )
    penstock.run(project)
    tables = ["orders", "customers", "quarantine.orders", "quarantine.customers"]
    before = {
        t: query(project, f"SELECT * EXCLUDE (_loaded_at) FROM {t} ORDER BY ALL")
        for t in tables[:2]
    }
    before_q = {t: query(project, f"SELECT * FROM {t} ORDER BY ALL") for t in tables[2:]}
    penstock.rebuild(project)
    assert before == {
        t: query(project, f"SELECT * EXCLUDE (_loaded_at) FROM {t} ORDER BY ALL")
        for t in tables[:2]
    }
    assert before_q == {t: query(project, f"SELECT * FROM {t} ORDER BY ALL") for t in tables[2:]}


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("{type: integer, length: 2}", "length applies to text columns"),
        ("{type: integer, between: [5, 1]}", "less than the low one"),
        ("{type: integer, between: [1]}", "expected two bounds"),
        ("{type: integer, references: nowhere.id}", "unknown object 'nowhere'"),
        ("{type: integer, references: customers.nope}", "has no column 'nope'"),
        ("{type: integer, references: customers.country}", "cannot be found in customers.country"),
        ("{type: integer, references: customers}", "expected object.column"),
        ("{type: text, pattern: {value: x, severity: loud}}", "severity"),
        ("{type: text, pattern: {value: x, max_failure_rate: 0.5}}", "a percentage"),
        ("{type: text, pattern: {regex: x, severity: warn}}", "write the rule's value as value:"),
    ],
)
def test_bad_rules_are_load_errors_with_a_line(tmp_path: Path, column: str, message: str) -> None:
    yml = YML.replace("{type: integer, between: [1, 100]}", column)
    project = write_project(tmp_path, yml)
    with pytest.raises(ProjectError) as raised:
        penstock.load_project(project)
    assert message in raised.value.message
    assert "penstock.yml:" in raised.value.message


def test_a_key_cannot_be_merely_warned_about(tmp_path: Path) -> None:
    yml = YML.replace(
        "order_id:    {type: integer, required: true}",
        "order_id:    {type: integer, required: {value: true, severity: warn}}",
    )
    with pytest.raises(PenstockError) as raised:
        penstock.load_project(write_project(tmp_path, yml))
    assert "cannot be severity: warn" in str(raised.value)


UNIQUE = """
name: unique
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  users:
    source: landing
    files: "users/*.csv"
    key: [id]
    columns:
      id:     {type: integer, required: true}
      email:  {type: text, unique: true}
      handle: {type: text, unique: {value: true, severity: warn}}
"""
FIRST_USERS = "id,email,handle\n1,a@x,ann\n2,b@x,bob\n3,a@x,cy\n4,,ann\n1,a@x,ann2\n"
SECOND_USERS = "id,email,handle\n2,b@x,bobby\n5,d@x,bob\n6,c@x,ann2\n7,b@x,eve\n"


def test_unique_within_the_batch_and_against_the_table(tmp_path: Path, cli: Cli) -> None:
    project = write_project(tmp_path, UNIQUE, {"landing/users/1.csv": FIRST_USERS})
    penstock.run(project)
    # a@x: ids 1 and 3 (id 1 twice is one entity); ann: ids 1 and 4 (a warning: 4 loads);
    # NULL is never a duplicate
    code, out, _ = cli("quarantine", "users", "-p", project, "--json")
    assert code == 0
    held = sorted(
        (r["_row_number"], r["id"], r["_loaded"], r["_reasons"]) for r in json.loads(out)["rows"]
    )
    assert held == [
        (1, "1", False, ["unique:email", "unique:handle"]),
        (3, "3", False, ["unique:email"]),
        (4, "4", True, ["unique:handle"]),
        (5, "1", False, ["unique:email"]),
    ]
    rows = query(project, "SELECT id, email, handle FROM users ORDER BY id")
    assert rows == [(2, "b@x", "bob"), (4, None, "ann")]
    (project / "landing" / "users" / "2.csv").write_text(SECOND_USERS)
    penstock.run(project)
    second = {
        r["id"]: r["_reasons"]
        for r in json.loads(cli("quarantine", "users", "-p", project, "--json")[1])["rows"]
        if r["_source_file"].endswith("2.csv")
    }
    # id 2 keeps its own email (same key); id 7 takes b@x from id 2 (in the table and in the
    # batch): both rows of the batch holding it fail; bob is now id 5's, but the table still
    # holds it for id 2 (a warning); ann2 was only held by a row held back: free
    assert second == {"2": ["unique:email"], "7": ["unique:email"], "5": ["unique:handle"]}
    rows = query(project, "SELECT id, email, handle FROM users ORDER BY id")
    assert rows == [(2, "b@x", "bob"), (4, None, "ann"), (5, "d@x", "bob"), (6, "c@x", "ann2")]


def test_unique_agrees_between_runs_and_a_rebuild(tmp_path: Path) -> None:
    project = write_project(tmp_path, UNIQUE, {"landing/users/1.csv": FIRST_USERS})
    penstock.run(project)
    (project / "landing" / "users" / "2.csv").write_text(SECOND_USERS)
    penstock.run(project)
    tables = ("users", "quarantine.users")
    before = {
        t: query(project, f"SELECT * EXCLUDE (_loaded_at) FROM {t} ORDER BY ALL")
        for t in tables[:1]
    }
    held = query(project, "SELECT * FROM quarantine.users ORDER BY ALL")
    penstock.rebuild(project)  # both files in one micro-batch now
    assert before == {
        t: query(project, f"SELECT * EXCLUDE (_loaded_at) FROM {t} ORDER BY ALL")
        for t in tables[:1]
    }
    assert query(project, "SELECT * FROM quarantine.users ORDER BY ALL") == held


def test_unique_without_a_key_and_on_a_hashed_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_secrets: None, cli: Cli
) -> None:
    monkeypatch.setenv("PENSTOCK_TEST_PII_KEY", "a-key-long-enough-for-hmac-use")
    yml = """
    name: unique_append
    privacy: {key: "${env:PENSTOCK_TEST_PII_KEY}"}
    sources:
      landing: {kind: files, path: ./landing, settle: 0s}
    objects:
      events:
        source: landing
        files: "events/*.csv"
        columns:
          n:     {type: integer}
          token: {type: text, unique: true, pii: hash}
    """
    project = write_project(tmp_path, yml, {"landing/events/1.csv": "n,token\n1,t1\n2,t2\n"})
    penstock.run(project)
    (project / "landing" / "events" / "2.csv").write_text("n,token\n3,t2\n4,t3\n")
    penstock.run(project)
    assert query(project, "SELECT n FROM events ORDER BY n") == [(1,), (2,), (4,)]
    held = json.loads(cli("quarantine", "events", "-p", project, "--json")[1])["rows"]
    assert [(r["_row_number"], r["_reasons"]) for r in held] == [(1, ["unique:token"])]


BATCH_CHECKS = """
name: batch_checks
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  readings:
    source: landing
    files: "readings/*.csv"
    key: [sensor]
    order_by: at
    sla: {freshness: 1d}
    columns:
      sensor: {type: integer, required: true}
      at:     {type: timestamp, required: true}
    checks:
      - {freshness: {column: at, severity: warn}}
      - {duplicate_rate: {max: 30%}}
"""


def test_freshness_and_duplicate_rate_judge_each_batch(tmp_path: Path, cli: Cli) -> None:
    from datetime import UTC, datetime

    today = datetime.now(UTC).strftime("%Y-%m-%d")
    project = write_project(
        tmp_path,
        BATCH_CHECKS,
        {
            "landing/readings/a_old.csv": "sensor,at\n1,2020-01-01 10:00\n2,2020-01-01 11:00\n",
            "landing/readings/b_new.csv": f"sensor,at\n3,{today} 00:00\n4,{today} 00:01\n",
            # 2 of 3 records repeat sensor 5: 67% > 30%
            "landing/readings/c_dups.csv": (
                f"sensor,at\n5,{today} 00:00\n5,{today} 00:01\n5,{today} 00:02\n"
            ),
            # 1 of 4 repeats: 25%, within the limit
            "landing/readings/d_few.csv": (
                f"sensor,at\n6,{today} 00:00\n6,{today} 00:01\n7,{today} 00:00\n8,{today} 00:00\n"
            ),
        },
    )
    assert penstock.run(project).status == "success"
    ledger = query(
        project,
        "SELECT source_file, rows_loaded, rows_quarantined, rows_duplicate FROM penstock.loads "
        "ORDER BY source_file",
    )
    assert ledger == [
        ("landing/readings/a_old.csv", 2, 0, 0),  # stale, but freshness only warns
        ("landing/readings/b_new.csv", 2, 0, 0),
        ("landing/readings/c_dups.csv", 0, 3, 0),
        ("landing/readings/d_few.csv", 3, 0, 1),
    ]
    held = json.loads(cli("quarantine", "readings", "-p", project, "--json")[1])["rows"]
    assert {tuple(r["_reasons"]) for r in held} == {("check:duplicate_rate",)}
    logs = cli("logs", "-p", project, "--level", "warning", "--json")[1]
    assert "a_old.csv: the batch fails check:freshness (severity warn: loaded)" in logs


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ("{freshness: {column: nope, max_age: 1h}}", "column 'nope' is not a declared column"),
        ("{freshness: {column: sensor, max_age: 1h}}", "not a date or timestamp"),
        ("{freshness: {column: at, max_age: 5}}", "expected a period"),
        ("{duplicate_rate: {max: 0.3}}", "a percentage"),
    ],
)
def test_bad_batch_checks_are_load_errors(tmp_path: Path, check: str, message: str) -> None:
    yml = BATCH_CHECKS.replace("{duplicate_rate: {max: 30%}}", check)
    with pytest.raises(ProjectError) as raised:
        penstock.load_project(write_project(tmp_path, yml))
    assert message in raised.value.message


def test_freshness_without_max_age_needs_an_sla(tmp_path: Path) -> None:
    yml = BATCH_CHECKS.replace("    sla: {freshness: 1d}\n", "")
    with pytest.raises(ProjectError) as raised:
        penstock.load_project(write_project(tmp_path, yml))
    assert "needs sla: {freshness" in raised.value.message
