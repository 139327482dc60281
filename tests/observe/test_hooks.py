"""Plugin hooks (`hooks:` in penstock.yml): the project's own code, called with keyword-only
arguments on its own thread. A hook that raises or is slow does not fail or slow the load; a
hook written wrong is a project error before the run starts, naming the file and line."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from penstock import load_project
from penstock.engine import Session
from penstock.errors import ProjectError
from penstock.observe import Event, RunFinished, RunStarted, StepFinished

from helpers import query, write_project

PROJECT = """
name: hooked
sources:
  landing: {{kind: files, path: ./landing, settle: 0s}}
objects:
  items:
    source: landing
    files: "items/*.csv"
    key: [id]
    load: merge
    columns:
      id:  {{type: bigint, required: true}}
      qty: {{type: integer, min: 0}}
hooks:
{hooks}
"""
FILES = {"landing/items/a.csv": "id,qty\n1,1\n2,-2\n", "landing/items/b.csv": "id,qty\n3,3\n"}

AUDIT = '''
import json
from typing import Any


class Audit:
    """Appends what loaded, and how the run ended, to a JSON Lines file."""

    def __init__(self, *, path: str) -> None:
        self.out = open(path, "a")

    def on_batch_loaded(self, *, object: str, source_file: str, rows_loaded: int,
                        rows_quarantined: int, **more: Any) -> None:
        self.out.write(json.dumps({"kind": "batch_loaded", "object": object,
                                   "file": source_file, "loaded": rows_loaded,
                                   "quarantined": rows_quarantined}) + "\\n")

    def on_run_finished(self, *, run_id: str, outcome: str, event: Any, **more: Any) -> None:
        self.out.write(json.dumps({"kind": "run_finished", "run_id": run_id,
                                   "outcome": outcome, "typed": type(event).__name__}) + "\\n")

    def close(self) -> None:
        self.out.write(json.dumps({"kind": "closed"}) + "\\n")
        self.out.close()
'''


def project_with(tmp_path: Path, hooks: str, files: dict[str, str]) -> Path:
    yml = PROJECT.format(hooks=textwrap.indent(textwrap.dedent(hooks).strip(), "  "))
    return write_project(tmp_path, yml, {**FILES, **files})


def test_a_hook_is_called_with_the_events_fields_and_closed(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"  # options are passed as written: an absolute path
    project = project_with(
        tmp_path,
        f"- {{use: 'audit_hook.py:Audit', options: {{path: '{audit}'}}}}",
        {"audit_hook.py": AUDIT},
    )
    with Session(load_project(project)) as session:
        result = session.runner.run()
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    assert lines == [
        {
            "kind": "batch_loaded",
            "object": "items",
            "file": "landing/items/a.csv",
            "loaded": 1,
            "quarantined": 1,
        },
        {
            "kind": "batch_loaded",
            "object": "items",
            "file": "landing/items/b.csv",
            "loaded": 1,
            "quarantined": 0,
        },
        {
            "kind": "run_finished",
            "run_id": result.run_id,
            "outcome": "warning",
            "typed": "RunFinished",
        },
        {"kind": "closed"},
    ]


BROKEN_AND_SLOW = """
import time
from typing import Any


class Broken:
    def on_step_finished(self, **fields: Any) -> None:
        raise RuntimeError("the webhook is unreachable")


class Slow:
    def __init__(self) -> None:
        self.done = []

    def on_step_started(self, *, step: str, **more: Any) -> None:
        time.sleep(0.3)
        self.done.append(step)
"""


def test_a_failing_hook_and_a_slow_hook_neither_fail_nor_slow_the_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = project_with(
        tmp_path,
        """
        - hooks_lib.py:Broken
        - {use: 'hooks_lib.py:Slow', name: slow}
        """,
        {"hooks_lib.py": BROKEN_AND_SLOW},
    )
    seen: list[Event] = []
    with Session(load_project(project)) as session:
        session.bus.subscribe(seen.append)
        result = session.runner.run()
        dropped = session.bus.dropped
    assert result.status == "success"
    assert query(project, "SELECT id, qty FROM items ORDER BY id") == [(1, 1), (3, 3)]
    # the slow hook had 5 steps to sleep 0.3 s on (object, 2 stages, 2 loads); the data path
    # was done well before: it only queued them (the run's end waits for sinks to catch up)
    started = next(e for e in seen if isinstance(e, RunStarted)).at
    data_done = [e for e in seen if isinstance(e, StepFinished)][-1].at
    ended = next(e for e in seen if isinstance(e, RunFinished)).at
    assert (data_done - started).total_seconds() < 1.0, data_done - started
    assert (ended - started).total_seconds() < 1.5
    err = capsys.readouterr().err
    assert "hook hooks_lib.py:Broken could not record StepFinished" in err
    assert "the webhook is unreachable" in err
    assert err.count("hooks_lib.py:Broken") == 1  # said once, counted after
    assert dropped == {"hook hooks_lib.py:Broken": 5}


BAD_HOOKS = {
    "positional.py": "class H:\n    def on_run_started(self, run_id, **more): ...\n",
    "no_kwargs.py": "class H:\n    def on_run_started(self, *, run_id): ...\n",
    "typo.py": "class H:\n    def on_batch_load(self, **more): ...\n",
    "nothing.py": "class H:\n    def run(self, **more): ...\n",
    "raises.py": "class H:\n    def __init__(self):\n        raise ValueError('no token')\n",
}


@pytest.mark.parametrize(
    ("use", "message"),
    [
        (
            "positional.py:H",
            "on_run_started must take keyword-only arguments (put `*,` before run_id)",
        ),
        ("no_kwargs.py:H", "on_run_started must take **kwargs as well"),
        ("typo.py:H", "on_batch_load is not a hook method (hook methods: on_run_started,"),
        ("nothing.py:H", "has none of the hook methods"),
        ("raises.py:H", "cannot build it with options []: ValueError: no token"),
        ("missing.py:H", "hook file missing.py does not exist"),
        ("positional.py:Nope", "positional.py has no attribute 'Nope'"),
        ("no_such_module_x:H", "hook module no_such_module_x cannot be imported"),
    ],
)
def test_a_hook_written_wrong_fails_before_the_run_starts(
    tmp_path: Path,
    use: str,
    message: str,
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    project = project_with(tmp_path, f"- {use}", BAD_HOOKS)
    with pytest.raises(ProjectError) as info:
        Session(load_project(project))
    assert message in str(info.value)
    assert str(info.value).startswith("penstock.yml:15: hooks[0]: ")
    code, out, err = cli("run", "-p", project)
    assert code == 2 and out == ""
    assert err.count("error:") == 1 and message.split("(")[0].strip() in " ".join(err.split())
    assert not (project / "warehouse.duckdb").exists() or query(
        project, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'items'"
    ) == [(0,)]


LIMITED = """
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("seen.txt")


def on_step_started(**fields: Any) -> None:
    with OUT.open("a") as out:
        out.write("step_started\\n")


def on_run_finished(**fields: Any) -> None:
    with OUT.open("a") as out:
        out.write("run_finished\\n")
"""


def test_a_module_may_be_a_hook_limited_to_some_events(tmp_path: Path) -> None:
    """`use: file.py:name` may name a module (here the file itself, through a name it
    binds); `events:` keeps the kinds wanted."""
    hook = LIMITED + "\nimport sys\nhook = sys.modules[__name__]\n"
    project = project_with(
        tmp_path, "- {use: 'limited.py:hook', events: [run_finished]}", {"limited.py": hook}
    )
    with Session(load_project(project)) as session:
        session.runner.run()
    assert (project / "seen.txt").read_text().splitlines() == ["run_finished"]
    yml = (project / "penstock.yml").read_text()
    (project / "penstock.yml").write_text(yml.replace("[run_finished]", "[run_ended]"))
    with pytest.raises(ProjectError, match=r"unknown event kind\(s\) run_ended"):
        Session(load_project(project))
