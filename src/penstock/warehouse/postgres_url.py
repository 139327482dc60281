"""The PostgreSQL warehouse URL: `postgresql://user[:password]@host[:port]/db[?schema=NAME]`.

`schema` (default `public`) is where object tables go; the ledger stays in `penstock` and the
quarantine tables in `quarantine`, as on DuckDB. Any other query parameter is a libpq setting
(`sslmode=require`, `connect_timeout=5`, ...). The URL is only ever shown without its password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict

from penstock.errors import ProjectError

SCHEMES = ("postgresql", "postgres")
DEFAULT_SCHEMA = "public"
_PASSWORD = re.compile(r"(://[^:/@]*):[^@/]*@")


@dataclass(frozen=True)
class PostgresTarget:
    conninfo: str  # what libpq connects with (the password included: never show it)
    schema: str
    shown: str  # the URL without its password
    password: str | None


def hide_password(url: str) -> str:
    return _PASSWORD.sub(r"\1:***@", url)


def parse_postgres_url(url: str) -> PostgresTarget:
    """Split the warehouse URL into what libpq connects to and penstock's own `schema`."""
    shown = hide_password(url)
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.path.strip("/"):
        raise ProjectError(
            f"warehouse URL {shown}: expected postgresql://user@host:port/database[?schema=NAME]",
            file="penstock.yml",
            key_path="warehouse",
        )
    params = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [v for k, v in params if k == "schema"]
    schema = schemas[-1] if schemas else DEFAULT_SCHEMA
    if not schema.strip():
        raise ProjectError(
            f"warehouse URL {shown}: schema= is empty (name a schema, or leave it out for "
            f"{DEFAULT_SCHEMA})",
            file="penstock.yml",
            key_path="warehouse",
        )
    rest = urlencode([(k, v) for k, v in params if k != "schema"])
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, rest, ""))
    try:
        password = conninfo_to_dict(conninfo).get("password")
    except Exception as exc:  # psycopg.ProgrammingError: a malformed URL
        raise ProjectError(
            f"warehouse URL {shown}: {str(exc).splitlines()[0] if str(exc) else exc}",
            file="penstock.yml",
            key_path="warehouse",
        ) from None
    return PostgresTarget(conninfo, schema, shown, None if password is None else str(password))
