"""TLS of a database source (`tls:`), and what a URL says about TLS by itself.

```yaml
tls: {mode: verify, ca_file: certs/db-ca.pem, client_cert: certs/etl.pem, client_key: certs/etl.key}
```

`mode`: `disable` (plain), `prefer` (TLS when the server offers it, unverified), `require`
(TLS, certificate not checked), `verify` (TLS, certificate chain AND host name checked: libpq
`sslmode=verify-full`, MySQL `VERIFY_IDENTITY`), against `ca_file` or, without one, the
system's CA store. A `tls:` block without `mode` verifies.

Without `tls:`, a server whose host is not loopback (`localhost`, 127.0.0.0/8, ::1) or a Unix
socket is verified against the system's CA store: verification is on by default. A loopback
server is `prefer`: nothing crosses a network. A URL may carry the driver's own TLS parameters
instead (`sslmode=`, `sslrootcert=`... for PostgreSQL; `ssl-mode=`, `ssl-ca=` for MySQL): they
are kept as written, and giving them together with `tls:` is an error (one place, one truth).
Paths are relative to the project; `${env:...}` may name them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, model_validator

TlsMode = Literal["disable", "prefer", "require", "verify"]


class Tls(BaseModel):
    """A database source's `tls:` block."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    internal_fields: ClassVar[frozenset[str]] = frozenset()

    mode: TlsMode = "verify"
    ca_file: str | None = None
    """PEM file of the CA(s) that sign the server's certificate (`verify` only); without it,
    the system's CA store."""
    client_cert: str | None = None
    client_key: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Tls:
        if self.ca_file is not None and self.mode != "verify":
            raise ValueError(
                f"ca_file is used only by mode: verify (mode {self.mode} checks no certificate)"
            )
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("client_key needs client_cert")
        if self.client_cert is not None and self.mode == "disable":
            raise ValueError("client_cert needs TLS (mode is disable)")
        return self


@dataclass(frozen=True)
class TlsPlan:
    """The TLS one connection uses: `mode` is penstock's (`verify_ca` only from a MySQL URL's
    own `ssl-mode=VERIFY_CA`), or `url` when a PostgreSQL URL's own parameters decide.
    `default` says no `tls:` was written (the mode follows the host)."""

    mode: str
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    default: bool = False

    def describe(self) -> str:
        if self.mode == "url":
            return "the url's own TLS parameters"
        why = " (the default for a host that is not loopback)" if self.default else ""
        return f"tls mode {self.mode}{why}"


def url_tls_params(kind: str, url: str) -> list[str]:
    """The driver TLS parameters a URL carries (their names only, never values)."""
    found = []
    for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        name = key.lower().replace("_", "-")
        if kind == "postgres" and (name.startswith("ssl") or name == "requiressl"):
            found.append(key)
        if kind == "mysql" and name.startswith("ssl"):
            found.append(key)
    return found


def url_hosts(kind: str, url: str) -> list[str]:
    """The hosts a URL names, and the addresses it connects to ('' for the driver's default:
    a Unix socket for libpq). Loopback only when every one of them is."""
    parts = urlsplit(url)
    if kind != "postgres":
        return [parts.hostname or ""]
    params = dict(parse_qsl(parts.query))
    if "host" in params:
        hosts = params["host"].split(",")
    else:
        netloc = parts.netloc.rpartition("@")[2]
        hosts = [h if h.startswith("[") else h.rsplit(":", 1)[0] for h in netloc.split(",")]
    # libpq connects to `hostaddr` when given (and checks certificates against `host`)
    addresses = params["hostaddr"].split(",") if params.get("hostaddr") else []
    return [unquote(h) for h in hosts] + addresses


def is_local_host(host: str) -> bool:
    """Loopback (`localhost`, 127.0.0.0/8, ::1) or a Unix socket: no network crossed."""
    host = host.strip().strip("[]").split("]")[0]
    if not host or host.startswith(("/", "@")) or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plan_tls(kind: str, url: str, tls: Tls | None, root: Path) -> TlsPlan:
    """The TLS a connection to `url` uses, with paths resolved against the project `root`."""
    if tls is None:
        if url_tls_params(kind, url):
            return TlsPlan("url")
        local = all(is_local_host(h) for h in url_hosts(kind, url))
        return TlsPlan("prefer" if local else "verify", default=True)

    def resolved(path: str | None) -> Path | None:
        if path is None:
            return None
        found = Path(path).expanduser()
        return found if found.is_absolute() else root / found

    return TlsPlan(
        tls.mode, resolved(tls.ca_file), resolved(tls.client_cert), resolved(tls.client_key)
    )
