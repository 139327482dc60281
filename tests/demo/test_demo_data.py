"""The demo's landing files, checked independently of penstock's pipeline.

The contract is read from the generated project files and turned into plain DuckDB SQL here;
the (record number, reason) pairs it finds must be exactly the generator's expectations.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from penstock.demo import DemoExpectations, FileExpectation, write_orders_csv

ORDER_KINDS = {
    *(f"required:{c}" for c in ("order_id", "customer_id", "order_ts", "updated_at")),
    *(f"type:{c}" for c in ("order_id", "customer_id", "order_ts", "amount", "quantity")),
    "type:updated_at",
    "min:amount",
    "min:quantity",
    "max:order_ts",
    "max:quantity",
    "in:status",
    "pattern:country",
    "pattern:email",
    "check:updated_after_order",
    "malformed",
}
CUSTOMER_KINDS = {
    "required:customer_id",
    "required:name",
    "required:updated_at",
    "type:customer_id",
    "type:signup_date",
    "type:updated_at",
    "max:signup_date",
    "in:segment",
    "pattern:email",
    "pattern:country",
    "malformed",
}
SQL_TYPES = {
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
    "decimal(12,2)": "DECIMAL(12,2)",
}
ObjectSpec = dict[str, Any]


# ---------------------------------------------------------------- independent contract check


def lit(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def contracts(directory: Path) -> dict[str, ObjectSpec]:
    project = yaml.safe_load((directory / "penstock.yml").read_text(encoding="utf-8"))
    objects: dict[str, ObjectSpec] = dict(project["objects"])
    for pattern in project["include"]:
        for path in sorted(directory.glob(pattern)):
            objects |= yaml.safe_load(path.read_text(encoding="utf-8"))["objects"]
    return objects


def rule_sql(spec: ObjectSpec) -> str:
    """(recno, reason) of every contract failure of the rows in the view `raw_rows`
    (recno + every column as text), following the documented validator semantics."""
    cols: dict[str, dict[str, Any]] = spec["columns"]
    typed = ", ".join(
        f"TRY_CAST({c} AS {SQL_TYPES[d['type']]}) AS {c}" if d["type"] != "text" else c
        for c, d in cols.items()
    )
    selects: list[str] = []

    def fails(reason: str, condition: str) -> None:
        selects.append(
            f"SELECT recno, {lit(reason)} FROM raw_rows r JOIN typed t USING (recno) "
            f"WHERE {condition}"
        )

    for c, d in cols.items():
        if d.get("required") or c in spec["key"]:
            fails(f"required:{c}", f"r.{c} IS NULL")
        if d["type"] != "text":
            fails(f"type:{c}", f"r.{c} IS NOT NULL AND t.{c} IS NULL")
        for bound, op in (("min", "<"), ("max", ">")):
            if bound in d:
                value = "now()::TIMESTAMP" if d[bound] == "now" else lit(d[bound])
                fails(f"{bound}:{c}", f"t.{c} {op} {value}")
        if "in" in d:
            fails(f"in:{c}", f"t.{c} NOT IN ({', '.join(lit(v) for v in d['in'])})")
        if "pattern" in d:
            fails(f"pattern:{c}", f"NOT regexp_matches(t.{c}, {lit(d['pattern'])})")
    for check in spec.get("checks", []):
        if "expression" in check:  # FALSE fails, NULL passes
            name, expr = check["name"], check["expression"]
            selects.append(
                f"SELECT recno, {lit('check:' + name)} FROM typed WHERE ({expr}) = false"
            )
    return f"WITH typed AS (SELECT recno, {typed} FROM raw_rows) " + " UNION ALL ".join(selects)


def read_csv_rows(con: Any, path: Path, spec: ObjectSpec) -> list[int]:
    """Create view raw_rows(recno, cols...) of a CSV; return the malformed record numbers."""
    columns = "{" + ", ".join(f"{lit(c)}: 'VARCHAR'" for c in spec["columns"]) + "}"
    con.execute("SET threads = 1")  # keeps the scan in file order for row_number()
    con.execute(
        f"""CREATE TEMP TABLE parsed AS
        SELECT row_number() OVER () AS k, * FROM read_csv({lit(path)}, header = true,
            delim = ',', quote = '"', escape = '"', auto_detect = false, all_varchar = true,
            columns = {columns}, store_rejects = true)"""
    )
    malformed = [
        r[0] for r in con.execute("SELECT DISTINCT line - 1 FROM reject_errors").fetchall()
    ]
    con.execute(
        """CREATE TEMP VIEW raw_rows AS
        WITH total AS (SELECT (SELECT count(*) FROM parsed)
                            + (SELECT count(DISTINCT line) FROM reject_errors) AS n),
        recs AS (SELECT range AS recno, row_number() OVER (ORDER BY range) AS k
                 FROM range(1, (SELECT n FROM total) + 1)
                 WHERE range NOT IN (SELECT line - 1 FROM reject_errors))
        SELECT recs.recno, parsed.* EXCLUDE (k) FROM parsed JOIN recs USING (k)"""
    )
    return sorted(malformed)


def read_jsonl_rows(con: Any, path: Path, spec: ObjectSpec) -> list[int]:
    """Create view raw_rows(recno, cols...) of a JSONL file; return malformed record numbers."""
    extract = ", ".join(
        f"json_extract_string(line, {lit('$.' + c)}) AS {c}" for c in spec["columns"]
    )
    con.execute(
        f"""CREATE TEMP TABLE lines AS
        SELECT * FROM (
            SELECT generate_subscripts(ls, 1) AS recno, unnest(ls) AS line
            FROM (SELECT string_split(content, chr(10)) AS ls FROM read_text({lit(path)})))
        WHERE line <> ''"""
    )
    con.execute(
        f"CREATE TEMP VIEW raw_rows AS SELECT recno, {extract} FROM lines WHERE json_valid(line)"
    )
    rows = con.execute("SELECT recno FROM lines WHERE NOT json_valid(line)").fetchall()
    return sorted(r[0] for r in rows)


def sql_reasons(path: Path, spec: ObjectSpec) -> tuple[int, set[tuple[int, str]], Any]:
    """rows_in, {(recno, reason)} and an open connection with `raw_rows` and `valid_rows`."""
    con = duckdb.connect()
    reader = read_csv_rows if spec["format"] == "csv" else read_jsonl_rows
    malformed = reader(con, path, spec)
    found = {(int(n), str(r)) for n, r in con.execute(rule_sql(spec)).fetchall()}
    found |= {(n, "malformed") for n in malformed}
    bad = sorted({n for n, _ in found})
    con.execute(f"CREATE TEMP TABLE bad AS SELECT unnest({bad}::BIGINT[]) AS recno")
    con.execute("CREATE TEMP VIEW valid_rows AS SELECT * FROM raw_rows ANTI JOIN bad USING (recno)")
    rows_in = len(malformed) + con.execute("SELECT count(*) FROM raw_rows").fetchall()[0][0]
    return rows_in, found, con


def expected_pairs(fe: FileExpectation) -> set[tuple[int, str]]:
    return {(n, r) for n, reasons in fe.quarantined.items() for r in reasons}


def data_lines(path: Path, header: bool) -> int:
    return path.read_bytes().count(b"\n") - int(header)


# ---------------------------------------------------------------- per-file facts


def test_expectations_file_matches_return_value(demo: tuple[Path, DemoExpectations]) -> None:
    from penstock.demo import read_expectations

    directory, expected = demo
    assert read_expectations(directory) == expected
    assert DemoExpectations.from_dict(expected.to_dict()) == expected


def test_file_set(demo: tuple[Path, DemoExpectations]) -> None:
    directory, expected = demo
    assert sorted(expected.files) == [
        "landing/customers/drop_001.jsonl",
        "landing/customers/drop_002.jsonl",
        "landing/orders/drop_001.csv",
        "landing/orders/drop_002.csv",
        "landing/orders/drop_003.csv",
    ]
    landed = sorted(p.relative_to(directory).as_posix() for p in directory.glob("landing/*/*"))
    assert landed == sorted(expected.files)


@pytest.mark.parametrize(
    "rel",
    [
        "landing/orders/drop_001.csv",
        "landing/orders/drop_002.csv",
        "landing/orders/drop_003.csv",
        "landing/customers/drop_001.jsonl",
        "landing/customers/drop_002.jsonl",
    ],
)
def test_reasons_match_independent_sql(demo: tuple[Path, DemoExpectations], rel: str) -> None:
    directory, expected = demo
    fe = expected.files[rel]
    spec = contracts(directory)[fe.object]
    rows_in, found, con = sql_reasons(directory / rel, spec)
    assert fe.rows_in == rows_in == data_lines(directory / rel, header=spec["format"] == "csv")
    assert found == expected_pairs(fe)
    assert all(len(reasons) == 1 for reasons in fe.quarantined.values())
    assert 0.01 <= len(fe.quarantined) / fe.rows_in <= 0.02
    # duplicates = valid rows minus distinct valid keys (SCD2: distinct key and updated_at,
    # since each dated version of a key enters the history)
    key = spec["key"][0]
    version = f"({key}, {spec['order_by']})" if spec["load"] == "scd2" else key
    counts = con.execute(f"SELECT count(*), count(DISTINCT {version}) FROM valid_rows").fetchall()
    valid, keys = counts[0]
    assert fe.duplicates == valid - keys
    assert fe.loaded == rows_in - len(fe.quarantined) - fe.duplicates == valid - fe.duplicates
    # every kind the contract catches, in every drop
    assert set(fe.reason_counts()) == (ORDER_KINDS if fe.object == "orders" else CUSTOMER_KINDS)
    if spec["format"] == "csv":
        errors = con.execute("SELECT DISTINCT error_type::VARCHAR FROM reject_errors").fetchall()
        kinds = {r[0] for r in errors}
        assert kinds == {"MISSING COLUMNS", "TOO MANY COLUMNS"}


def test_reason_totals(demo: tuple[Path, DemoExpectations]) -> None:
    _, expected = demo
    totals: dict[str, Counter[str]] = {}
    for fe in expected.files.values():
        totals.setdefault(fe.object, Counter()).update(fe.reason_counts())
    assert expected.reason_counts == {k: dict(v) for k, v in totals.items()}
    assert set(expected.reason_counts["orders"]) == ORDER_KINDS
    assert set(expected.reason_counts["customers"]) == CUSTOMER_KINDS


# ---------------------------------------------------------------- warehouse state, simulated


def all_valid_rows(directory: Path, expected: DemoExpectations, obj: str) -> Any:
    """A connection with table `v`: every valid row of `obj`'s files plus `drop` and `recno`."""
    con = duckdb.connect()
    rels = sorted(r for r, fe in expected.files.items() if fe.object == obj)
    for drop, rel in enumerate(rels, start=1):
        _, _, file_con = sql_reasons(directory / rel, contracts(directory)[obj])
        con.register("batch_rows", file_con.sql("SELECT * FROM valid_rows").to_arrow_table())
        verb = "CREATE TABLE v AS" if drop == 1 else "INSERT INTO v"
        con.execute(f"{verb} SELECT {drop} AS drop, * FROM batch_rows")
        con.unregister("batch_rows")
    return con


def test_orders_merge_state(demo: tuple[Path, DemoExpectations]) -> None:
    directory, expected = demo
    con = all_valid_rows(directory, expected, "orders")
    con.execute(
        """CREATE TABLE batch AS SELECT * FROM v QUALIFY row_number() OVER (
             PARTITION BY drop, order_id::BIGINT
             ORDER BY updated_at::TIMESTAMP DESC, recno DESC) = 1"""
    )
    # merge: the newest updated_at wins across batches (no cross-batch ties to break)
    ties = con.execute(
        """SELECT count(*) FROM (SELECT order_id, updated_at FROM batch
           GROUP BY ALL HAVING count(*) > 1)"""
    ).fetchall()[0][0]
    assert ties == 0
    con.execute(
        """CREATE TABLE final AS SELECT * FROM batch QUALIFY row_number() OVER (
             PARTITION BY order_id::BIGINT ORDER BY updated_at::TIMESTAMP DESC) = 1"""
    )
    assert con.execute("SELECT count(*) FROM final").fetchall()[0][0] == expected.orders_rows
    for order_id, updated_at in expected.duplicate_winners.items():
        rows = con.execute(
            "SELECT updated_at FROM final WHERE order_id::BIGINT = ?", [order_id]
        ).fetchall()
        assert rows == [(updated_at,)]
    # updates of earlier drops' orders arrive in drops 2 and 3
    updated = con.execute(
        """SELECT b.drop, count(*) FROM batch b JOIN batch a
           ON a.order_id::BIGINT = b.order_id::BIGINT AND a.drop < b.drop
           WHERE b.updated_at::TIMESTAMP > a.updated_at::TIMESTAMP GROUP BY ALL ORDER BY 1"""
    ).fetchall()
    assert [d for d, n in updated if n > 0] == [2, 3]


def test_orders_duplicates_in_files(demo: tuple[Path, DemoExpectations]) -> None:
    directory, expected = demo
    con = all_valid_rows(directory, expected, "orders")
    groups = con.execute(
        """SELECT drop, order_id::BIGINT, count(*), count(DISTINCT updated_at),
                  arg_max(recno, updated_at::TIMESTAMP) AS win_rec, max(recno) AS last_rec,
                  max(updated_at::TIMESTAMP)::VARCHAR
           FROM v GROUP BY ALL HAVING count(*) > 1"""
    ).fetchall()
    assert {g[1]: g[6] for g in groups} == expected.duplicate_winners
    assert all(g[2] == 2 and g[3] == 2 for g in groups)  # pairs, never tied
    earlier_wins = {g[0] for g in groups if g[4] < g[5]}
    later_wins = {g[0] for g in groups if g[4] == g[5]}
    assert earlier_wins == later_wins == {1, 2, 3}


def test_late_older_update(demo: tuple[Path, DemoExpectations]) -> None:
    directory, expected = demo
    assert expected.late_order_id is not None
    con = all_valid_rows(directory, expected, "orders")
    rows = con.execute(
        """SELECT drop, status, amount, updated_at::TIMESTAMP FROM v
           WHERE order_id::BIGINT = ? ORDER BY drop""",
        [expected.late_order_id],
    ).fetchall()
    by_drop = {r[0]: r for r in rows}
    assert len(rows) == len(by_drop) and 2 in by_drop and 3 in by_drop
    stored, late = by_drop[2], by_drop[3]
    assert max(r[3] for r in rows) == stored[3]  # drop 2 holds the newest version
    assert late[3] < stored[3]
    assert {"status": stored[1], "amount": stored[2]} == expected.late_order_expected
    assert late[1] != stored[1] and late[2] != stored[2]


def test_customers_scd2_state(demo: tuple[Path, DemoExpectations]) -> None:
    directory, expected = demo
    con = all_valid_rows(directory, expected, "customers")
    # scd2: every dated version of a key is kept (in a file only same-date rows collapse)
    con.execute(
        """CREATE TABLE batch AS SELECT * FROM v QUALIFY row_number() OVER (
             PARTITION BY drop, customer_id::BIGINT, updated_at::TIMESTAMP
             ORDER BY recno DESC) = 1"""
    )
    con.execute(
        """CREATE TABLE history AS
           SELECT customer_id::BIGINT AS id, count(DISTINCT drop) AS seen,
                  sum(changed::INT) AS versions
           FROM (SELECT *, lag(row(name, email, country, segment, signup_date))
                   OVER (PARTITION BY customer_id::BIGINT ORDER BY updated_at::TIMESTAMP)
                   IS DISTINCT FROM row(name, email, country, segment, signup_date)
                   AS changed FROM batch)
           GROUP BY ALL"""
    )
    current, versions = con.execute("SELECT count(*), sum(versions) FROM history").fetchall()[0]
    assert current == expected.customers_current
    assert versions == expected.customers_versions
    changed = con.execute(
        "SELECT id FROM history WHERE versions = 2 AND seen > 1 ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in changed] == expected.changed_customer_ids
    repeats = con.execute("SELECT id FROM history WHERE seen > 1 AND versions = 1 ORDER BY 1")
    assert [r[0] for r in repeats.fetchall()] == expected.unchanged_repeat_customer_ids
    assert expected.changed_customer_ids and expected.unchanged_repeat_customer_ids
    # changes are a new e-mail or segment with a newer updated_at
    diffs = con.execute(
        """SELECT (a.email <> b.email)::INT + (a.segment <> b.segment)::INT,
                  b.updated_at::TIMESTAMP > a.updated_at::TIMESTAMP
           FROM batch a JOIN batch b ON a.customer_id = b.customer_id AND a.drop < b.drop
           WHERE a.customer_id::BIGINT IN
                 (SELECT id FROM history WHERE versions = 2 AND seen > 1)"""
    ).fetchall()
    assert diffs and all(d == (1, True) for d in diffs)
    # drop 1 has keys with two versions; the newer one is current
    dups = con.execute(
        """SELECT customer_id::BIGINT, max(updated_at::TIMESTAMP)::VARCHAR FROM v WHERE drop = 1
           GROUP BY ALL HAVING count(*) > 1"""
    ).fetchall()
    assert dict(dups) == expected.customer_duplicate_winners
    assert dups


def test_repeats_are_byte_identical(demo: tuple[Path, DemoExpectations]) -> None:
    directory, expected = demo
    first = (directory / "landing/customers/drop_001.jsonl").read_text(encoding="utf-8")
    second = (directory / "landing/customers/drop_002.jsonl").read_text(encoding="utf-8")
    shared = set(first.splitlines()) & set(second.splitlines())
    ids = sorted(int(line.split(",", 1)[0].split(": ")[1]) for line in shared)
    assert ids == expected.unchanged_repeat_customer_ids


@pytest.mark.parametrize(
    ("obj", "columns"),
    [("orders", ["order_ts", "updated_at"]), ("customers", ["signup_date", "updated_at"])],
)
def test_valid_times_lie_in_2023_to_mid_2025(
    demo: tuple[Path, DemoExpectations], obj: str, columns: list[str]
) -> None:
    # (2099 values occur only as the `max` defects: the reason check above proves it)
    directory, expected = demo
    con = all_valid_rows(directory, expected, obj)
    for column in columns:
        lo, hi = con.execute(
            f"SELECT min({column}::TIMESTAMP)::VARCHAR, max({column}::TIMESTAMP)::VARCHAR FROM v"
        ).fetchall()[0]
        assert lo >= "2023-01-01" and hi < "2025-07-01", column


# ---------------------------------------------------------------- determinism and big files


def test_deterministic(demo: tuple[Path, DemoExpectations], tmp_path: Path) -> None:
    from penstock.demo import create_demo_project

    directory, _ = demo
    same, other = tmp_path / "same", tmp_path / "other"
    create_demo_project(same)
    create_demo_project(other, seed=8)
    files = sorted(p.relative_to(directory) for p in directory.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(same) for p in same.rglob("*") if p.is_file())
    for rel in files:
        assert (same / rel).read_bytes() == (directory / rel).read_bytes(), rel
    for rel in files:
        if rel.parts[0] == "landing":
            assert (other / rel).read_bytes() != (directory / rel).read_bytes(), rel


def test_write_orders_csv_200k(demo: tuple[Path, DemoExpectations], tmp_path: Path) -> None:
    directory, _ = demo
    path = tmp_path / "big.csv"
    fe = write_orders_csv(path, 200_000, seed=3, start_id=1_000_001)
    spec = contracts(directory)["orders"]
    rows_in, found, con = sql_reasons(path, spec)
    assert fe.rows_in == rows_in == data_lines(path, header=True) == 200_000
    assert found == expected_pairs(fe)
    assert set(fe.reason_counts()) == ORDER_KINDS
    assert 0.01 <= len(fe.quarantined) / rows_in <= 0.02
    valid, keys, low = con.execute(
        "SELECT count(*), count(DISTINCT order_id), min(order_id::BIGINT) FROM valid_rows"
    ).fetchall()[0]
    assert fe.duplicates == valid - keys > 0
    assert fe.loaded == valid - fe.duplicates
    assert low >= 1_000_001
    again = tmp_path / "again.csv"
    assert write_orders_csv(again, 200_000, seed=3, start_id=1_000_001) == fe
    assert again.read_bytes() == path.read_bytes()


def test_other_shape_matches_independent_sql(tmp_path: Path) -> None:
    from penstock.demo import create_demo_project

    expected = create_demo_project(
        tmp_path, seed=11, order_rows=2000, order_drops=4, customer_rows=800, customer_drops=3
    )
    assert len(expected.files) == 7
    for rel, fe in expected.files.items():
        spec = contracts(tmp_path)[fe.object]
        rows_in, found, _ = sql_reasons(tmp_path / rel, spec)
        assert rows_in == fe.rows_in and found == expected_pairs(fe), rel
        assert 0.01 <= len(fe.quarantined) / fe.rows_in <= 0.02, rel
    con = all_valid_rows(tmp_path, expected, "orders")
    final = con.execute(
        """SELECT count(DISTINCT order_id::BIGINT),
                  arg_max(status, updated_at::TIMESTAMP) FILTER (WHERE order_id::BIGINT = ?),
                  arg_max(amount, updated_at::TIMESTAMP) FILTER (WHERE order_id::BIGINT = ?)
           FROM v""",
        [expected.late_order_id, expected.late_order_id],
    ).fetchall()[0]
    assert final[0] == expected.orders_rows
    assert {"status": final[1], "amount": final[2]} == expected.late_order_expected
    customers = all_valid_rows(tmp_path, expected, "customers")
    ids = customers.execute("SELECT count(DISTINCT customer_id::BIGINT) FROM v").fetchall()[0][0]
    assert ids == expected.customers_current
