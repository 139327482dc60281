"""The closing checkpoint's vacuum is deferred while the written tables stay compact, and
happens once a table holds too many dead rows or extra row groups; no query sees a difference."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from penstock.warehouse.duckdb_known import Known
from penstock.warehouse.duckdb_vacuum import (
    ROW_GROUP_ROWS,
    SMALL_TABLE_EXTRA_ROW_GROUPS,
    _metric,
    defer_vacuum,
    row_groups,
    table_is_compact,
)

ROWS = 3 * ROW_GROUP_ROWS  # three full row groups


def _row_groups(conn: duckdb.DuckDBPyConnection, table: str = "main.t") -> int:
    return int(
        conn.execute(
            "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info(?) WHERE column_id = 0",
            [table],
        ).fetchone()[0]  # type: ignore[index]
    )


def _stored(conn: duckdb.DuckDBPyConnection) -> int:
    return int(
        conn.execute(
            "SELECT estimated_size FROM duckdb_tables() WHERE table_name = 't'"
        ).fetchone()[0]  # type: ignore[index]
    )


def _table(path: Path) -> None:
    conn = duckdb.connect(str(path))
    conn.execute(f"CREATE TABLE t AS SELECT range AS k, range::VARCHAR AS v FROM range({ROWS})")
    conn.close()


def _replace_some(path: Path, keys: range) -> bool:
    """Delete and re-insert `keys` (a merge's update), close; whether the vacuum was deferred."""
    conn = duckdb.connect(str(path))
    conn.execute(f"DELETE FROM t WHERE k IN (SELECT range FROM range({keys.start}, {keys.stop}))")
    conn.execute(
        f"INSERT INTO t SELECT range, range::VARCHAR FROM range({keys.start}, {keys.stop})"
    )
    deferred = defer_vacuum(conn, [("main", "t")])
    conn.close()
    return deferred


def test_a_compact_table_defers_the_vacuum_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    _table(path)
    assert _replace_some(path, range(0, 1000)) is True
    conn = duckdb.connect(str(path))
    # deferred: the deleted rows are still stored, the re-inserted ones in a fourth row group
    assert _stored(conn) == ROWS + 1000
    assert _row_groups(conn) == 4
    assert conn.execute("SELECT count(*), count(DISTINCT k), sum(k) FROM t").fetchone() == (
        ROWS,
        ROWS,
        ROWS * (ROWS - 1) // 2,
    )
    conn.close()


def test_extra_row_groups_past_the_limit_bring_the_vacuum_back(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    _table(path)
    deferred = [_replace_some(path, range(i * 100, i * 100 + 100)) for i in range(4)]
    # three full row groups allow two extra: the third small append crosses the line
    assert deferred == [True, True, False, True]
    conn = duckdb.connect(str(path))
    assert table_is_compact(conn, "main", "t")
    assert _row_groups(conn) <= 3 + 2
    assert conn.execute("SELECT count(*), count(DISTINCT k) FROM t").fetchone() == (ROWS, ROWS)
    conn.close()


def test_dead_rows_past_the_limit_bring_the_vacuum_back(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    _table(path)
    conn = duckdb.connect(str(path))
    conn.execute("SET max_vacuum_tasks = 0")  # a deferred history: 12% of the rows deleted
    conn.execute("DELETE FROM t WHERE k % 8 = 0")
    conn.close()
    conn = duckdb.connect(str(path))
    assert not table_is_compact(conn, "main", "t")
    assert defer_vacuum(conn, [("main", "t"), ("main", "missing")]) is False
    conn.close()
    assert defer_vacuum(duckdb.connect(), []) is False  # nothing written: nothing to decide


def test_row_groups_are_counted_as_the_storage_lists_them(tmp_path: Path) -> None:
    """The count read from a scan's profile (~1 ms) equals pragma_storage_info's (which lists
    every segment: 13-25 ms on a 2M-row table) through appends, deletes and a vacuum."""
    path = tmp_path / "w.duckdb"
    _table(path)
    conn = duckdb.connect(str(path))
    conn.execute('CREATE SCHEMA "Odd schema"')
    conn.execute('CREATE TABLE "Odd schema"."a ""b""" (k BIGINT)')
    conn.execute("CREATE TABLE empty (k BIGINT)")
    conn.execute("CREATE TABLE one AS SELECT 1 AS k")

    def same() -> None:
        for schema, table in [("main", "t"), ("Odd schema", 'a "b"'), ("main", "empty")]:
            quoted = '"' + schema + '"."' + table.replace('"', '""') + '"'
            assert row_groups(conn, schema, table) == _row_groups(conn, quoted)
        assert row_groups(conn, "main", "one") == 1

    same()
    profile = conn.execute(
        "EXPLAIN (ANALYZE, FORMAT json) SELECT 1 FROM main.t WHERE rowid < 0"
    ).fetchone()
    assert profile is not None
    assert _metric(json.loads(profile[1]), "total_row_groups_to_scan") == 3  # the fast path
    conn.execute('INSERT INTO "Odd schema"."a ""b""" SELECT range FROM range(300000)')
    for start in range(0, 500, 100):  # small appends, each a row group of its own
        conn.execute(f"INSERT INTO t SELECT range, 'x' FROM range({start}, {start + 100})")
        same()
    conn.execute("SET max_vacuum_tasks = 0")
    conn.execute("DELETE FROM t WHERE k % 3 = 0")
    conn.close()
    conn = duckdb.connect(str(path))
    same()
    assert row_groups(conn, "main", "t") > 3  # the appends added one
    conn.execute("CHECKPOINT")  # vacuums: fewer row groups
    same()
    conn.close()


def test_a_count_the_session_took_is_not_asked_again(tmp_path: Path) -> None:
    """The run counts each object it loaded; the close's decision reads that count (a
    second count(*) cost 7-13 ms on the 2M-row table after a merge) and decides alike. A
    count taken before a load began or ended is not kept."""
    path = tmp_path / "w.duckdb"
    _table(path)
    conn = duckdb.connect(str(path))
    conn.execute("SET max_vacuum_tasks = 0")
    conn.execute("DELETE FROM t WHERE k % 20 = 0")  # 5% dead: compact
    live = ROWS - ROWS // 20
    assert defer_vacuum(conn, [("main", "t")], {("main", "t"): live}) is True
    conn.execute("RESET max_vacuum_tasks")
    assert defer_vacuum(conn, [("main", "t")]) is True
    conn.execute("RESET max_vacuum_tasks")
    # the count given is the one used: one saying most rows are dead brings the vacuum back
    assert defer_vacuum(conn, [("main", "t")], {("main", "t"): ROWS // 2}) is False
    conn.close()

    known = Known()
    before = known.generation
    known.keep_rows(before, ("main", "t"), 5)
    assert known.rows == {("main", "t"): 5}
    known.forget()  # a load began
    assert known.rows == {}
    known.keep_rows(before, ("main", "t"), 5)  # counted while it ran: stale
    assert known.rows == {}


def test_a_small_table_s_appends_do_not_bring_the_vacuum_back_every_third_run(
    tmp_path: Path,
) -> None:
    """Every load appends a one-row row group to the ledger; the vacuum is the checkpoint's,
    for every table, so with 2 extra groups allowed the ledger alone made the 2M table's
    vacuum come back every third run. A table under one row group's rows may have
    SMALL_TABLE_EXTRA_ROW_GROUPS extra groups; past that it is vacuumed as before."""
    path = tmp_path / "w.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE ledger AS SELECT 0 AS k")
    conn.close()
    deferred = []
    for k in range(1, SMALL_TABLE_EXTRA_ROW_GROUPS + 3):
        conn = duckdb.connect(str(path))
        conn.execute(f"INSERT INTO ledger VALUES ({k})")
        deferred.append(defer_vacuum(conn, [("main", "ledger")]))
        conn.close()
    extra = SMALL_TABLE_EXTRA_ROW_GROUPS
    assert deferred == [True] * extra + [False, True]  # the ninth extra group: vacuumed
    conn = duckdb.connect(str(path))
    assert _row_groups(conn, "main.ledger") <= 2
    assert conn.execute("SELECT count(*), sum(k) FROM ledger").fetchone() == (
        extra + 3,
        sum(range(extra + 3)),
    )
    conn.close()
