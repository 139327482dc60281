"""`failover:` on a database source (issue 9, part 5): read replicas tried in order when the
primary cannot be reached. The primary here is a closed port on loopback; the failover is the
real server. The run loads the window from the failover, says which server served it (a
warning in the log and in the batch's manifest), and an unreachable set of servers, or a
terminal error on the primary, fails with one line naming them, never the password."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import penstock
from penstock.lake import Lake

from db_sources import ORDERS, SourceDb, create_orders, source_rows, table_rows

pytestmark = pytest.mark.services

Cli = Callable[..., tuple[int, str, str]]


def closed(url: str) -> str:
    """`url` with its host and port swapped for a closed port on loopback."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    user = f"{netloc[0]}@" if len(netloc) == 2 else ""
    return parts._replace(netloc=f"{user}127.0.0.1:1").geturl()


def project(root: Path, db: SourceDb, primary: str, failover: list[str]) -> Path:
    root.mkdir(parents=True)
    servers = ", ".join(f'"{u}"' for u in failover)
    body = "\n".join(f"  {line}" for line in ORDERS.strip("\n").splitlines())
    (root / "penstock.yml").write_text(
        "name: failover\n"
        "sources:\n"
        f'  shop_db: {{kind: {db.kind}, url: "{primary}", failover: [{servers}]}}\n'
        f"objects:\n{body}\n"
    )
    return root


def logs(cli: Cli, root: Path, level: str) -> list[dict[str, object]]:
    code, out, _ = cli("logs", "-p", root, "--level", level, "--json")
    assert code == 0
    return list(json.loads(out)["logs"])


def fields(entry: dict[str, object]) -> dict[str, object]:
    found = entry.get("fields") or {}
    assert isinstance(found, dict)
    return found


def test_an_unreachable_primary_fails_over_and_says_which_server_served(
    db: SourceDb, tmp_path: Path, cli: Cli
) -> None:
    create_orders(db, 20)
    down = closed(db.url)
    root = project(tmp_path / "p", db, down, [closed(db.url), db.url])
    result = penstock.run(root)
    assert result.status == "success", [o.error for o in result.outcomes if o.error]
    assert table_rows(root) == source_rows(db)
    assert len(table_rows(root)) == 20

    shown = f"{urlsplit(db.url).scheme}://127.0.0.1:{urlsplit(db.url).port or ''}"
    (warning,) = [e for e in logs(cli, root, "warning") if fields(e).get("event") == "failover"]
    message = str(warning["message"])
    assert "read from failover server 2 (" in message and shown.rstrip(":") in message
    # why each server before it was passed over, each named without credentials
    assert message.count("cannot connect to") == 2 and ":1/" in message
    (batch,) = Lake(root / "lake").batches("orders")
    assert len(batch.manifest.warnings) == 1
    assert "read from failover server 2" in batch.manifest.warnings[0]
    # the next run fails over again and changes nothing
    again = penstock.run(root)
    assert again.status == "success"
    assert table_rows(root) == source_rows(db)


@pytest.mark.usefixtures("no_secrets")
def test_no_server_answers_names_each_and_never_the_password(
    pg_url: str, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"Pg-{uuid.uuid4().hex}"
    monkeypatch.setenv("SHOP_DB_PASSWORD", secret)
    down = "postgresql://postgres:${env:SHOP_DB_PASSWORD}@127.0.0.1:1/test"
    also_down = "postgresql://postgres:${env:SHOP_DB_PASSWORD}@127.0.0.1:2/test"
    db = SourceDb("postgres", pg_url, "timestamp(6)")
    root = project(tmp_path / "p", db, down, [also_down])
    code, out, err = cli("run", "-p", root)
    assert code == 1
    assert secret not in out + err
    (line,) = [str(e["message"]) for e in logs(cli, root, "error") if e["object"] == "orders"]
    assert "source 'shop_db': no server answers" in line
    assert "postgresql://127.0.0.1:1/test" in line and "postgresql://127.0.0.1:2/test" in line
    assert secret not in line
    written = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
    assert secret.encode() not in written


def test_a_terminal_error_on_the_primary_does_not_fail_over(
    pg_url: str, tmp_path: Path, cli: Cli
) -> None:
    """An unknown database is the primary's answer, not its absence: the run fails at once
    instead of reading a replica that may not be the same database."""
    db = SourceDb("postgres", pg_url, "timestamp(6)")
    create_orders(db, 5)
    unknown = pg_url.rsplit("/", 1)[0] + f"/no_such_db_{uuid.uuid4().hex[:6]}"
    root = project(tmp_path / "p", db, unknown, [pg_url])
    result = penstock.run(root)
    assert result.status == "failed"
    (error,) = [o.error for o in result.outcomes if o.error]
    assert error is not None and "does not exist" in error and "no_such_db_" in error
    assert not any(fields(e).get("event") == "failover" for e in logs(cli, root, "warning"))


def test_a_failover_url_is_vetted_as_the_url_is(tmp_path: Path, cli: Cli) -> None:
    db = SourceDb("postgres", "postgresql://postgres@127.0.0.1/test", "timestamp(6)")
    root = project(tmp_path / "p", db, db.url, ["mysql://root@127.0.0.1/test"])
    code, out, err = cli("run", "-p", root)
    assert code == 2
    assert "failover url 1: a postgres source needs a postgresql:// url, not mysql://" in out + err
    clear = tmp_path / "q"
    project(clear, db, db.url, ["postgresql://etl:hunter2-clear@127.0.0.1/test"])
    code, out, err = cli("run", "-p", clear)
    assert code == 2
    assert "failover url 1: the url holds a password in clear" in out + err
    assert "hunter2-clear" not in out + err
