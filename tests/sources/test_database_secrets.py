"""A connection failed on purpose (a wrong password, a closed port, an unknown table): one
clear line naming the source, and the password nowhere: not in the CLI's output, the logs and
steps of the metadata store, the lake, the warehouse or the lineage file."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from db_sources import db_project, mysql_admin, source_db

pytestmark = pytest.mark.services

OBJECT = """
orders:
  source: shop_db
  table: {table}
  key: [id]
  columns:
    id: {{type: bigint}}
"""


@pytest.fixture
def mysql_user(mysql_url: str) -> Iterator[tuple[str, str, str]]:
    """(user, password, database): a MariaDB user with a password, on the test database."""
    user, password = f"pst_{uuid.uuid4().hex[:8]}", f"Right-{uuid.uuid4().hex}"
    database = mysql_url.rsplit("/", 1)[1]
    admin = mysql_admin()
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
            cur.execute(f"GRANT ALL ON `{database}`.* TO '{user}'@'%'")
            cur.execute(f"CREATE TABLE `{database}`.orders (id bigint PRIMARY KEY)")
        yield user, password, database
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()


def everything_written(project: Path) -> bytes:
    """Every byte penstock wrote under the project: store, lake, warehouse, lineage."""
    return b"".join(p.read_bytes() for p in sorted(project.rglob("*")) if p.is_file())


def fail_run(
    cli: Callable[..., tuple[int, str, str]],
    project: Path,
    secret: str,
) -> str:
    code, out, err = cli("run", "-p", project)
    assert code == 1
    assert secret not in out + err
    assert secret.encode() not in everything_written(project)
    code, logs, _ = cli("logs", "-p", project, "--level", "error", "--json")
    assert code == 0 and secret not in logs
    (error,) = [e["message"] for e in json.loads(logs)["logs"] if e["object"] == "orders"]
    assert "\n" not in error
    assert " ".join(error.split()) in " ".join((out + err).split())  # the CLI says it too
    return str(error)


def project_with(tmp_path: Path, url: str, table: str = "orders") -> Path:
    kind = "postgres" if url.startswith("postgresql") else "mysql"
    return db_project(tmp_path / "p", source_db(kind, url), OBJECT.format(table=table))


@pytest.mark.usefixtures("no_secrets")
def test_wrong_password(
    mysql_user: tuple[str, str, str],
    cli: Callable[..., tuple[int, str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user, _, database = mysql_user
    wrong = f"Wrong-{uuid.uuid4().hex}"
    monkeypatch.setenv("SHOP_DB_PASSWORD", wrong)
    url = f"mysql://{user}:${{env:SHOP_DB_PASSWORD}}@127.0.0.1:3306/{database}"
    line = fail_run(cli, project_with(tmp_path, url), wrong)
    assert "source 'shop_db': cannot connect to mysql://127.0.0.1:3306/" in line
    assert "Access denied" in line


@pytest.mark.usefixtures("no_secrets")
def test_unknown_table(
    mysql_user: tuple[str, str, str],
    cli: Callable[..., tuple[int, str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user, password, database = mysql_user
    monkeypatch.setenv("SHOP_DB_URL", f"mysql://{user}:{password}@127.0.0.1:3306/{database}")
    line = fail_run(cli, project_with(tmp_path, "${env:SHOP_DB_URL}", "no_such_table"), password)
    assert "source 'shop_db': cannot read shop_db:no_such_table" in line
    assert "doesn't exist" in line


@pytest.mark.usefixtures("no_secrets")
def test_unreachable_port(
    pg_url: str,
    cli: Callable[..., tuple[int, str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = f"Pg-{uuid.uuid4().hex}"
    monkeypatch.setenv("SHOP_DB_PASSWORD", secret)
    url = "postgresql://postgres:${env:SHOP_DB_PASSWORD}@127.0.0.1:1/test"
    line = fail_run(cli, project_with(tmp_path, url), secret)
    assert "source 'shop_db': cannot connect to postgresql://127.0.0.1:1/test" in line
    assert "Connection refused" in line


def test_a_password_in_clear_is_refused(
    cli: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    project = project_with(tmp_path, "postgresql://etl:hunter2-in-clear@127.0.0.1/shop")
    code, out, err = cli("run", "-p", project)
    assert code == 2
    assert "holds a password in clear: give it by reference" in out + err
    assert "hunter2-in-clear" not in out + err
