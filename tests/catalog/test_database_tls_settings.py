"""How `tls:` and a URL's own TLS parameters become each driver's settings (no server needed:
the servers' side is proved in tests/sources/test_database_tls*.py)."""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import urlencode

import pytest
import trustme

from penstock.catalog.database import DatabaseSource
from penstock.catalog.tls import Tls, TlsPlan, is_local_host, plan_tls, url_hosts
from penstock.errors import SourceError
from penstock.sources.db_tls import mysql_tls, postgres_tls_url

ROOT = Path("/project")


def test_loopback_and_sockets_prefer_and_every_other_host_verifies() -> None:
    local = ["", "localhost", "LOCALHOST", "127.0.0.1", "127.8.9.1", "::1", "[::1]", "/run/pg"]
    remote = ["db.example.com", "localhost.", "10.0.0.5", "vm", "::2", "127.example"]
    assert [h for h in local if not is_local_host(h)] == []
    assert [h for h in remote if is_local_host(h)] == []
    cases = {
        "postgresql://u@localhost/db": "prefer",
        "postgresql://u@[::1]:5432/db": "prefer",
        "postgresql:///db": "prefer",  # libpq's default: a Unix socket
        "postgresql:///db?host=%2Fvar%2Frun%2Fpostgresql": "prefer",
        "postgresql://u@db.example.com/db": "verify",
        "postgresql://u@db.example.com/db?host=/tmp": "prefer",  # host= wins, as for libpq
        "postgresql://u@127.0.0.1:5432,db.example.com:5432/db": "verify",  # any remote host
        "postgresql://u@localhost/db?hostaddr=10.0.0.5": "verify",  # where libpq connects
        "postgresql://u@db.example.com/db?hostaddr=127.0.0.1": "verify",  # the name verified
        "mysql://root@127.0.0.1:3306/db": "prefer",
        "mysql://root@db.example.com/db": "verify",
    }
    for url, mode in cases.items():
        kind = "postgres" if url.startswith("postgresql") else "mysql"
        assert plan_tls(kind, url, None, ROOT) == TlsPlan(mode, default=True), url
    assert url_hosts("postgres", "postgresql://u:p@h1:1,h2:2/db") == ["h1", "h2"]


def test_a_tls_block_verifies_unless_told_and_paths_are_the_projects() -> None:
    plan = plan_tls("postgres", "postgresql://u@localhost/db", Tls(ca_file="certs/ca.pem"), ROOT)
    assert plan == TlsPlan("verify", ROOT / "certs/ca.pem")
    assert postgres_tls_url("postgresql://u@h/db?application_name=x", plan) == (
        "postgresql://u@h/db?application_name=x&sslmode=verify-full"
        "&sslrootcert=%2Fproject%2Fcerts%2Fca.pem"
    )
    system = plan_tls("postgres", "postgresql://u@h/db", None, ROOT)
    assert postgres_tls_url("postgresql://u@h/db", system).endswith(
        "?sslmode=verify-full&sslrootcert=system"
    )
    client = TlsPlan("require", client_cert=Path("/c.pem"), client_key=Path("/c.key"))
    assert postgres_tls_url("postgresql://u@h/db", client).endswith(
        "?sslmode=require&sslcert=%2Fc.pem&sslkey=%2Fc.key"
    )
    own = "postgresql://u@h/db?sslmode=require"
    assert postgres_tls_url(own, plan_tls("postgres", own, None, ROOT)) == own  # kept


def test_mysql_modes_for_pymysql_and_connectorx(tmp_path: Path) -> None:
    url = "mysql://root@db.example.com:3306/shop?charset=utf8mb4"
    disable = mysql_tls(url, TlsPlan("disable"))
    assert disable.pymysql == {"ssl_disabled": True} and disable.connectorx_url(True) == url
    prefer = mysql_tls(url, TlsPlan("prefer"))
    assert prefer.pymysql == {}  # PyMySQL's own default is preferred
    assert prefer.connectorx_url(False) == url
    assert prefer.connectorx_url(True) == url + "&ssl-mode=REQUIRED"
    require = mysql_tls(url, TlsPlan("require"))
    assert require.pymysql["ssl"].verify_mode == ssl.CERT_NONE
    assert require.connectorx_url(True) == url + "&ssl-mode=REQUIRED"
    verify = mysql_tls(url, TlsPlan("verify"))  # the system store
    context = verify.pymysql["ssl"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert verify.connectorx_url(True) == url + "&ssl-mode=VERIFY_IDENTITY"
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    with_ca = mysql_tls(url, TlsPlan("verify", ca_file=ca))
    assert with_ca.pymysql["ssl"].get_ca_certs()  # PyMySQL trusts that CA
    assert (
        with_ca.connectorx_url(False)
        == f"{url}&{urlencode({'ssl-mode': 'VERIFY_IDENTITY', 'ssl-ca': ca})}"
    )
    own = mysql_tls(url + "&ssl-mode=VERIFY_CA", TlsPlan("url"))
    assert own.url == url and own.connectorx_url(True) == url + "&ssl-mode=VERIFY_CA"
    assert not own.pymysql["ssl"].check_hostname
    with pytest.raises(SourceError, match="ssl-mode is not one of"):
        mysql_tls(url + "&ssl-mode=sometimes", TlsPlan("url"))


def test_tls_settings_that_contradict_are_refused() -> None:
    bad = {
        "ca_file is used only by mode: verify": {"mode": "require", "ca_file": "ca.pem"},
        "client_key needs client_cert": {"client_key": "k.pem"},
        "client_cert needs TLS": {"mode": "disable", "client_cert": "c.pem"},
        "Input should be 'disable', 'prefer', 'require' or 'verify'": {"mode": "verify-full"},
    }
    for message, tls in bad.items():
        with pytest.raises(ValueError, match=message):
            Tls.model_validate(tls)
    with pytest.raises(ValueError, match="failover url 1 carries its own TLS parameters"):
        DatabaseSource(
            kind="postgres",
            url="postgresql://u@h/db",
            failover=("postgresql://u@r/db?sslrootcert=ca.pem",),
            tls=Tls(),
        )
