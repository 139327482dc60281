"""Helpers for the catalog tests: write project files, collect loader errors."""

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from penstock.catalog import load_project
from penstock.errors import ProjectError, ProjectErrors

WriteFiles = Callable[..., Path]


@pytest.fixture(autouse=True)
def _forget_secrets(no_secrets: None) -> None:
    """Every catalog test resolves references: start and end with no registered secrets."""


@pytest.fixture
def write_files(tmp_path: Path) -> WriteFiles:
    """Write `{relative name: text}` (dedented) below a directory, tmp_path by default."""

    def write(files: dict[str, str], root: Path | None = None) -> Path:
        base = root or tmp_path
        for name, text in files.items():
            path = base / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return base

    return write


@pytest.fixture
def load_errors() -> Callable[[Path], list[str]]:
    """Load a project that must fail; return every error line."""

    def collect(path: Path) -> list[str]:
        with pytest.raises(ProjectError) as info:
            load_project(path)
        error = info.value
        if isinstance(error, ProjectErrors):
            return [e.message for e in error.errors]
        return [error.message]

    return collect
