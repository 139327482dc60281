"""TLS of the MySQL source, proved against a real TLS server: a MySQL TLS front (tests/
tls_front.py) before the local MariaDB (whose own TLS is off). PyMySQL (the catalog
connection) and connectorx (the rows) both go through TLS and both verify; a failure to
verify or a server without TLS fails fast, on the catalog connection, before connectorx's
pool would retry for half a minute."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import penstock
from penstock.catalog.tls import is_local_host
from penstock.errors import PenstockError, SourceError
from penstock.sources.database import DatabaseSourceReader
from tls_front import DemoCa, FrontProcess, mysql_tls_front

from db_sources import MYSQL_HOST, MYSQL_PORT, mysql_admin
from helpers import query

pytestmark = pytest.mark.services

PLAIN = (MYSQL_HOST, MYSQL_PORT)
ROWS = [(1, "placed"), (2, "paid"), (3, "é")]


@pytest.fixture(scope="module")
def table() -> Iterator[str]:
    """A table of three rows in the `test` database."""
    admin = mysql_admin()
    name = f"tls_orders_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE TABLE test.{name} (id bigint PRIMARY KEY, status varchar(20))")
        cur.execute(f"INSERT INTO test.{name} VALUES (1, 'placed'), (2, 'paid'), (3, 'é')")
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS test.{name}")
        admin.close()


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoCa, DemoCa]:
    directory = tmp_path_factory.mktemp("mytls")
    return DemoCa(directory, "good"), DemoCa(directory, "other")


@pytest.fixture(scope="module")
def front(cas: tuple[DemoCa, DemoCa]) -> Iterator[FrontProcess]:
    with mysql_tls_front(cas[0].leaf("127.0.0.1"), PLAIN) as running:
        yield running


@pytest.fixture(scope="module")
def wrong_name_front(cas: tuple[DemoCa, DemoCa]) -> Iterator[FrontProcess]:
    with mysql_tls_front(cas[0].leaf("other.example"), PLAIN) as running:
        yield running


def project(root: Path, table: str, url: str, tls: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "penstock.yml").write_text(
        "name: tlsdb\n"
        "sources:\n"
        "  shop_db:\n"
        "    kind: mysql\n"
        f'    url: "{url}"\n' + (f"    tls: {tls}\n" if tls else "") + "objects:\n"
        "  orders:\n"
        "    source: shop_db\n"
        f"    table: {table}\n"
        "    key: [id]\n"
        "    columns: {id: {type: bigint}, status: {type: text}}\n"
    )
    return root


def run_rows(root: Path) -> list[tuple[object, ...]]:
    result = penstock.run(root)
    assert result.status == "success", [o.error for o in result.outcomes if o.error]
    return sorted(query(root, "SELECT id, status FROM orders"))


def connect_error(root: Path) -> str:
    loaded = penstock.load_project(root)
    reader = DatabaseSourceReader(loaded, "shop_db", loaded.sources["shop_db"])  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(SourceError) as caught:
        reader.connect().close()
    assert time.monotonic() - started < 5  # fails fast, on the catalog connection
    assert "\n" not in caught.value.message
    return caught.value.message


def test_verify_with_the_right_ca_reads_the_table_exactly_through_tls(
    table: str, front: FrontProcess, cas: tuple[DemoCa, DemoCa], tmp_path: Path
) -> None:
    before = front.handshakes
    url = f"mysql://root@127.0.0.1:{front.port}/test"
    assert run_rows(project(tmp_path, table, url, f"{{ca_file: {cas[0].pem}}}")) == ROWS
    # the catalog connection (PyMySQL) and the rows (connectorx) both came through TLS
    assert front.handshakes >= before + 2


def test_verify_with_another_ca_or_host_name_fails_fast_and_require_connects(
    table: str,
    front: FrontProcess,
    wrong_name_front: FrontProcess,
    cas: tuple[DemoCa, DemoCa],
    tmp_path: Path,
) -> None:
    url = f"mysql://root@127.0.0.1:{front.port}/test"
    line = connect_error(project(tmp_path / "ca", table, url, f"{{ca_file: {cas[1].pem}}}"))
    assert line.startswith(
        f"source 'shop_db': cannot verify the TLS certificate of mysql://127.0.0.1:{front.port}/test"
    )
    assert "certificate verify failed" in line
    result = penstock.run(tmp_path / "ca")
    assert result.status != "success"
    with pytest.raises(Exception, match="orders"):
        query(tmp_path / "ca", "SELECT count(*) FROM orders")

    url = f"mysql://root@127.0.0.1:{wrong_name_front.port}/test"
    line = connect_error(project(tmp_path / "host", table, url, f"{{ca_file: {cas[0].pem}}}"))
    assert "certificate verify failed" in line and "mismatch" in line
    before = wrong_name_front.handshakes
    assert run_rows(project(tmp_path / "req", table, url, "{mode: require}")) == ROWS
    assert wrong_name_front.handshakes >= before + 2


def test_loopback_prefers_tls_when_offered(table: str, front: FrontProcess, tmp_path: Path) -> None:
    before = front.handshakes
    assert run_rows(project(tmp_path, table, f"mysql://root@127.0.0.1:{front.port}/test")) == ROWS
    assert front.handshakes >= before + 2  # connectorx asked for TLS as PyMySQL found it


def test_the_plain_server(table: str, tmp_path: Path) -> None:
    url = f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/test"
    line = connect_error(project(tmp_path / "r", table, url, "{mode: require}"))
    assert line == (
        f"source 'shop_db': mysql://{MYSQL_HOST}:{MYSQL_PORT}/test does not offer TLS, "
        "required by tls mode require; to connect without TLS, set tls: {mode: disable} on "
        "source 'shop_db'"
    )
    # the url's own ssl-mode is kept (and read by the catalog connection as well)
    assert "does not offer TLS" in connect_error(
        project(tmp_path / "u", table, url + "?ssl-mode=REQUIRED")
    )
    for n, tls in enumerate(("{mode: disable}", "{mode: prefer}", None)):
        assert run_rows(project(tmp_path / str(n), table, url, tls)) == ROWS


def test_mysql_tls_settings_that_cannot_hold_are_load_errors(table: str, tmp_path: Path) -> None:
    url = f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/test"
    cases = {
        "?ssl-mode=REQUIRED&ssl-ca=ca.pem": (
            "{mode: require}",
            "url carries its own TLS parameters (ssl-mode, ssl-ca) and tls: is set",
        ),
        "": ("{client_cert: me.pem}", "a mysql source cannot present a client certificate"),
    }
    for n, (suffix, (tls, message)) in enumerate(cases.items()):
        with pytest.raises(PenstockError, match=message.replace("(", r"\(").replace(")", r"\)")):
            penstock.load_project(project(tmp_path / str(n), table, url + suffix, tls))


def loopback_alias() -> str | None:
    """A name in /etc/hosts for 127.0.0.1 that penstock's rule does not count as loopback."""
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if fields and fields[0] == "127.0.0.1":
            for name in fields[1:]:
                if not is_local_host(name):
                    return name
    return None


def test_a_remote_host_is_verified_by_default_by_both_drivers(
    table: str,
    cas: tuple[DemoCa, DemoCa],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alias = loopback_alias()
    if alias is None:
        pytest.skip("no name for 127.0.0.1 in /etc/hosts other than localhost")
    with mysql_tls_front(cas[0].leaf(alias), PLAIN) as aliased:
        root = project(tmp_path, table, f"mysql://root@{alias}:{aliased.port}/test")  # no tls:
        line = connect_error(root)
        assert "certificate verify failed" in line and "the system CA store" in line
        # the test CA as the system store: PyMySQL and connectorx both verify and read
        monkeypatch.setenv("SSL_CERT_FILE", str(cas[0].pem))
        assert run_rows(root) == ROWS
        assert aliased.handshakes >= 2
