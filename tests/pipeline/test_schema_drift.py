"""Schema drift: every drift case (new column, missing column, type change) under every policy
of `schema_drift:`, with the data each leaves; schema versions, their events, and rebuild."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import penstock
from penstock.catalog import load_project
from penstock.engine import Session
from penstock.lake import Lake
from penstock.observe import Event, SchemaDrift, SchemaVersionSeen

from helpers import log_messages, query, write_project

Cli = Callable[..., tuple[int, str, str]]

YML = """
name: drift
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  items:
    source: landing
    files: "items/*.csv"
    key: [id]
    schema_drift: POLICY
    columns:
      id:  {type: integer, required: true}
      qty: {type: integer}
"""

FIRST = "id,qty\n1,5\n"


def items(tmp_path: Path, policy: str, files: dict[str, str | bytes] | None = None) -> Path:
    landing = {"landing/items/1.csv": FIRST, **(files or {})}
    return write_project(tmp_path, YML.replace("POLICY", policy), landing)


def deliver(project: Path, name: str, text: str) -> None:
    (project / "landing" / "items" / name).write_text(text)


def set_policy(project: Path, old: str, new: str) -> None:
    yml = project / "penstock.yml"
    yml.write_text(yml.read_text().replace(old, new))


def table_columns(project: Path, table: str, schema: str = "main") -> list[str]:
    rows = query(
        project,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        f"'{schema}' AND table_name = '{table}' AND column_name NOT LIKE '\\_%' ESCAPE '\\' "
        "ORDER BY ordinal_position",
    )
    return [r[0] for r in rows]


def loaded_batches(project: Path) -> list[str]:
    return [r[0] for r in query(project, "SELECT source_file FROM penstock.loads ORDER BY 1")]


def run_collecting(project: Path) -> tuple[penstock.RunResult, list[Event]]:
    seen: list[Event] = []
    with Session(load_project(project)) as session:
        session.bus.subscribe(seen.append)
        result = session.runner.run()
    return result, seen


def schema_versions(project: Path) -> list[tuple[object, ...]]:
    with Session(load_project(project)) as session:
        rows = session.store.schema_versions("drift", "items")
    return [(r.version, r.source_file, r.new_columns, r.missing_columns) for r in rows]


# ---- new columns -----------------------------------------------------------------------------


def test_a_new_column_is_ignored_by_default_and_kept_in_the_stage(tmp_path: Path) -> None:
    project = items(tmp_path, "{}")
    assert penstock.run(project).status == "success"
    deliver(project, "2.csv", "id,qty,promo\n2,6,X\n")
    result = penstock.run(project)
    assert result.status == "success"
    assert table_columns(project, "items") == ["id", "qty"]
    assert query(project, "SELECT id, qty FROM items ORDER BY id") == [(1, 5), (2, 6)]
    (staged,) = [
        b for b in Lake(project / "lake").batches("items") if "2.csv" in b.manifest.source_file
    ]
    assert staged.manifest.columns == ("id", "qty", "promo")  # the stage keeps it
    assert any(
        "promo not in the contract; kept in the stage zone" in m
        for m in log_messages(project, result.run_id)
    )


def test_evolve_adds_a_new_column_as_text_and_rebuild_gives_the_same_table(
    tmp_path: Path,
) -> None:
    project = items(tmp_path, "{new_columns: evolve}")
    assert penstock.run(project).status == "success"
    deliver(project, "2.csv", "id,qty,promo\n2,6,X\n3,7,007\n")
    result = penstock.run(project)
    assert result.status == "success"
    assert table_columns(project, "items") == ["id", "qty", "promo"]
    (kind,) = query(
        project,
        "SELECT data_type FROM information_schema.columns WHERE table_schema = 'main' "
        "AND table_name = 'items' AND column_name = 'promo'",
    )
    assert kind == ("VARCHAR",)  # text: "007" keeps its zeros
    assert any(
        "promo not in the contract; loaded into items as text" in m
        for m in log_messages(project, result.run_id)
    )
    # a later file without it: merge replaces row 2, whose promo is now missing (NULL)
    deliver(project, "3.csv", "id,qty\n2,9\n")
    assert penstock.run(project).status == "success"
    table = "SELECT id, qty, promo FROM items ORDER BY id"
    expected = [(1, 5, None), (2, 9, None), (3, 7, "007")]
    assert query(project, table) == expected
    assert table_columns(project, "items", "quarantine") == ["id", "qty", "promo"]
    # a rebuild replays the three batches in one chunk: the same table
    assert penstock.rebuild(project).status == "success"
    assert query(project, table) == expected
    (project / "warehouse.duckdb").unlink()  # and from an empty warehouse
    assert penstock.rebuild(project).status == "success"
    assert query(project, table) == expected


def test_evolve_refuses_a_name_that_cannot_be_a_column(tmp_path: Path) -> None:
    project = items(
        tmp_path, "{new_columns: evolve}", {"landing/items/2.csv": "id,qty,Promo Code\n2,6,X\n"}
    )
    result = penstock.run(project)
    assert result.status == "failed"
    (error,) = [o.error for o in result.outcomes if o.status == "failed"]
    assert error is not None and "landing/items/2.csv" in error and "'Promo Code'" in error
    assert loaded_batches(project) == ["landing/items/1.csv"]


def test_a_new_column_fails_the_batch_under_fail(tmp_path: Path, cli: Cli) -> None:
    project = items(tmp_path, "{new_columns: fail}")
    assert penstock.run(project).status == "success"
    deliver(project, "2.csv", "id,qty,promo\n2,6,X\n")
    deliver(project, "3.csv", "id,qty\n3,7\n")  # later: waits behind the failed batch
    code, _, err = cli("run", "-p", project)
    assert code == 1 and "failed items load landing/items/2.csv" in err
    result = penstock.run(project)  # the batch fails again, until the contract or policy changes
    (error,) = [o.error for o in result.outcomes if o.status == "failed"]
    assert error is not None and "landing/items/2.csv" in error
    assert "new column 'promo' is not in the contract" in error
    assert query(project, "SELECT id FROM items") == [(1,)]
    assert loaded_batches(project) == ["landing/items/1.csv"]
    assert len(Lake(project / "lake").batches("items")) == 3  # staged all the same
    set_policy(project, "{new_columns: fail}", "{new_columns: ignore}")
    assert penstock.run(project).status == "success"
    assert query(project, "SELECT id, qty FROM items ORDER BY id") == [(1, 5), (2, 6), (3, 7)]


# ---- missing columns ---------------------------------------------------------------------------


def test_a_missing_column_reads_as_empty_by_default(tmp_path: Path) -> None:
    project = items(tmp_path, "{}", {"landing/items/2.csv": "id\n2\n"})
    result = penstock.run(project)
    assert result.status == "success"
    assert query(project, "SELECT id, qty FROM items ORDER BY id") == [(1, 5), (2, None)]
    assert any(
        "qty missing from the file; read as empty" in m
        for m in log_messages(project, result.run_id)
    )


def test_a_missing_column_quarantines_the_rows_under_quarantine(tmp_path: Path) -> None:
    project = items(
        tmp_path, "{missing_columns: quarantine}", {"landing/items/2.csv": "id\n2\n3\n"}
    )
    result = penstock.run(project)
    assert result.status == "success"
    assert query(project, "SELECT id, qty FROM items ORDER BY id") == [(1, 5)]
    assert query(project, "SELECT id, qty, _reasons, _row_number FROM quarantine.items") == [
        ("2", None, ["schema:missing:qty"], 1),
        ("3", None, ["schema:missing:qty"], 2),
    ]
    (row,) = query(
        project,
        "SELECT rows_in, rows_loaded, rows_quarantined, rows_duplicate FROM penstock.loads "
        "WHERE source_file LIKE '%2.csv'",
    )
    assert row == (2, 0, 2, 0)
    assert any(
        "its rows are quarantined as schema:missing:qty" in m
        for m in log_messages(project, result.run_id)
    )
    # a rebuild decides alike
    before = query(project, "SELECT id, _reasons FROM quarantine.items ORDER BY id")
    assert penstock.rebuild(project).status == "success"
    assert query(project, "SELECT id, _reasons FROM quarantine.items ORDER BY id") == before
    assert query(project, "SELECT id FROM items") == [(1,)]


def test_a_missing_column_fails_the_batch_under_fail(tmp_path: Path) -> None:
    project = items(tmp_path, "{missing_columns: fail}", {"landing/items/2.csv": "id\n2\n"})
    result = penstock.run(project)
    assert result.status == "failed"
    (error,) = [o.error for o in result.outcomes if o.status == "failed"]
    assert error is not None
    assert "landing/items/2.csv" in error and "contract column 'qty' is missing" in error
    assert "missing_columns: warn | quarantine" in error  # the fix
    assert query(project, "SELECT id FROM items") == [(1,)]


def test_an_empty_file_is_never_missing_columns(tmp_path: Path) -> None:
    project = items(tmp_path, "{missing_columns: fail}", {"landing/items/2.csv": ""})
    assert penstock.run(project).status == "success"
    assert query(project, "SELECT id FROM items") == [(1,)]


# ---- type changes (typed sources: Parquet) ------------------------------------------------------

TYPED = """
name: drift
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  prices:
    source: landing
    files: "prices/*.parquet"
    schema_drift: POLICY
    columns:
      id:     {type: integer, required: true}
      amount: {type: "decimal(10,2)"}
"""


def prices(tmp_path: Path, policy: str) -> Path:
    project = write_project(tmp_path, TYPED.replace("POLICY", policy))
    folder = project / "landing" / "prices"
    folder.mkdir(parents=True)
    first = pa.table(
        {
            "id": pa.array([1], pa.int32()),
            "amount": pa.array([Decimal("1.25")], pa.decimal128(8, 2)),
        }
    )
    pq.write_table(first, folder / "1.parquet")
    # the producer now writes amount as a float
    second = pa.table(
        {"id": pa.array([2, 3], pa.int32()), "amount": pa.array([1.5, 2.125], pa.float64())}
    )
    pq.write_table(second, folder / "2.parquet")
    return project


def test_a_type_change_is_coerced_per_row_by_default(tmp_path: Path) -> None:
    project = prices(tmp_path, "{}")
    result, events = run_collecting(project)
    assert result.status == "success"
    # 1.5 converts exactly, 2.125 does not fit decimal(10,2): quarantined
    assert query(project, "SELECT id, amount FROM prices ORDER BY id") == [
        (1, Decimal("1.25")),
        (2, Decimal("1.50")),
    ]
    assert query(project, "SELECT id, amount, _reasons FROM quarantine.prices") == [
        ("3", "2.125", ["type:amount"])
    ]
    (drift,) = [e for e in events if isinstance(e, SchemaDrift)]
    assert drift.type_changes == {"amount": ("decimal(10,2)", "DOUBLE")}
    assert drift.retyped == {"amount": ("DECIMAL(8,2)", "DOUBLE")}


def test_a_type_change_fails_the_batch_under_fail(tmp_path: Path) -> None:
    project = prices(tmp_path, "{type_changes: fail}")
    result = penstock.run(project)
    assert result.status == "failed"
    (error,) = [o.error for o in result.outcomes if o.status == "failed"]
    assert error is not None and "landing/prices/2.parquet" in error
    assert "column 'amount' is DOUBLE in the file but decimal(10,2) in the contract" in error
    # the first file's INT32 id and DECIMAL(8,2) amount convert losslessly: not a change
    assert query(project, "SELECT id, amount FROM prices") == [(1, Decimal("1.25"))]


# ---- schema versions ---------------------------------------------------------------------------


def test_each_schema_version_is_recorded_once_with_its_first_batch(
    tmp_path: Path, cli: Cli
) -> None:
    project = items(tmp_path, "{new_columns: evolve}")
    _, events = run_collecting(project)
    assert [type(e) for e in events if isinstance(e, SchemaVersionSeen | SchemaDrift)] == [
        SchemaVersionSeen  # the first version, as the contract has it: no drift
    ]
    deliver(project, "2.csv", "id,qty,promo\n2,6,X\n")
    deliver(project, "3.csv", "qty,id\n7,3\n")  # the first schema again, in another order
    _, events = run_collecting(project)
    drift_events = [e for e in events if isinstance(e, SchemaVersionSeen | SchemaDrift)]
    assert [(e.kind, e.source_file) for e in drift_events] == [
        ("schema_version", "landing/items/2.csv"),
        ("schema_drift", "landing/items/2.csv"),
    ]
    drift = drift_events[1]
    assert isinstance(drift, SchemaDrift)
    assert (drift.version, drift.added, drift.extra, drift.policy["new_columns"]) == (
        2,
        ("promo",),
        ("promo",),
        "evolve",
    )
    versions = [
        (1, "landing/items/1.csv", [], []),
        (2, "landing/items/2.csv", ["promo"], []),
    ]
    assert schema_versions(project) == versions
    code, out, _ = cli(
        "sql",
        "-p",
        project,
        "SELECT object, version, source_file FROM schema_versions ORDER BY version",
        "--json",
    )
    assert code == 0
    assert [(r["object"], r["version"]) for r in json.loads(out)["rows"]] == [
        ("items", 1),
        ("items", 2),
    ]
    code, out, _ = cli("schema", "items", "-p", project, "--json")
    assert code == 0
    listed = json.loads(out)
    assert listed["schema_drift"]["new_columns"] == "evolve"
    assert [
        (v["version"], v["first_source_file"], v["new_columns"]) for v in listed["versions"]
    ] == [
        (1, "landing/items/1.csv", []),
        (2, "landing/items/2.csv", ["promo"]),
    ]
    assert listed["versions"][1]["columns"] == [
        {"name": "id", "type": "VARCHAR"},
        {"name": "qty", "type": "VARCHAR"},
        {"name": "promo", "type": "VARCHAR"},
    ]
    code, out, _ = cli("schema", "items", "-p", project)
    assert code == 0 and "promo" in out and "new: promo" in out
    # a rebuild sends the versions again: the store keeps the first it saw, unchanged
    assert penstock.rebuild(project).status == "success"
    assert schema_versions(project) == versions


def test_the_first_version_drifting_from_the_contract_is_a_drift_event(tmp_path: Path) -> None:
    project = write_project(
        tmp_path,
        YML.replace("POLICY", "{missing_columns: quarantine}"),
        {"landing/items/1.csv": "id\n1\n"},
    )
    _, events = run_collecting(project)
    (drift,) = [e for e in events if isinstance(e, SchemaDrift)]
    assert (drift.previous_batch_id, drift.missing, drift.version) == (None, ("qty",), 1)
    assert query(project, "SELECT count(*) FROM quarantine.items") == [(1,)]


def test_a_schema_drift_policy_names_its_yaml_line(tmp_path: Path, cli: Cli) -> None:
    project = items(tmp_path, "{new_columns: evolved}")
    code, _, err = cli("run", "-p", project)
    assert code == 2
    assert "penstock.yml:10" in err and "schema_drift.new_columns" in err
    assert "evolve" in err


@pytest.mark.parametrize(
    ("observed", "declared", "converts"),
    [
        ("VARCHAR", "integer", True),
        ("INTEGER", "bigint", True),
        ("BIGINT", "integer", False),
        ("DECIMAL(8,2)", "decimal(10,2)", True),
        ("DECIMAL(12,2)", "decimal(10,2)", False),
        ("DECIMAL(10,3)", "decimal(10,2)", False),
        ("INTEGER", "decimal(12,2)", True),
        ("DOUBLE", "decimal(12,2)", False),
        ("BIGINT", "double", True),
        ("DATE", "timestamp", True),
        ("TIMESTAMP WITH TIME ZONE", "timestamp", False),
        ("TIMESTAMP", "timestamptz", True),
        ("TIMESTAMP_NS", "date", False),
        ("STRUCT(a INTEGER)", "text", True),
        ("BIGINT", "text", False),
        ("BOOLEAN", "boolean", True),
    ],
)
def test_which_observed_types_are_type_changes(
    observed: str, declared: str, converts: bool
) -> None:
    from penstock.catalog import parse_type
    from penstock.quality.drift import converts as converts_into

    assert converts_into(observed, parse_type(declared)) is converts


def test_the_drift_alert_says_what_the_policy_does() -> None:
    from penstock.observe.alert_messages import schema_drift

    first = SchemaDrift(
        run_id="r",
        object="items",
        batch_id="b1",
        source_file="landing/items/1.csv",
        missing=("qty",),
        extra=("promo",),
        type_changes={"amount": ("decimal(10,2)", "DOUBLE")},
        version=1,
        policy={"new_columns": "evolve", "missing_columns": "quarantine", "type_changes": "fail"},
    )
    alert = schema_drift(first)
    assert alert.title == "the columns of landing/items/1.csv differ from the contract"
    assert alert.lines == (
        "landing/items/1.csv (batch b1): the object's first schema",
        "contract columns missing (rows quarantined): qty",
        "columns the contract does not declare (added to the table as text): promo",
        "column amount is DOUBLE, declared decimal(10,2) (batch failed)",
        "schema version 1: penstock schema items",
    )
    later = SchemaDrift(
        run_id="r",
        object="items",
        batch_id="b2",
        source_file="landing/items/2.csv",
        previous_batch_id="b1",
        added=("promo",),
        extra=("promo",),
        version=2,
        policy={"new_columns": "ignore"},
    )
    alert = schema_drift(later)
    assert alert.title == "the columns of landing/items/2.csv changed (added promo)"
    assert "columns the contract does not declare (staged only): promo" in alert.lines


def test_json_lines_drift_like_csv(tmp_path: Path) -> None:
    yml = """
    name: drift
    sources:
      landing: {kind: files, path: ./landing, settle: 0s}
    objects:
      events:
        source: landing
        files: "events/*.jsonl"
        schema_drift: {new_columns: evolve, missing_columns: quarantine}
        columns:
          id:   {type: integer, required: true}
          kind: {type: text}
    """
    project = write_project(
        tmp_path,
        yml,
        {
            "landing/events/1.jsonl": '{"id": 1, "kind": "a"}\n',
            "landing/events/2.jsonl": '{"id": 2, "kind": "b", "source": "web"}\n',
            "landing/events/3.jsonl": '{"id": 3}\n',
        },
    )
    assert penstock.run(project).status == "success"
    assert query(project, "SELECT id, kind, source FROM events ORDER BY id") == [
        (1, "a", None),
        (2, "b", "web"),
    ]
    assert query(project, "SELECT id, _reasons FROM quarantine.events") == [
        ("3", ["schema:missing:kind"])
    ]


ALL = """
name: drift
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  added:
    source: landing
    files: "added/*.csv"
    key: [id]
    schema_drift: {new_columns: NEW}
    columns: {id: {type: integer, required: true}, qty: {type: integer}}
  lost:
    source: landing
    files: "lost/*.csv"
    schema_drift: {missing_columns: MISSING}
    columns: {id: {type: integer, required: true}, qty: {type: integer}}
  prices:
    source: landing
    files: "prices/*.parquet"
    schema_drift: {type_changes: TYPES}
    columns: {id: {type: integer, required: true}, amount: {type: "decimal(10,2)"}}
"""


@pytest.mark.parametrize(
    ("new", "missing", "types"),
    [("evolve", "quarantine", "coerce"), ("ignore", "warn", "fail"), ("fail", "fail", "coerce")],
)
def test_a_rebuild_from_an_empty_warehouse_gives_what_the_runs_gave(
    tmp_path: Path, new: str, missing: str, types: str
) -> None:
    yml = ALL.replace("NEW", new).replace("MISSING", missing).replace("TYPES", types)
    project = write_project(
        tmp_path,
        yml,
        {
            "landing/added/1.csv": "id,qty\n1,5\n2,6\n",
            "landing/lost/1.csv": "id,qty\n1,5\n",
        },
    )
    prices_dir = project / "landing" / "prices"
    prices_dir.mkdir(parents=True)
    ids = pa.int32()  # INT64 into an `integer` would be a (narrowing) type change itself
    first = {"id": pa.array([1], ids), "amount": [Decimal("1.25")]}
    pq.write_table(pa.table(first), prices_dir / "1.parquet")
    penstock.run(project)
    deliver_to = project / "landing"
    (deliver_to / "added" / "2.csv").write_text("id,qty,promo\n2,7,X\n3,8,Y\n")
    (deliver_to / "lost" / "2.csv").write_text("id\n2\n")
    second = {"id": pa.array([2, 3], ids), "amount": [1.5, 2.125]}
    pq.write_table(pa.table(second), prices_dir / "2.parquet")
    penstock.run(project)
    tables = ["added", "lost", "prices"]
    sql = {t: f"SELECT * EXCLUDE (_batch_id, _loaded_at) FROM {t} ORDER BY id" for t in tables} | {
        f"quarantine.{t}": f"SELECT * EXCLUDE (_batch_id) FROM quarantine.{t} ORDER BY _row_number"
        for t in tables
    }
    ran = {name: query(project, q) for name, q in sql.items()}
    ledger = loaded_batches(project)
    (project / "warehouse.duckdb").unlink()
    penstock.rebuild(project)
    assert {name: query(project, q) for name, q in sql.items()} == ran
    assert loaded_batches(project) == ledger
    # and what each policy left, in brief
    if new == "evolve":
        assert ran["added"] == [(1, 5, None), (2, 7, "X"), (3, 8, "Y")]
    elif new == "ignore":
        assert ran["added"] == [(1, 5), (2, 7), (3, 8)]
    else:
        assert ran["added"] == [(1, 5), (2, 6)]
    expected_lost = {"quarantine": [(1, 5)], "warn": [(1, 5), (2, None)], "fail": [(1, 5)]}
    assert ran["lost"] == expected_lost[missing]
    expected_prices = [(1, Decimal("1.25")), (2, Decimal("1.50"))]
    assert ran["prices"] == (expected_prices if types == "coerce" else expected_prices[:1])
