"""Fixtures shared by the pipeline and CLI tests: throwaway projects and warehouse queries."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from penstock.cli.app import main
from penstock.defaults import WORKERS_ENV
from penstock.demo import create_demo_project
from penstock.demo.expectations import DemoExpectations
from penstock.secrets import clear_secrets

from db_sources import MYSQL_HOST, MYSQL_PORT, mysql_admin
from pg_projects import PgWarehouse

# Runs work on one object at a time unless a test asks for workers (`workers=N`,
# `--workers N`): tests that read steps or logs in the plan's order stay deterministic, and
# the parallel executor has its own tests (tests/pipeline/test_parallel_run.py).
os.environ.setdefault(WORKERS_ENV, "1")


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


@pytest.fixture
def no_secrets() -> Iterator[None]:
    """Forget every registered secret before and after the test."""
    clear_secrets()
    yield
    clear_secrets()


@pytest.fixture
def pg_warehouse() -> Iterator[PgWarehouse]:
    """A warehouse URL in the shared `test` database with a schema of the test's own (a
    uuid); its schemas are dropped afterwards."""
    admin, user = _maintenance()
    admin.close()
    conninfo = f"postgresql://{user}@{PG_HOST}:{PG_PORT}/test"
    schema = f"pw_{uuid.uuid4().hex[:12]}"
    warehouse = PgWarehouse(
        f"{conninfo}?schema={schema}",
        conninfo,
        schema,
        f"{schema}_penstock",
        f"{schema}_quarantine",
    )
    try:
        yield warehouse
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for name in (warehouse.schema, warehouse.ledger, warehouse.quarantine):
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """URL of a fresh, empty MariaDB/MySQL database, dropped after the test."""
    admin = mysql_admin()
    name = f"penstock_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
