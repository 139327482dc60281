"""The command line: exit codes, one-line errors, `--json` on every read command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from penstock.demo.expectations import DemoExpectations

from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]


def test_init_demo_then_run_prints_the_summary_and_next_commands(tmp_path: Path, cli: Cli) -> None:
    project = tmp_path / "shop"
    code, out, _ = cli("init", project, "--demo")
    assert code == 0 and (project / "penstock.yml").is_file()
    code, out, _ = cli("run", "-p", project)
    assert code == 0
    assert "Run summary" in out and "DQ pass rate" in out
    assert "orders" in out and "15,000" in out
    assert "penstock status" in out and "penstock quarantine orders" in out
    # init refuses to overwrite a project
    code, _, err = cli("init", project, "--demo")
    assert code == 2 and "penstock.yml" in err


def test_plain_init_creates_a_valid_runnable_project(tmp_path: Path, cli: Cli) -> None:
    project = tmp_path / "fresh"
    assert cli("init", project)[0] == 0
    code, out, _ = cli("check", "-p", project)
    assert code == 0 and "error" not in out
    (project / "landing" / "events" / "a.csv").write_text(
        "event_id,occurred_at\n1,2024-01-01 00:00:00\n"
    )
    assert cli("run", "-p", project)[0] == 0


def test_read_commands_emit_json(demo: tuple[Path, DemoExpectations], cli: Cli) -> None:
    project, expected = demo
    code, out, _ = cli("run", "-p", project, "--json")
    assert code == 0
    run = json.loads(out)
    orders = next(o for o in run["objects"] if o["object"] == "orders")
    assert orders["rows_in"] == 15_000 and orders["batches"] == 3
    assert orders["rows_in"] == (
        orders["rows_loaded"] + orders["rows_quarantined"] + orders["rows_duplicate"]
    )

    code, out, _ = cli("status", "-p", project, "--json")
    status = {row["object"]: row for row in json.loads(out)["objects"]}
    assert status["orders"]["rows"] == expected.orders_rows
    assert status["orders"]["batches_loaded"] == 3
    assert status["customers"]["rows"] == expected.customers_versions
    assert status["orders"]["last_status"] == "warning"  # rows were quarantined
    assert status["orders"]["last_batch_at"] is not None

    code, out, _ = cli("runs", "-p", project, "--json")
    runs = json.loads(out)
    assert len(runs) == 1 and runs[0]["status"] == "warning"  # as status says of its objects
    assert runs[0]["rows_in"] == 17_000

    code, out, _ = cli("quarantine", "orders", "-p", project, "--json", "--limit", "0")
    quarantined = json.loads(out)
    assert (
        quarantined["total"]
        == len(quarantined["rows"])
        == sum(len(f.quarantined) for f in expected.files.values() if f.object == "orders")
    )
    first = quarantined["rows"][0]
    assert first["_reasons"] and first["_source_file"].startswith("landing/orders/")

    code, out, _ = cli("check", "-p", project, "--json")
    assert code == 0 and json.loads(out)["ok"] is True


def test_rebuild_command(demo: tuple[Path, DemoExpectations], cli: Cli) -> None:
    project, _ = demo
    assert cli("run", "-p", project)[0] == 0
    code, out, _ = cli("rebuild", "-p", project, "--json")
    assert code == 0
    assert sum(o["batches"] for o in json.loads(out)["objects"]) == 5


def test_a_failed_run_exits_1_with_one_line(tmp_path: Path, cli: Cli) -> None:
    project = write_project(
        tmp_path,
        """
        name: failing
        sources: {landing: {kind: files, path: ./landing, settle: 0s}}
        objects:
          t:
            source: landing
            files: "*.csv"
            on_invalid: fail
            columns: {a: {type: integer}}
        """,
        {"landing/x.csv": "a\nnope\n"},
    )
    code, _, err = cli("run", "-p", project)
    assert code == 1
    assert "breaks its contract" in err and "Traceback" not in err
    code, _, err = cli("--debug", "run", "-p", project)
    assert code == 1 and "error:" in err


def test_bad_project_and_usage_exit_2(tmp_path: Path, cli: Cli) -> None:
    project = write_project(
        tmp_path,
        """
        name: bad
        sources: {landing: {kind: files, path: ./landing, settle: 0s}}
        objects:
          t:
            source: landing
            files: "*.csv"
            columns: {a: {type: integr}}
        """,
    )
    code, _, err = cli("run", "-p", project)
    assert code == 2
    assert "penstock.yml:8: objects.t.columns.a.type: unknown type 'integr'" in err
    code, out, _ = cli("check", "-p", project)
    assert code == 2 and "unknown type 'integr'" in out
    code, _, err = cli("quarantine", "nope", "-p", project.parent / "missing")
    assert code == 2
    code, _, err = cli("run", "--no-such-option")
    assert code == 2


def test_check_reports_an_expression_that_does_not_compile(tmp_path: Path, cli: Cli) -> None:
    project = write_project(
        tmp_path,
        """
        name: checks
        sources: {landing: {kind: files, path: ./landing, settle: 0s}}
        objects:
          t:
            source: landing
            files: "*.csv"
            columns: {a: {type: integer}}
            checks:
              - {name: bad, expression: "no_such_column > 1"}
        """,
        {"landing/.keep": ""},
    )
    code, out, _ = cli("check", "-p", project, "--json")
    report = json.loads(out)
    assert code == 2 and report["ok"] is False
    (bad,) = [c for c in report["checks"] if not c["ok"]]
    # the project loader vets check expressions now, so it names the file and line
    assert bad["what"] == "project"
    assert bad["detail"] == (
        "penstock.yml:10: objects.t.checks[0].expression: check 'bad': "
        "unknown column 'no_such_column' (the object's columns: a)"
    )


def test_unknown_object_for_quarantine(demo: tuple[Path, DemoExpectations], cli: Cli) -> None:
    project, _ = demo
    code, _, err = cli("quarantine", "nope", "-p", project)
    assert code == 2 and "unknown object 'nope' (objects: customers, orders)" in err


@pytest.mark.usefixtures("no_secrets")
def test_secrets_never_reach_the_terminal(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PENSTOCK_TEST_SECRET", "s3cr3t-value")
    project = write_project(
        tmp_path,
        """
        name: secret
        warehouse: "mysql://user:${env:PENSTOCK_TEST_SECRET}@host/db"
        sources: {landing: {kind: files, path: ./landing, settle: 0s}}
        objects:
          t: {source: landing, files: "*.csv", columns: {a: {type: integer}}}
        """,
    )
    code, out, err = cli("run", "-p", project)
    assert code == 2
    assert "s3cr3t-value" not in out + err
    assert "warehouse engine 'mysql' is not available" in err


@pytest.mark.usefixtures("no_secrets")
def test_check_never_prints_a_secret_from_the_warehouse_url(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PENSTOCK_TEST_TOKEN", "tok-123456")
    project = write_project(
        tmp_path,
        """
        name: secret_ok
        warehouse: "duckdb:///w.duckdb?custom_user_agent=${env:PENSTOCK_TEST_TOKEN}"
        sources: {landing: {kind: files, path: ./landing, settle: 0s}}
        objects:
          t: {source: landing, files: "*.csv", columns: {a: {type: integer}}}
        """,
        {"landing/.keep": ""},
    )
    code, out, err = cli("check", "-p", project, "--json")
    assert code == 0, out
    assert "tok-123456" not in out + err
    assert "custom_user_agent=***" in out


def test_status_answers_while_another_process_holds_the_warehouse(
    demo: tuple[Path, DemoExpectations], cli: Cli
) -> None:
    project, expected = demo
    code, out, _ = cli("status", "-p", project, "--json")
    assert code == 0
    before = json.loads(out)
    assert before["notes"] == ["the warehouse does not exist yet: `penstock run` creates it"]
    assert {o["rows"] for o in before["objects"]} == {None}
    assert cli("run", "-p", project)[0] == 0

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', "
            "flush=True); time.sleep(60)",
            str(project / "warehouse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        code, out, _ = cli("status", "-p", project, "--json")
    finally:
        holder.kill()
        holder.communicate()
    assert code == 0
    busy = json.loads(out)
    assert busy["objects"][0]["last_status"] == "warning"  # from the metadata store
    # the figures are those the run counted as it ended: status does not open the warehouse
    assert busy["objects"][0]["rows"] == expected.orders_rows
    assert busy["notes"] == []


def test_logs_show_a_runs_warnings(demo: tuple[Path, DemoExpectations], cli: Cli) -> None:
    project, _ = demo
    code, _, err = cli("logs", "-p", project)
    assert code == 2 and "no runs yet" in err
    code, _, err = cli("run", "-p", project)
    assert code == 0
    assert "warning(s) and errors in the log: penstock logs --level warning" in err
    code, out, _ = cli("logs", "-p", project, "--level", "warning", "--json")
    assert code == 0
    payload = json.loads(out)
    messages = [r["message"] for r in payload["logs"]]
    assert len(messages) == 5  # every drop quarantined rows
    assert all("broke the contract (quarantined)" in m for m in messages)
    reasons = payload["logs"][0]["fields"]["reasons"]
    assert reasons["malformed"] >= 1
    code, out, _ = cli("logs", payload["run_id"][:8], "-p", project)
    assert code == 0 and "staged landing/orders/drop_001.csv" in " ".join(out.split())
    code, _, err = cli("logs", "zzzz", "-p", project)
    assert code == 2 and "no run has an id starting with 'zzzz'" in err


def test_quarantine_before_any_run_is_empty(demo: tuple[Path, DemoExpectations], cli: Cli) -> None:
    project, _ = demo
    code, out, _ = cli("quarantine", "orders", "-p", project, "--json")
    assert code == 0
    assert json.loads(out) == {"object": "orders", "total": 0, "superseded": 0, "rows": []}
