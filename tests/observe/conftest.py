"""Fixtures of the observe tests: stores on both backends (`pg_url` is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from penstock.observe import MetadataStore


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("meta") / "nested" / "metadata.db"
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    with MetadataStore(store_url) as s:
        yield s
