"""Fixtures shared by the pipeline and CLI tests: throwaway projects and warehouse queries."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from penstock.cli.app import main
from penstock.demo import create_demo_project
from penstock.demo.expectations import DemoExpectations


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run the penstock CLI in-process: returns (exit code, stdout, stderr)."""

    def run(*args: str | Path) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoExpectations]:
    """The demo project, generated once per session (copy it before running)."""
    root = tmp_path_factory.mktemp("demo-template") / "demo"
    expected = create_demo_project(root)
    return root, expected


@pytest.fixture
def demo(
    demo_template: tuple[Path, DemoExpectations], tmp_path: Path
) -> Iterator[tuple[Path, DemoExpectations]]:
    """A fresh copy of the demo project, not yet run."""
    source, expected = demo_template
    target = tmp_path / "demo"
    shutil.copytree(source, target)
    yield target, expected
