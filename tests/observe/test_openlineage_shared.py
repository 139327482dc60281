"""The OpenLineage file's shared facets (observe/openlineage.py: `Shared`, `event_json`):
facets built once and their JSON reused write the very lines json.dumps writes, and the
schema each batch's datasets show is that batch's own, across a schema changed mid-run."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from test_lineage import FILES, PROJECT, events_of

from penstock.observe.events import CheckResult, SchemaField
from penstock.observe.openlineage import (
    Shared,
    _assertion,
    _plain_schema_facet,
    _schema_facet,
    event_json,
)
from penstock.secrets import clear_secrets, register_secret

from helpers import write_project

CLI = Callable[..., tuple[int, str, str]]


def test_event_json_writes_what_json_dumps_writes() -> None:
    shared = Shared({"b": [1, 2.5, None], "a": 'é \u2028 "q"', "_producer": "x"})
    event: dict[str, Any] = {
        "run": {"facets": {"parent": shared}, "runId": "r"},
        "eventTime": datetime(2026, 1, 2, tzinfo=UTC),  # not JSON: default=str
        "inputs": [
            {"facets": {"schema": shared}, "inputFacets": {}, "name": "n", "namespace": "ns"},
            {"facets": {"dataQualityAssertions": {"assertions": [shared, {"z": 1, "a": [True]}]}}},
        ],
        "outputs": [],
        "job": {"facets": {3: "int keys", 1: shared}, "name": "j"},
        "producer": 7,
    }
    assert event_json(event) == json.dumps(event, sort_keys=True, default=str)
    assert event_json({}) == "{}"


def test_cached_facets_equal_those_built_afresh() -> None:
    a = (SchemaField(name="id", type="BIGINT"), SchemaField(name="x", type="VARCHAR"))
    b = (SchemaField(name="id", type="VARCHAR"),)
    for fields in (a, b, a, tuple(reversed(a)), b):
        cached = _plain_schema_facet(fields)
        assert cached == _schema_facet(fields)
        assert cached.json == json.dumps(_schema_facet(fields), sort_keys=True)
    check = CheckResult(
        name="min:amount", rule="min", column="amount", passed=True, failed_rows=0, expected="> 0"
    )
    failed = CheckResult(
        name="min:amount", rule="min", column="amount", passed=False, failed_rows=3, expected="> 0"
    )
    assert _assertion(check, "warn", "> 0")["actual"] == "0 failing row(s)"
    assert _assertion(failed, "warn", "> 0")["actual"] == "3 failing row(s)"
    assert _assertion(failed, "error", "> 0")["severity"] == "error"


def test_a_secret_registered_later_is_redacted_from_cached_assertions() -> None:
    from penstock.observe.events import ChecksEvaluated
    from penstock.observe.openlineage import assertions

    check = CheckResult(
        name="check:token",
        rule="check",
        column=None,
        passed=True,
        failed_rows=0,
        expected="token = 's3cr3t-value'",
    )
    checks = ChecksEvaluated(
        run_id="r",
        step_id="s",
        object="o",
        batch_id="b",
        source_file="f.csv",
        on_invalid="warn",
        rows_in=1,
        rows_invalid=0,
        rows_quarantined=0,
        rows_warned=0,
        checks=(check,),
    )

    def expected() -> str:
        (assertion,) = assertions(checks)
        return str(assertion["expected"])

    try:
        assert expected() == "token = 's3cr3t-value'"
        register_secret("s3cr3t-value")
        assert expected() == "token = '***'"
    finally:
        clear_secrets()


def test_each_batch_shows_its_own_schema_when_it_changes_mid_run(tmp_path: Path, cli: CLI) -> None:
    project = write_project(tmp_path / "p", PROJECT, FILES)
    assert cli("run", "-p", project)[0] == 0
    # a later file with one more column
    (project / "landing/orders/c.csv").write_text(
        "order_id,Order Time,amount,note\n4,2024-01-03 10:00,2.00,hi\n"
    )
    assert cli("run", "-p", project)[0] == 0
    lines = (project / ".penstock" / "openlineage.jsonl").read_text().splitlines()
    for line in lines:
        assert line == json.dumps(json.loads(line), sort_keys=True, default=str)
    landing = {}
    for e in events_of(project):
        for d in e["inputs"]:
            if d["name"].endswith(".csv"):
                names = [f["name"] for f in d["facets"]["schema"]["fields"]]
                landing.setdefault(Path(d["name"]).name, set()).add(tuple(names))
    # column lineage (its shape worked out once per schema): each batch's own columns, from
    # its own input dataset
    for e in events_of(project):
        if e["eventType"] != "COMPLETE" or not e["outputs"]:
            continue
        source = e["inputs"][0] if e["job"]["name"].endswith(".stage") else None
        for d in e["inputs"]:
            if d["inputFacets"].get("dataQualityAssertions"):
                source = d  # a load's staged batch
        assert source is not None
        for out in e["outputs"]:
            lineage = out["facets"]["columnLineage"]["fields"]
            inputs = [i for column in lineage.values() for i in column["inputFields"]]
            assert {i["name"] for i in inputs} == {source["name"]}
            if e["job"]["name"].endswith(".stage"):
                columns = [f["name"] for f in source["facets"]["schema"]["fields"]]
                assert sorted(lineage) == sorted(columns)
                assert {c: v["inputFields"][0]["field"] for c, v in lineage.items()} == {
                    c: c for c in columns
                }
            else:
                assert lineage["order_ts"]["inputFields"][0]["field"] == "Order Time"
    assert landing == {
        "a.csv": {("order_id", "Order Time", "amount")},
        "b.csv": {("order_id", "Order Time", "amount")},
        "c.csv": {("order_id", "Order Time", "amount", "note")},
    }


def test_column_lineage_from_a_template_is_the_facet_encoded() -> None:
    from penstock.observe.lineage import from_shape
    from penstock.observe.openlineage import _NAME_MARK, _column_facet, _column_facet_of

    plain = (("id", "id", "IDENTITY", "as read", False), ("x", "X", "TRANSFORMATION", "t", True))
    other = (("id", "id", "IDENTITY", "as read", False),)
    marked = ((_NAME_MARK, "id", "IDENTITY", "as read", False),)  # the mark elsewhere: no template
    for shape in (plain, other, plain, marked):
        for namespace, name in (("file", "/l/a.csv"), ("file", 'é "b".csv'), ("duckdb://w", "s")):
            columns = from_shape(shape, namespace, name)
            got = _column_facet(columns)
            assert got == _column_facet_of(columns)
            assert event_json({"facets": got}) == json.dumps(
                {"facets": _column_facet_of(columns)}, sort_keys=True
            )
            assert isinstance(got, Shared) == (shape is not marked)
