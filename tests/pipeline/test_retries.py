"""Retries and timeouts (issue 8, part 3): a try of an object's work that fails with transient
errors only is tried again as its `retry:` allows; a terminal error fails at once; a try past
its `timeout:` is stopped and counts as transient. Every try is recorded in step_runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

import penstock
from penstock.catalog import load_project
from penstock.engine.attempts import Deadline
from penstock.errors import ContractViolation, ProjectErrors, StepTimeout, TransientError
from penstock.faults import fault_action
from penstock.observe import MetadataStore

from helpers import log_messages, query, write_project

YML = """
name: retries
sources:
  landing: {{kind: files, path: ./landing, settle: 0s{source}}}
objects:
  items:
    source: landing
    files: "items/*.csv"
    key: [id]
    load: merge
    columns:
      id: {{type: bigint, required: true}}
      name: {{type: text}}
{object}"""
FILES = {
    "landing/items/a.csv": "id,name\n1,one\n2,two\n",
    "landing/items/b.csv": "id,name\n3,three\n",
}


def project(tmp_path: Path, *, source: str = "", obj: str = "") -> Path:
    return write_project(tmp_path, YML.format(source=source, object=obj), FILES)


def failing(times: int, error: Callable[[], Exception]) -> Callable[[], None]:
    """An action that raises `error()` the first `times` times it runs."""
    calls = {"n": 0}

    def act() -> None:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error()

    return act


def steps(root: Path, run_id: str) -> list[tuple[str, int, str, str | None]]:
    """(step, attempt, status, error) of the run's object and load steps, in start order."""
    with MetadataStore(load_project(root).metadata_url) as store:
        rows = store.steps(run_id)
    return [
        (r.step, r.attempt, r.status, r.error)
        for r in sorted(rows, key=lambda r: r.started_at)
        if r.step in ("object", "load")
    ]


def locked() -> TransientError:
    return TransientError("the warehouse file is locked by another program")


def test_a_transient_failure_is_tried_again_and_the_batches_load_once(tmp_path: Path) -> None:
    root = project(tmp_path, obj="    retry: {attempts: 3, backoff: 10ms}\n")
    # the chunk of both files fails, then (loaded one at a time) the first file fails too
    with fault_action("before_load_commit", failing(2, locked)):
        result = penstock.run(root)
    assert result.status == "success", [f.error for f in result.failures]
    assert query(root, "SELECT id, name FROM items ORDER BY id") == [
        (1, "one"),
        (2, "two"),
        (3, "three"),
    ]
    assert query(root, "SELECT count(*) FROM penstock.loads")[0][0] == 2
    recorded = steps(root, result.run_id)
    # try 1: the first file's load failed with the error and the second waited; try 2
    # loaded both
    assert [(s, a, st) for s, a, st, _ in recorded] == [
        ("object", 1, "failed"),
        ("load", 1, "failed"),
        ("load", 1, "skipped"),
        ("object", 2, "success"),
        ("load", 2, "success"),
        ("load", 2, "success"),
    ]
    assert [e for _, a, st, e in recorded if a == 1 and st == "failed"] == [
        "the warehouse file is locked by another program"
    ] * 2
    assert any(
        "try 1 failed" in m and "trying again" in m for m in log_messages(root, result.run_id)
    )
    assert penstock.run(root).loads() == []  # nothing left to do


def test_a_source_retry_applies_to_its_objects_and_an_object_may_say_otherwise(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, source=", retry: {attempts: 2, backoff: 10ms}")
    assert load_project(root).retry_policy("items").attempts == 2
    with fault_action("before_load_commit", failing(2, locked)):
        assert penstock.run(root).status == "success"
    other = project(tmp_path / "other", source=", retry: 4", obj="    retry: 1\n")
    assert load_project(other).retry_policy("items").attempts == 1
    with fault_action("before_load_commit", failing(2, locked)):
        assert penstock.run(other).status == "failed"


def test_a_terminal_error_is_not_tried_again(tmp_path: Path) -> None:
    root = project(tmp_path, obj="    retry: {attempts: 3, backoff: 10ms}\n")
    refused = failing(5, lambda: ContractViolation("the contract does not compile"))
    with fault_action("before_load_commit", refused):
        result = penstock.run(root)
    assert result.status == "failed"
    assert [(s, a, st) for s, a, st, _ in steps(root, result.run_id)] == [
        ("object", 1, "failed"),
        ("load", 1, "failed"),
        ("load", 1, "skipped"),
    ]


def test_tries_run_out(tmp_path: Path) -> None:
    root = project(tmp_path, obj="    retry: {attempts: 2, backoff: 10ms}\n")
    with fault_action("before_load_commit", failing(9, locked)):
        result = penstock.run(root)
    assert result.status == "failed"
    assert "locked by another program" in (result.failures[0].error or "")
    assert [(s, a, st) for s, a, st, _ in steps(root, result.run_id) if s == "object"] == [
        ("object", 1, "failed"),
        ("object", 2, "failed"),
    ]
    assert query(root, "SELECT count(*) FROM penstock.loads")[0][0] == 0


def test_a_try_past_its_timeout_commits_nothing_and_is_tried_again(tmp_path: Path) -> None:
    root = project(tmp_path, obj="    timeout: 200ms\n    retry: {attempts: 2, backoff: 10ms}\n")
    slow = {"n": 0}

    def first_try_slow() -> None:
        slow["n"] += 1
        if slow["n"] == 1:
            time.sleep(0.6)  # a stuck step (the test asserts what happened, not when)

    with fault_action("before_load_commit", first_try_slow):
        result = penstock.run(root)
    assert result.status == "success", [f.error for f in result.failures]
    recorded = steps(root, result.run_id)
    assert [(s, a, st) for s, a, st, _ in recorded if s == "object"] == [
        ("object", 1, "failed"),
        ("object", 2, "success"),
    ]
    errors = [e for s, a, st, e in recorded if a == 1 and st == "failed"]
    assert len(errors) == 2 and all("ran past its timeout of 0.2 s" in (e or "") for e in errors)
    assert query(root, "SELECT count(*) FROM items")[0][0] == 3


def test_a_timeout_without_retry_fails_the_object(tmp_path: Path) -> None:
    root = project(tmp_path, obj="    timeout: 100ms\n")
    with fault_action("before_load_commit", lambda: time.sleep(0.4)):
        result = penstock.run(root)
    assert result.status == "failed"
    assert "timeout" in (result.failures[0].error or "")
    assert query(root, "SELECT count(*) FROM penstock.loads")[0][0] == 0


def test_the_watchdog_stops_a_running_duckdb_statement() -> None:
    conn = duckdb.connect()
    deadline = Deadline("items", 0.2, conn)
    started = threading.Event()
    with deadline, pytest.raises(duckdb.InterruptException) as caught:
        started.set()
        conn.execute("SELECT count(*) FROM range(100000000000) a")
    assert deadline.expired
    translated = deadline.translate(caught.value)
    assert isinstance(translated, StepTimeout) and isinstance(translated, TransientError)
    assert translated.fields == {"object": "items", "timeout_s": 0.2}
    assert conn.execute("SELECT 1").fetchall() == [(1,)]  # the connection goes on


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("retry: 0", "retry.attempts: must be at least 1"),
        ("retry: {attempts: 2, backoff: soon}", "expected a duration"),
        ("retry: {tries: 2}", "tries"),
        ("timeout: 0s", "above zero"),
        ("timeout: 10", "string"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, setting: str, says: str) -> None:
    root = project(tmp_path, obj=f"    {setting}\n")
    with pytest.raises(ProjectErrors) as caught:
        load_project(root)
    text = str(caught.value)
    assert says in text and "items" in text and "penstock.yml" in text
