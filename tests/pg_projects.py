"""A compact project with one object per load mode, run on DuckDB and on PostgreSQL, and
readers that put both warehouses' contents side by side (tests/warehouse/test_postgres_*.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import psycopg

from helpers import write_project


@dataclass(frozen=True)
class PgWarehouse:
    """A PostgreSQL warehouse of a test's own: its URL and the schemas it writes."""

    url: str  # postgresql://…/test?schema=<schema>
    conninfo: str  # the database, for reading it back
    schema: str  # object tables
    ledger: str  # <schema>_penstock: loads, replayed_loads, objects
    quarantine: str  # <schema>_quarantine


PROJECT = """
name: parity
warehouse: {warehouse}
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  events:
    source: landing
    files: "events/*.csv"
    load: append
    columns: &columns
      id:      {{type: bigint, required: true}}
      name:    {{type: text}}
      flag:    {{type: boolean}}
      qty:     {{type: integer, min: 0}}
      ratio:   {{type: double}}
      amount:  {{type: "decimal(12,2)"}}
      day:     {{type: date}}
      ts:      {{type: timestamp, required: true}}
      at:      {{type: timestamptz}}
      doc:     {{type: json}}
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    order_by: ts
    load: merge
    columns: *columns
  customers:
    source: landing
    files: "customers/*.csv"
    key: [id]
    order_by: ts
    load: scd2
    columns: *columns
  prices:
    source: landing
    files: "prices/*.csv"
    key: [id]
    load: replace
    columns: *columns
"""
HEADER = "id,name,flag,qty,ratio,amount,day,ts,at,doc\n"
OBJECTS = ("events", "orders", "customers", "prices")

# three deliveries (one run each); several files in one run load as one micro-batch chunk
ROUND_1 = {
    "a.csv": (
        "1,Ann,true,1,0.1,10.50,2024-01-01,2024-01-01 10:00:00,2024-01-01T10:00:00+02:00,"
        '"{""a"": 1}"\n'
        '2,"",f,2,1e300,0.00,2024-01-02,2024-01-01 10:00:00,,"[1, 2]"\n'
        "3,Cy,yes,-5,2.5,1.00,2024-01-03,2024-01-01 10:00:00,2024-01-01 00:00:00Z,\n"
        # a duplicate key in the batch: the greatest ts wins, the other is a duplicate
        "2,Bo,false,3,-0.0,7.25,2024-01-02,2024-01-02 09:00:00.123456,,null\n"
        '4,"Dee ""quoted"", comma",true,4,,,2024-01-04,2024-01-01 10:00:00,,\n'
    ),
}
ROUND_2 = {
    # two files in one run: key 1 changes in both (the later file wins), key 4 arrives late
    "b.csv": (
        "1,Ann B,true,1,0.1,10.50,2024-01-01,2024-02-01 10:00:00,2024-01-01T10:00:00+02:00,"
        '"{""a"": 1}"\n'
        "4,Dee late,true,4,,,2024-01-04,2023-12-01 00:00:00,,\n"
        "5,Eve,,5,3.25,5.55,2024-01-05,2024-01-05 00:00:00,,\n"
        "6,bad,maybe,6,,,2024-01-06,2024-01-06 00:00:00,,\n"
    ),
    "c.csv": (
        "1,Ann C,true,1,0.1,10.50,2024-01-01,2024-03-01 10:00:00,2024-01-01T10:00:00+02:00,"
        '"{""a"": 1}"\n'
        # unchanged: the same row again (keeps its batch in merge, adds nothing in scd2)
        "2,Bo,false,3,-0.0,7.25,2024-01-02,2024-01-02 09:00:00.123456,,null\n"
        # two versions of one key in one batch (scd2: both enter the history)
        "7,Gus 1,false,7,,,2024-01-07,2024-01-07 00:00:00,,\n"
        "7,Gus 2,false,7,,,2024-01-07,2024-01-08 00:00:00,,\n"
    ),
}
ROUND_3 = {
    # a late version between two stored ones, a tie that corrects the version at its start,
    # and a snapshot whose rows all fail (replace keeps the previous one)
    "d.csv": (
        "1,Ann late,true,1,0.1,10.50,2024-01-01,2024-01-15 10:00:00,,\n"
        "7,Gus 2 fixed,false,7,,,2024-01-07,2024-01-08 00:00:00,,\n"
    ),
}
ROUND_3_PRICES = {"d.csv": "8,all bad,maybe,-1,,,2024-01-08,2024-01-08 00:00:00,,\n"}


def make_project(root: Path, warehouse: str) -> Path:
    return write_project(root, PROJECT.format(warehouse=warehouse))


def deliver(project: Path, files: dict[str, str], objects: tuple[str, ...] = OBJECTS) -> None:
    for obj in objects:
        for name, body in files.items():
            path = project / "landing" / obj / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(HEADER + body)


# what both warehouses must hold alike: every column but the load time (each run's own)
SYSTEM = {
    "append": ["_batch_id"],
    "merge": ["_batch_id"],
    "scd2": ["_batch_id", "_valid_from", "_valid_to", "_is_current", "_row_hash"],
    "replace": ["_batch_id"],
}
COLUMNS = ["id", "name", "flag", "qty", "ratio", "amount", "day", "ts", "at", "doc"]
LEDGER = (
    "batch_id, load_mode, source_file, rows_in, rows_loaded, rows_quarantined, rows_duplicate, "
    "rows_inserted, rows_updated, rows_unchanged, rows_stale, rows_warned"
)
QUARANTINE = "id, name, qty, ts, _reasons, _loaded, _batch_id, _row_number, _raw_line, _error"


def _quoted(columns: list[str], json_as_text: bool) -> str:
    return ", ".join(f'"{c}"::text' if json_as_text and c == "doc" else f'"{c}"' for c in columns)


def contents_sql(mode: str, table: str, *, postgres: bool) -> str:
    columns = _quoted(COLUMNS + SYSTEM[mode], postgres)
    return f"SELECT {columns} FROM {table}"


def duckdb_contents(project: Path) -> dict[str, list[tuple[Any, ...]]]:
    conn = duckdb.connect(str(project / "warehouse.duckdb"), read_only=True)
    try:
        return _contents(
            lambda sql: conn.execute(sql).fetchall(), postgres=False, schemas=SCHEMAS_DUCKDB
        )
    finally:
        conn.close()


SCHEMAS_DUCKDB = ("main", "penstock", "quarantine")


def postgres_contents(pg: PgWarehouse) -> dict[str, list[tuple[Any, ...]]]:
    """The contents of the `pg_warehouse` fixture's warehouse."""
    with psycopg.connect(pg.conninfo) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return _contents(
            lambda sql: conn.execute(sql).fetchall(),
            postgres=True,
            schemas=(pg.schema, pg.ledger, pg.quarantine),
        )


def _contents(
    fetch: Any, *, postgres: bool, schemas: tuple[str, str, str]
) -> dict[str, list[tuple[Any, ...]]]:
    """Each table's rows, sorted; a batch id shown as its source file (a replace snapshot's id
    carries its delivery, so the two projects' ids differ there)."""
    schema, ledger, quarantine = schemas
    loads = f'"{ledger}".loads'
    files = {b: f"batch of {f}" for b, f in fetch(f"SELECT batch_id, source_file FROM {loads}")}

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return sorted(
            (
                tuple(
                    list(v) if isinstance(v, list) else files.get(v, v) if isinstance(v, str) else v
                    for v in row
                )
                for row in fetch(sql)
            ),
            key=repr,
        )

    out: dict[str, list[tuple[Any, ...]]] = {}
    modes = dict(zip(OBJECTS, ("append", "merge", "scd2", "replace"), strict=True))
    for obj, mode in modes.items():
        out[obj] = rows(contents_sql(mode, f'"{schema}"."{obj}"', postgres=postgres))
        out[f"quarantine.{obj}"] = rows(f'SELECT {QUARANTINE} FROM "{quarantine}".{obj}')
    out["ledger"] = rows(f"SELECT {LEDGER} FROM {loads}")
    return out
