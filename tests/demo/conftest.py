"""A demo project generated once per test session (it is read-only for the tests)."""

from pathlib import Path

import pytest

from penstock.demo import DemoExpectations, create_demo_project


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoExpectations]:
    directory = tmp_path_factory.mktemp("demo") / "shop"
    return directory, create_demo_project(directory)
