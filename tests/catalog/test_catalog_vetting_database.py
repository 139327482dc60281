"""Loading a project vets patterns, check expressions and time zones in one scratch DuckDB
database per process (opening one per question cost most of `penstock status`'s own time):
the answers are the same from any thread, and the process exits without noise on stderr."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from penstock.catalog import load_project
from penstock.errors import ProjectErrors

from helpers import write_project

PROJECT = """
name: shop
sources:
  landing: {kind: files, path: ./landing, settle: 0s}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    columns:
      order_id: {type: bigint}
      country: {type: text, pattern: "PATTERN"}
      placed_at: {type: timestamp, timezone: Europe/Paris}
    checks:
      - {name: probe, expression: "EXPRESSION"}
"""


def _project(root: Path, pattern: str, expression: str) -> Path:
    yml = PROJECT.replace("PATTERN", pattern).replace("EXPRESSION", expression)
    return write_project(root, yml, {"landing/.keep": ""})


def _problems(project: Path) -> str:
    try:
        load_project(project)
    except ProjectErrors as exc:
        return exc.message
    return "ok"


def test_loads_from_many_threads_vet_alike(tmp_path: Path) -> None:
    good = _project(tmp_path / "good", "^[A-Z]{2}$", "order_id > 0")
    bad_pattern = _project(tmp_path / "pattern", "[a-", "order_id > 0")
    bad_check = _project(tmp_path / "check", "^[A-Z]{2}$", "order_id + 1")
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(_problems, [good, bad_pattern, bad_check] * 6))
    assert answers[0::3] == ["ok"] * 6
    assert set(answers[1::3]) == {
        "penstock.yml:11: objects.orders.columns.country.pattern: "
        "invalid regular expression: missing ]: [a-"
    }
    (check_problem,) = set(answers[2::3])
    assert "checks[0].expression" in check_problem
    assert "must be a boolean expression" in check_problem


def test_a_process_that_loaded_a_project_exits_quietly(tmp_path: Path) -> None:
    project = _project(tmp_path, "^[A-Z]{2}$", "order_id > 0")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import penstock; print(penstock.load_project({str(project)!r}).name)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "shop\n", "")


@pytest.mark.parametrize("zone", ["Europe/Paris", "Mars/Olympus"])
def test_time_zones_are_still_known_from_duckdb(tmp_path: Path, zone: str) -> None:
    yml = (
        PROJECT.replace("Europe/Paris", zone).replace("PATTERN", "x").replace("EXPRESSION", "true")
    )
    answer = _problems(write_project(tmp_path, yml, {"landing/.keep": ""}))
    assert (answer == "ok") == (zone == "Europe/Paris"), answer


def test_valid_patterns_are_remembered_and_a_bad_one_is_vetted_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run loads the project afresh in a new process: a pattern DuckDB accepted (regular
    expression, strftime format) is kept in .penstock/valid_checks.json and not vetted again
    (opening the scratch database alone cost ~0.02 s a run); a refused one never is."""
    from penstock.catalog import columns, dialect

    asked: list[str] = []
    regex, strftime = columns.regex_problem, dialect.format_problem

    def counting_regex(pattern: str) -> str | None:
        asked.append(pattern)
        return regex(pattern)

    def counting_format(pattern: str, family: dialect.TemporalFamily) -> str | None:
        asked.append(f"{family} {pattern}")
        return strftime(pattern, family)

    monkeypatch.setattr(columns, "regex_problem", counting_regex)
    monkeypatch.setattr(dialect, "format_problem", counting_format)
    yml = PROJECT.replace("PATTERN", "^[A-Z]{2}$").replace("EXPRESSION", "order_id > 0")
    yml = yml.replace("timezone: Europe/Paris}", "format: '%d/%m/%Y %H:%M'}")
    project = write_project(tmp_path, yml, {"landing/.keep": ""})
    loaded = load_project(project)
    assert loaded.objects["orders"].columns["placed_at"].format == ("%d/%m/%Y %H:%M",)
    assert sorted(asked) == ["^[A-Z]{2}$", "timestamp %d/%m/%Y %H:%M"]
    asked.clear()
    load_project(project)
    assert asked == []  # remembered

    (project / "penstock.yml").write_text(yml.replace("^[A-Z]{2}$", "[a-"))
    for _ in range(2):
        asked.clear()
        with pytest.raises(ProjectErrors, match="invalid regular expression: missing ]"):
            load_project(project)
        assert asked == ["[a-"]  # a refused pattern is asked afresh each time
    (project / "penstock.yml").write_text(yml.replace("%d/%m/%Y %H:%M", "%d/%m/%Q"))
    with pytest.raises(ProjectErrors, match="invalid strftime pattern"):
        load_project(project)
