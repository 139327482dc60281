"""Fixtures of the observe tests: a throw-away PostgreSQL database, and stores on both backends."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from penstock.observe import MetadataStore
from penstock.secrets import clear_secrets

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USERS = ("postgres", "root")


def _maintenance() -> tuple[psycopg.Connection[tuple[object, ...]], str]:
    errors: list[str] = []
    for user in PG_USERS:
        try:
            conn = psycopg.connect(
                host=PG_HOST,
                port=PG_PORT,
                user=user,
                dbname="postgres",
                autocommit=True,
                connect_timeout=5,
            )
        except psycopg.Error as exc:
            errors.append(f"user {user}: {str(exc).strip()}")
            continue
        return conn, user
    reason = f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}: {'; '.join(errors)}"
    if os.environ.get("PENSTOCK_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    admin, user = _maintenance()
    name = f"penstock_test_{uuid.uuid4().hex[:12]}"
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


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


@pytest.fixture
def no_secrets() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()
