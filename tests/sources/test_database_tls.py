"""TLS of the PostgreSQL source, proved against a real TLS server: a TLS front (tests/
tls_front.py) with certificates of a test CA, before the local PostgreSQL (whose own TLS is
off). Verification is on by default for a host that is not loopback; a wrong CA or a
certificate for another host name loads nothing; the plain server is refused with a line
that says how to opt out; no password shows in any error."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

import penstock
from penstock.errors import PenstockError, SourceError
from penstock.sources.database import DatabaseSourceReader
from tls_front import DemoCa, PgTlsFront, pg_tls_front

from helpers import query

pytestmark = pytest.mark.services

PLAIN = ("127.0.0.1", 5432)
# a host name that is not loopback by penstock's rule; libpq's hostaddr= reaches 127.0.0.1
# with it, and checks the certificate against this name
REMOTE = "db.example.test"


@pytest.fixture(scope="module")
def pg_user() -> Iterator[str]:
    """The local PostgreSQL's user, with a table `tls_orders_<id>` of three rows in `test`."""
    for user in ("postgres", "root"):
        try:
            conn = psycopg.connect(
                host=PLAIN[0], port=PLAIN[1], user=user, dbname="test", autocommit=True
            )
        except psycopg.Error:
            continue
        break
    else:
        import os

        reason = "PostgreSQL not reachable at 127.0.0.1:5432"
        if os.environ.get("PENSTOCK_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    table = f"tls_orders_{uuid.uuid4().hex[:10]}"
    conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, status text)".encode())
    conn.execute(f"INSERT INTO {table} VALUES (1, 'placed'), (2, 'paid'), (3, 'é')".encode())
    try:
        yield f"{user}|{table}"
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {table}".encode())
        conn.close()


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoCa, DemoCa]:
    """(the CA that signs the front's certificates, another CA)."""
    directory = tmp_path_factory.mktemp("tls")
    return DemoCa(directory, "good"), DemoCa(directory, "other")


@pytest.fixture(scope="module")
def front(cas: tuple[DemoCa, DemoCa]) -> Iterator[PgTlsFront]:
    """TLS with a certificate for 127.0.0.1 and REMOTE."""
    with pg_tls_front(cas[0].leaf("127.0.0.1", REMOTE), PLAIN) as running:
        yield running


@pytest.fixture(scope="module")
def wrong_name_front(cas: tuple[DemoCa, DemoCa]) -> Iterator[PgTlsFront]:
    """TLS with a certificate of the right CA for another host name."""
    with pg_tls_front(cas[0].leaf("other.example"), PLAIN) as running:
        yield running


def project(root: Path, pg_user: str, url: str, tls: str | None = None) -> Path:
    user, table = pg_user.split("|")
    root.mkdir(parents=True, exist_ok=True)
    (root / "penstock.yml").write_text(
        "name: tlsdb\n"
        "sources:\n"
        "  shop_db:\n"
        "    kind: postgres\n"
        f'    url: "{url.replace("USER", user)}"\n'
        + (f"    tls: {tls}\n" if tls else "")
        + "objects:\n"
        "  orders:\n"
        "    source: shop_db\n"
        f"    table: {table}\n"
        "    key: [id]\n"
        "    columns: {id: {type: bigint}, status: {type: text}}\n"
    )
    return root


def connect_rows(root: Path) -> list[tuple[object, ...]]:
    """Connect as a run does and read the table."""
    loaded = penstock.load_project(root)
    reader = DatabaseSourceReader(loaded, "shop_db", loaded.sources["shop_db"])  # type: ignore[arg-type]
    conn = reader.connect()
    try:
        return conn.rows("SELECT 42")
    finally:
        conn.close()


def connect_error(root: Path) -> str:
    with pytest.raises(PenstockError) as caught:
        connect_rows(root)
    assert isinstance(caught.value, SourceError)  # not transient: trying again mends nothing
    assert "\n" not in caught.value.message
    return caught.value.message


ROWS = [(1, "placed"), (2, "paid"), (3, "é")]


def test_verify_with_the_right_ca_reads_the_table_exactly(
    pg_user: str, front: PgTlsFront, cas: tuple[DemoCa, DemoCa], tmp_path: Path
) -> None:
    url = f"postgresql://USER@127.0.0.1:{front.port}/test"
    root = project(tmp_path, pg_user, url, f"{{mode: verify, ca_file: {cas[0].pem.name}}}")
    (tmp_path / cas[0].pem.name).write_bytes(cas[0].pem.read_bytes())  # relative to the project
    before = front.handshakes
    result = penstock.run(root)
    assert result.status == "success", [o.error for o in result.outcomes if o.error]
    assert sorted(query(root, "SELECT id, status FROM orders")) == ROWS
    assert front.handshakes > before  # the rows came through TLS


def test_verify_with_another_ca_fails_and_loads_nothing(
    pg_user: str, front: PgTlsFront, cas: tuple[DemoCa, DemoCa], tmp_path: Path
) -> None:
    url = f"postgresql://USER@127.0.0.1:{front.port}/test"
    root = project(tmp_path, pg_user, url, f"{{ca_file: {cas[1].pem}}}")  # mode: verify
    line = connect_error(root)
    assert (
        f"source 'shop_db': cannot verify the TLS certificate of postgresql://127.0.0.1:{front.port}/test"
        in line
    )
    assert "certificate verify failed" in line and "ca_file" in line
    result = penstock.run(root)
    assert result.status != "success"
    assert "certificate verify failed" in str(result.outcomes[0].error)
    with pytest.raises(Exception, match="orders"):
        query(root, "SELECT count(*) FROM orders")


def test_a_certificate_for_another_host_fails_verify_but_require_connects(
    pg_user: str, wrong_name_front: PgTlsFront, cas: tuple[DemoCa, DemoCa], tmp_path: Path
) -> None:
    url = f"postgresql://USER@127.0.0.1:{wrong_name_front.port}/test"
    line = connect_error(project(tmp_path / "v", pg_user, url, f"{{ca_file: {cas[0].pem}}}"))
    assert 'server certificate for "other.example" does not match host name "127.0.0.1"' in line
    before = wrong_name_front.handshakes
    assert connect_rows(project(tmp_path / "r", pg_user, url, "{mode: require}")) == [(42,)]
    assert wrong_name_front.handshakes > before  # (ADBC opens more than one session)


def test_a_remote_host_is_verified_by_default_against_the_system_store(
    pg_user: str,
    front: PgTlsFront,
    cas: tuple[DemoCa, DemoCa],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"postgresql://USER@{REMOTE}:{front.port}/test?hostaddr=127.0.0.1"
    root = project(tmp_path / "d", pg_user, url)  # no tls:
    # the test CA is not in the system store: verification refuses the server
    line = connect_error(root)
    assert "certificate verify failed" in line and "the system CA store" in line
    assert "the default for a host that is not loopback" in line
    # with the test CA as the system store (OpenSSL's SSL_CERT_FILE), the same source connects:
    # the default verifies the chain against the system store and the host name REMOTE
    monkeypatch.setenv("SSL_CERT_FILE", str(cas[0].pem))
    assert connect_rows(root) == [(42,)]


def test_a_remote_server_without_tls_is_refused_with_how_to_opt_out(
    pg_user: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_secrets: None
) -> None:
    secret = f"Pw-{uuid.uuid4().hex}"
    monkeypatch.setenv("SHOP_DB_PASSWORD", secret)
    url = f"postgresql://USER:${{env:SHOP_DB_PASSWORD}}@{REMOTE}:5432/test?hostaddr=127.0.0.1"
    line = connect_error(project(tmp_path / "d", pg_user, url))
    assert line == (
        f"source 'shop_db': postgresql://{REMOTE}:5432/test does not offer TLS, required by "
        "tls mode verify (the default for a host that is not loopback); to connect without "
        "TLS, set tls: {mode: disable} on source 'shop_db'"
    )
    assert connect_rows(project(tmp_path / "o", pg_user, url, "{mode: disable}")) == [(42,)]
    line = connect_error(project(tmp_path / "r", pg_user, url, "{mode: require}"))
    assert "does not offer TLS, required by tls mode require;" in line and secret not in line


def test_disable_and_prefer_on_loopback_reach_the_plain_server(
    pg_user: str, tmp_path: Path
) -> None:
    url = "postgresql://USER@127.0.0.1:5432/test"
    for n, tls in enumerate(("{mode: disable}", "{mode: prefer}", None)):
        assert connect_rows(project(tmp_path / str(n), pg_user, url, tls)) == [(42,)]


def test_prefer_takes_tls_when_offered(pg_user: str, front: PgTlsFront, tmp_path: Path) -> None:
    before = front.handshakes
    url = f"postgresql://USER@127.0.0.1:{front.port}/test"
    assert connect_rows(project(tmp_path, pg_user, url)) == [(42,)]  # loopback: prefer
    assert front.handshakes > before


def test_the_urls_own_tls_parameters_are_kept_or_clash_with_tls(
    pg_user: str,
    front: PgTlsFront,
    cas: tuple[DemoCa, DemoCa],
    tmp_path: Path,
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    url = f"postgresql://USER@127.0.0.1:{front.port}/test?sslmode=verify-full&sslrootcert={cas[0].pem}"
    assert connect_rows(project(tmp_path / "u", pg_user, url)) == [(42,)]
    plain = "postgresql://USER@127.0.0.1:5432/test?sslmode=require"
    assert connect_error(project(tmp_path / "p", pg_user, plain)).endswith(
        "does not offer TLS, required by the url's own TLS parameters; to connect without "
        "TLS, change the url's own TLS parameters on source 'shop_db'"
    )
    root = project(tmp_path / "c", pg_user, url, "{mode: verify}")
    with pytest.raises(PenstockError) as caught:
        penstock.load_project(root)
    assert "url carries its own TLS parameters (sslmode, sslrootcert) and tls: is set" in str(
        caught.value
    )
    code, out, err = cli("plan", "-p", root)
    assert code != 0 and "penstock.yml" in out + err and "tls: is set" in out + err


def test_tls_applies_to_failover_servers(
    pg_user: str, front: PgTlsFront, cas: tuple[DemoCa, DemoCa], tmp_path: Path
) -> None:
    root = project(
        tmp_path,
        pg_user,
        "postgresql://USER@127.0.0.1:1/test",
        f"{{ca_file: {cas[1].pem}}}\n    failover: ['postgresql://USER@127.0.0.1:{front.port}/test']",
    )
    loaded = penstock.load_project(root)
    reader = DatabaseSourceReader(loaded, "shop_db", loaded.sources["shop_db"])  # type: ignore[arg-type]
    with pytest.raises(SourceError, match="certificate verify failed"):
        reader.connect_serving()


def test_no_secret_in_any_tls_error(
    pg_user: str,
    front: PgTlsFront,
    cas: tuple[DemoCa, DemoCa],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., tuple[int, str, str]],
    no_secrets: None,
) -> None:
    secret = f"Pw-{uuid.uuid4().hex}"
    monkeypatch.setenv("SHOP_DB_PASSWORD", secret)
    monkeypatch.setenv("SHOP_CA", str(cas[1].pem))
    url = (
        f"postgresql://USER:${{env:SHOP_DB_PASSWORD}}@{REMOTE}:{front.port}/test?hostaddr=127.0.0.1"
    )
    root = project(tmp_path, pg_user, url, "{ca_file: '${env:SHOP_CA}'}")
    code, out, err = cli("run", "-p", root)
    assert code == 1
    assert (
        f"source 'shop_db': cannot verify the TLS certificate of postgresql://{REMOTE}" in out + err
    )
    code, logs, _ = cli("logs", "-p", root, "--level", "error", "--json")
    assert code == 0 and "certificate verify failed" in logs
    written = b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())
    for shown in (out, err, logs):
        assert secret not in shown
    assert secret.encode() not in written
