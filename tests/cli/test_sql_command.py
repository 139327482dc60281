"""`penstock sql`: the metadata store as data, read-only for real. A statement that writes is
refused before it runs; one that gets past the check (a data-modifying WITH) is refused by
the store itself (SQLite: a read-only file and an authorizer; PostgreSQL: a READ ONLY
transaction), and nothing changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import write_project

PROJECT = """
name: asked
metadata: {metadata}
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  items:
    source: landing
    files: "items/*.csv"
    columns:
      id:  {{type: bigint, required: true}}
      qty: {{type: integer, min: 0}}
"""
FILES = {"landing/items/a.csv": "id,qty\n1,1\n2,-2\n"}

CLI = Callable[..., tuple[int, str, str]]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def project(request: pytest.FixtureRequest, tmp_path: Path, cli: CLI) -> Path:
    metadata = "sqlite:///.penstock/metadata.db"
    if request.param == "postgresql":
        metadata = request.getfixturevalue("pg_url")
    root = write_project(tmp_path, PROJECT.format(metadata=metadata), FILES)
    assert cli("run", "-p", root)[0] == 0
    return root


def sql(cli: CLI, project: Path, statement: str, *more: str) -> tuple[int, str, str]:
    return cli("sql", statement, "-p", project, *more)  # type: ignore[no-any-return]


def count_logs(cli: CLI, project: Path) -> int:
    code, out, _ = sql(cli, project, "SELECT count(*) AS n FROM logs", "--json")
    assert code == 0
    return int(json.loads(out)["rows"][0]["n"])


def test_runs_steps_and_logs_can_be_queried(cli: CLI, project: Path) -> None:
    code, out, _ = sql(
        cli,
        project,
        "SELECT r.command, r.status, s.step, s.source_file, s.rows_quarantined "
        "FROM runs r JOIN steps s ON s.run_id = r.run_id WHERE s.step = 'load'",
        "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert result["rows"] == [
        {
            "command": "run",
            "status": "success",
            "step": "load",
            "source_file": "landing/items/a.csv",
            "rows_quarantined": 1,
        }
    ]
    assert [c["name"] for c in result["columns"]][:2] == ["command", "status"]
    assert (result["row_count"], result["truncated"]) == (1, False)
    code, out, _ = sql(cli, project, "SELECT level, message FROM logs ORDER BY id", "--limit", "2")
    assert code == 0 and "2 rows shown, the query returns more" in out


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("DELETE FROM logs", "refused: DELETE is not a read-only statement"),
        ("UPDATE job_runs SET status = 'success'", "refused: UPDATE is not a read-only"),
        ("DROP TABLE logs", "refused: DROP is not a read-only statement"),
        ("SELECT 1; DELETE FROM logs", "give one statement at a time (2 given)"),
        ("ATTACH DATABASE '/tmp/x.db' AS x", "refused: ATTACH is not a read-only statement"),
        ("", "give a SQL statement"),
    ],
)
def test_statements_that_write_are_refused(
    cli: CLI, project: Path, statement: str, message: str
) -> None:
    before = count_logs(cli, project)
    code, out, err = sql(cli, project, statement)
    assert (code, out) == (2, "")
    assert message in err
    assert count_logs(cli, project) == before


def test_a_write_past_the_check_is_refused_by_the_store_itself(cli: CLI, project: Path) -> None:
    before = count_logs(cli, project)
    sqlite = (project / ".penstock" / "metadata.db").exists()
    statement = (
        "WITH old AS (SELECT 1) DELETE FROM logs"  # SQLite's WITH … DELETE
        if sqlite
        else "WITH gone AS (DELETE FROM logs RETURNING 1) SELECT count(*) FROM gone"
    )
    code, _, err = sql(cli, project, statement)
    assert code == 2
    expected = "not authorized" if sqlite else "read-only transaction"
    assert expected in err
    assert count_logs(cli, project) == before


def test_an_unknown_table_lists_the_tables(cli: CLI, project: Path) -> None:
    code, _, err = sql(cli, project, "SELECT * FROM dq_nothing")
    assert code == 2
    assert "dq_nothing" in err and "tables: " in err
    for table in ("job_runs", "logs", "runs", "step_runs", "steps", "metrics", "lineage"):
        assert table in err
    assert "dq_results" in err and "dq_anomalies" in err


def test_a_store_not_yet_created_is_said_so(tmp_path: Path, cli: CLI) -> None:
    root = write_project(tmp_path, PROJECT.format(metadata="sqlite:///.penstock/m.db"), FILES)
    code, _, err = sql(cli, root, "SELECT 1")
    assert code == 2 and "does not exist yet" in err
    assert not (root / ".penstock" / "m.db").exists()
