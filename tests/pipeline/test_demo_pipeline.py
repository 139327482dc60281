"""The demo end to end: every number the pipeline reports matches what the generator wrote."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import penstock
from penstock.demo.expectations import DemoExpectations

from helpers import query, snapshot

TABLES = ["orders", "customers", "quarantine.orders", "quarantine.customers", "penstock.loads"]


def _ledger(project: Path) -> dict[str, tuple[int, ...]]:
    rows = query(
        project,
        "SELECT source_file, rows_in, rows_loaded, rows_quarantined, rows_duplicate "
        "FROM penstock.loads",
    )
    return {str(r[0]): tuple(int(v) for v in r[1:]) for r in rows}


def test_row_accounting_holds_for_every_batch(demo: tuple[Path, DemoExpectations]) -> None:
    project, expected = demo
    result = penstock.run(project)
    assert result.status == "success"
    ledger = _ledger(project)
    assert set(ledger) == set(expected.files)
    for name, (rows_in, loaded, quarantined, duplicate) in ledger.items():
        assert rows_in == loaded + quarantined + duplicate, name
        exp = expected.files[name]
        assert (rows_in, loaded, quarantined, duplicate) == (
            exp.rows_in,
            exp.loaded,
            len(exp.quarantined),
            exp.duplicates,
        ), name
    # the run result reports the same numbers as the ledger
    for outcome in result.loads():
        assert outcome.rows_in == (
            outcome.rows_loaded + outcome.rows_quarantined + outcome.rows_duplicate
        )


def test_quarantine_reasons_match_the_generated_defects_exactly(
    demo: tuple[Path, DemoExpectations],
) -> None:
    project, expected = demo
    penstock.run(project)
    for obj in ("orders", "customers"):
        rows = query(
            project,
            f"SELECT l.source_file, q._row_number, q._reasons FROM quarantine.{obj} q "
            f"JOIN penstock.loads l ON l.batch_id = q._batch_id",
        )
        actual = {(str(f), int(n)): list(r) for f, n, r in rows}
        wanted = {
            (name, number): reasons
            for name, fe in expected.files.items()
            if fe.object == obj
            for number, reasons in fe.quarantined.items()
        }
        assert actual == wanted, obj
        counts = Counter(r for reasons in actual.values() for r in reasons)
        assert dict(counts) == expected.reason_counts[obj]
    # every kind the contracts catch occurs
    kinds = {r.split(":")[0] for c in expected.reason_counts.values() for r in c}
    assert kinds == {"required", "type", "min", "max", "in", "pattern", "check", "malformed"}


def test_quarantine_keeps_raw_values_and_the_lake_copy(
    demo: tuple[Path, DemoExpectations],
) -> None:
    project, _ = demo
    penstock.run(project)
    malformed = query(
        project,
        "SELECT _raw_line, _error FROM quarantine.orders WHERE _reasons = ['malformed']",
    )
    assert malformed and all(raw and err for raw, err in malformed)
    type_rows = query(
        project,
        "SELECT order_id FROM quarantine.orders WHERE list_contains(_reasons, 'type:order_id')",
    )
    assert type_rows and all(v is not None for (v,) in type_rows)  # the raw text is kept
    # the demo's three orders files load in one micro-batch: one lake file, every row with
    # its batch id
    files = sorted((project / "lake" / "quarantine" / "orders").glob("*.parquet"))
    assert [f.name.startswith("chunk-") for f in files] == [True]
    in_lake = query(
        project,
        f"SELECT _batch_id, count(*) FROM read_parquet({[str(f) for f in files]}) GROUP BY ALL "
        "ORDER BY ALL",
    )
    in_table = query(
        project, "SELECT _batch_id, count(*) FROM quarantine.orders GROUP BY ALL ORDER BY ALL"
    )
    assert in_lake == in_table and len(in_table) == 3


def test_merge_keeps_the_newest_version_and_late_data_loses(
    demo: tuple[Path, DemoExpectations],
) -> None:
    project, expected = demo
    penstock.run(project)
    assert query(project, "SELECT count(*) FROM orders")[0][0] == expected.orders_rows
    assert query(project, "SELECT count(*) - count(DISTINCT order_id) FROM orders")[0][0] == 0
    assert expected.late_order_id is not None
    status, amount = query(
        project,
        f"SELECT status, amount::VARCHAR FROM orders WHERE order_id = {expected.late_order_id}",
    )[0]
    assert {"status": status, "amount": amount} == expected.late_order_expected
    stale = query(project, "SELECT sum(rows_stale) FROM penstock.loads WHERE object = 'orders'")
    assert stale[0][0] >= 1
    for order_id, updated_at in expected.duplicate_winners.items():
        got = query(
            project,
            f"SELECT strftime(updated_at, '%Y-%m-%d %H:%M:%S') FROM orders "
            f"WHERE order_id = {order_id}",
        )
        assert got == [(updated_at,)], order_id


def test_scd2_keeps_history_with_one_current_row_per_key(
    demo: tuple[Path, DemoExpectations],
) -> None:
    project, expected = demo
    penstock.run(project)
    total, current = query(
        project, "SELECT count(*), count(*) FILTER (WHERE _is_current) FROM customers"
    )[0]
    assert (total, current) == (expected.customers_versions, expected.customers_current)
    assert query(
        project,
        "SELECT count(*) FROM (SELECT customer_id FROM customers WHERE _is_current "
        "GROUP BY customer_id HAVING count(*) > 1)",
    ) == [(0,)]
    for customer_id in expected.changed_customer_ids:
        versions = query(
            project,
            f"SELECT _valid_from, _valid_to, _is_current, _row_hash FROM customers "
            f"WHERE customer_id = {customer_id} ORDER BY _valid_from",
        )
        assert len(versions) == 2, customer_id
        (old_from, old_to, old_cur, old_hash), (new_from, new_to, new_cur, new_hash) = versions
        assert old_to == new_from and old_from < new_from
        assert (old_cur, new_cur, new_to) == (False, True, None)
        assert old_hash != new_hash
    for customer_id in expected.unchanged_repeat_customer_ids:
        count = query(project, f"SELECT count(*) FROM customers WHERE customer_id = {customer_id}")
        assert count == [(1,)], customer_id


def test_second_run_loads_nothing_and_changes_nothing(
    demo: tuple[Path, DemoExpectations],
) -> None:
    project, _ = demo
    penstock.run(project)
    before = snapshot(project, TABLES)
    again = penstock.run(project)
    assert again.status == "success"
    assert again.loads() == []
    assert [o for o in again.outcomes if o.step == "stage"] == []
    assert snapshot(project, TABLES) == before


def test_rebuild_replays_the_stage_zone_into_an_identical_warehouse(
    demo: tuple[Path, DemoExpectations],
) -> None:
    project, _ = demo
    penstock.run(project)
    before = snapshot(project, TABLES[:4])
    ledger_before = query(
        project,
        "SELECT batch_id, rows_in, rows_loaded, rows_quarantined, rows_duplicate, loaded_at "
        "FROM penstock.loads ORDER BY batch_id",
    )
    result = penstock.rebuild(project)
    assert result.status == "success"
    assert len(result.loads()) == 5
    assert snapshot(project, TABLES[:4]) == before
    assert (
        query(
            project,
            "SELECT batch_id, rows_in, rows_loaded, rows_quarantined, rows_duplicate, loaded_at "
            "FROM penstock.loads ORDER BY batch_id",
        )
        == ledger_before
    )


def test_rebuild_on_an_empty_warehouse_yields_the_same_data(
    demo: tuple[Path, DemoExpectations],
) -> None:
    project, _ = demo
    penstock.run(project)
    data_columns = {
        "orders": "* EXCLUDE (_loaded_at)",
        "customers": "* EXCLUDE (_loaded_at)",
        "quarantine.orders": "*",
        "quarantine.customers": "*",
    }

    def contents() -> dict[str, list[tuple[object, ...]]]:
        return {
            t: sorted(query(project, f"SELECT {cols} FROM {t}"), key=repr)
            for t, cols in data_columns.items()
        }

    before = contents()
    (project / "warehouse.duckdb").unlink()
    result = penstock.rebuild(project)
    assert result.status == "success"
    assert contents() == before
