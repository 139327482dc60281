"""Database sources (`kind: postgres`, `kind: mysql`) and what a database object may declare.

A database source is a URL, usually by reference (`url: "${env:SHOP_DB_URL}"`, or only the
password: `postgresql://etl:${env:SHOP_DB_PASSWORD}@db/shop`). A password written in clear in
penstock.yml is refused: penstock.yml is not a place for secrets.

An object of a database source reads `table:` (`orders` or `schema.orders`) or `query:` (one
SELECT); `target:` names the warehouse table when it is not the object's name.
`cursor:` (a contract column: a timestamp, date or integer) makes extraction incremental:
each run reads the window `cursor >= watermark - lookback AND cursor <= max(cursor)`; the
lower bound is inclusive, so rows tied on the watermark are read again and the key decides
(an identical row is unchanged). `lookback:` widens the window to catch rows committed late
(a duration such as `10m` for a temporal cursor, a number for a numeric one).
`partitions: N` reads a window in N ranges of the (single, integer) key, in parallel.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from penstock.catalog.orchestration import Duration, Retry
from penstock.secrets import is_secret, register_secret

DatabaseKind = Literal["postgres", "mysql"]
URL_SCHEMES: dict[str, tuple[str, ...]] = {
    "postgres": ("postgresql", "postgres"),
    "mysql": ("mysql", "mariadb"),
}
DEFAULT_CHUNK_ROWS = 100_000


class DatabaseSource(BaseModel):
    """A PostgreSQL or MariaDB/MySQL database read over its own protocol (Arrow-native)."""

    # as catalog.objects.Model (which imports this module): unknown keys are errors
    model_config = ConfigDict(extra="forbid", frozen=True)
    internal_fields: ClassVar[frozenset[str]] = frozenset()

    kind: DatabaseKind
    url: str
    chunk_rows: int = Field(default=DEFAULT_CHUNK_ROWS, ge=1000)
    """Rows per record batch read (memory is bounded by a few of them)."""
    owner: str | None = None
    description: str | None = None
    retry: Retry | None = None
    timeout: Duration | None = None

    failover: tuple[str, ...] = ()
    """Read replicas tried in order when the primary (`url`) cannot be reached: each is a URL
    of the same kind, vetted as `url` is."""

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str, info: Any) -> str:
        return _vetted_url(info.data.get("kind"), value)

    @field_validator("failover")
    @classmethod
    def _check_failover(cls, value: tuple[str, ...], info: Any) -> tuple[str, ...]:
        for n, url in enumerate(value, 1):
            try:
                _vetted_url(info.data.get("kind"), url)
            except ValueError as exc:
                raise ValueError(f"failover url {n}: {exc}") from None
        return value

    @property
    def urls(self) -> tuple[str, ...]:
        """The servers to try, in order: the primary, then each failover."""
        return (self.url, *self.failover)

    def display(self, url: str | None = None) -> str:
        """The database (or `url`, one of its servers) as logs may name it: scheme, host,
        port and database, no credentials."""
        parts = urlsplit(self.url if url is None else url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


def _vetted_url(kind: str | None, value: str) -> str:
    """`value` as a database source's URL: the kind's scheme, a host or database, and a
    password only by reference (registered as a secret, so that it is redacted everywhere)."""
    parts = urlsplit(value)
    schemes = URL_SCHEMES.get(kind or "", ())
    if schemes and parts.scheme not in schemes:
        shown = value if not is_secret(value) else "the url"
        raise ValueError(
            f"a {kind} source needs a {schemes[0]}:// url, not {shown.split(':', 1)[0]}://"
        )
    if not parts.hostname and not parts.path.strip("/"):
        raise ValueError("the url names no host or database")
    password = unquote(parts.password) if parts.password else ""
    if password and not is_secret(value) and not is_secret(password):
        raise ValueError(
            "the url holds a password in clear: give it by reference "
            '(url: "${env:SHOP_DB_URL}", or postgresql://user:${env:DB_PASSWORD}@host/db)'
        )
    if password:  # also the decoded form a driver may echo
        register_secret(password)
    return value
