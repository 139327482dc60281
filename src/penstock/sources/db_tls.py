"""A database source's TLS (catalog/tls.py) as each driver takes it, and TLS failures as one
clear line.

PostgreSQL: libpq's URL parameters (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`); `verify`
is `sslmode=verify-full` with `sslrootcert` the CA file or `system` (the system's CA store).

MySQL: PyMySQL (the catalog connection, opened first) takes an `ssl.SSLContext`; connectorx
(the rows) takes `ssl-mode` and `ssl-ca` URL parameters (`VERIFY_IDENTITY` checks the chain and
the host name). connectorx cannot present a client certificate, so a mysql source refuses
`client_cert`. Its `PREFERRED` is `REQUIRED` (no fallback to plain), so `prefer` asks for TLS
from connectorx only when the catalog connection, opened first, uses TLS.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from penstock.catalog.tls import TlsPlan
from penstock.errors import PenstockError, SourceError, first_line
from penstock.secrets import redact

_LIBPQ_MODES = {
    "disable": "disable",
    "prefer": "prefer",
    "require": "require",
    "verify": "verify-full",
}


def with_params(url: str, params: list[tuple[str, str]], drop: frozenset[str] = frozenset()) -> str:
    """`url` with `params` appended to its query (and the keys in `drop`, lower case and
    `_` as `-`, removed)."""
    parts = urlsplit(url)
    kept = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower().replace("_", "-") not in drop
    ]
    return urlunsplit(parts._replace(query=urlencode([*kept, *params])))


def postgres_tls_url(url: str, plan: TlsPlan) -> str:
    """The libpq URL for `url` with the plan's TLS parameters."""
    if plan.mode == "url":
        return url
    params = [("sslmode", _LIBPQ_MODES[plan.mode])]
    if plan.mode == "verify":
        params.append(("sslrootcert", str(plan.ca_file) if plan.ca_file else "system"))
    if plan.client_cert is not None:
        params.append(("sslcert", str(plan.client_cert)))
        params.append(("sslkey", str(plan.client_key or plan.client_cert)))
    return with_params(url, params)


_MYSQL_MODES = {
    "DISABLED": "disable",
    "PREFERRED": "prefer",
    "REQUIRED": "require",
    "VERIFY_CA": "verify_ca",
    "VERIFY_IDENTITY": "verify",
}
_MYSQL_PARAMS = frozenset(("ssl-mode", "sslmode", "ssl-ca", "ssl-cert", "ssl-key", "ssl"))


@dataclass(frozen=True)
class MysqlTls:
    """How PyMySQL and connectorx connect to one MySQL server."""

    mode: str
    url: str  # the URL without TLS parameters
    pymysql: dict[str, Any] = field(default_factory=dict)  # PyMySQL's TLS arguments
    ca_file: Path | None = None

    def connectorx_url(self, catalog_tls: bool) -> str:
        """connectorx's URL: TLS as the plan says (`prefer`: as the catalog connection has)."""
        mode = self.mode
        if mode == "prefer":
            mode = "require" if catalog_tls else "disable"
        if mode == "disable":
            return self.url
        names = {"require": "REQUIRED", "verify_ca": "VERIFY_CA", "verify": "VERIFY_IDENTITY"}
        params = [("ssl-mode", names[mode])]
        if self.ca_file is not None and mode != "require":
            params.append(("ssl-ca", str(self.ca_file)))
        return with_params(self.url, params)


def mysql_tls(url: str, plan: TlsPlan) -> MysqlTls:
    """The plan for a MySQL URL (a URL's own `ssl-mode`/`ssl-ca` read as the plan)."""
    if plan.mode == "url":
        plan = _mysql_url_plan(url)
    url = with_params(url, [], _MYSQL_PARAMS)
    if plan.client_cert is not None:
        raise SourceError(
            "a mysql source cannot present a client certificate: connectorx, which reads its "
            "rows, has no option for one"
        )
    kwargs: dict[str, Any] = {}
    if plan.mode == "disable":
        kwargs["ssl_disabled"] = True
    elif plan.mode == "require":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        kwargs["ssl"] = context
    elif plan.mode in ("verify", "verify_ca"):
        cafile = str(plan.ca_file) if plan.ca_file is not None else None
        context = ssl.create_default_context(cafile=cafile)
        context.check_hostname = plan.mode == "verify"
        kwargs["ssl"] = context
    return MysqlTls(plan.mode, url, kwargs, plan.ca_file)


def _mysql_url_plan(url: str) -> TlsPlan:
    params = {
        k.lower().replace("_", "-"): v
        for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)
    }
    raw = (params.get("ssl-mode") or params.get("sslmode") or "").upper().replace("-", "_")
    ca = Path(params["ssl-ca"]) if params.get("ssl-ca") else None
    cert = Path(params["ssl-cert"]) if params.get("ssl-cert") else None
    if not raw:  # MySQL's clients: a CA without a mode verifies it
        raw = "VERIFY_CA" if ca is not None else "PREFERRED"
    if raw not in _MYSQL_MODES:
        raise SourceError(
            f"the url's ssl-mode is not one of {', '.join(_MYSQL_MODES)} (or use tls: instead)"
        )
    return TlsPlan(_MYSQL_MODES[raw], ca_file=ca, client_cert=cert)


_NO_TLS = (
    "server does not support ssl, but ssl was required",  # libpq
    "ssl is required but the server doesn't support it",  # PyMySQL
    "server does not have this capability",  # connectorx
)
_BAD_CERT = (
    "certificate verify failed",
    "does not match host name",
    "hostname mismatch",
    "certificate_verify_failed",
)


def tls_error(source: str, display: str, plan: TlsPlan, exc: BaseException) -> PenstockError | None:
    """A TLS failure to connect as one line that says what to do, or None for another error.
    Never transient: trying again (or a failover server) does not mend it."""
    text = redact(first_line(exc))
    lowered = text.lower()
    if any(s in lowered for s in _NO_TLS):
        how = (
            "change the url's own TLS parameters"
            if plan.mode == "url"
            else "set tls: {mode: disable}"
        )
        return SourceError(
            f"source '{source}': {display} does not offer TLS, required by {plan.describe()}; "
            f"to connect without TLS, {how} on source '{source}'",
            source=source,
        )
    if any(s in lowered for s in _BAD_CERT):
        detail = text.rsplit("failed: ", 1)[-1] if "libpq" in lowered else text
        return SourceError(
            f"source '{source}': cannot verify the TLS certificate of {display} ({detail}); "
            f"{plan.describe()} checks it against "
            f"{'tls ca_file' if plan.ca_file else 'the system CA store'}: give the CA that "
            "signs it as tls: {ca_file: PATH}, and connect by the host name it names",
            source=source,
        )
    return None
