"""REST API sources (`kind: rest`) and what an object of one may declare.

```yaml
sources:
  shop_api:
    kind: rest
    base_url: https://api.example.com/v1
    auth: {type: bearer, token: "${env:SHOP_TOKEN}"}
    rate_limit: 10/s
    retry: {attempts: 5, max_delay: 60s}
objects:
  customers:
    source: shop_api
    endpoint: /customers
    params: {status: active}
    records: data.items
    pagination: {type: link_header}
    incremental: {param: updated_since, cursor: updated_at}
```

A credential (`token`, `password`, an API key's `value`) is given by reference (`${env:X}`,
`${file:P}`); one written in clear is refused. On a REST source `retry:` is the policy of
each HTTP request (429, 5xx, a refused connection or a timeout are tried again after a random
wait, honouring `Retry-After`), not of the object's whole work: an object's own `retry:` still
says that. `connect_timeout` / `read_timeout` bound each request; `timeout:` bounds one try
of an object's work, as on every source.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from penstock.catalog import base
from penstock.catalog.orchestration import Duration, Retry, RetryPolicy, seconds
from penstock.secrets import is_secret

DEFAULT_REQUEST_RETRY = RetryPolicy(attempts=4, backoff="1s", max_delay="60s")
_RATE = re.compile(r"^\s*(?P<count>\d+(?:\.\d+)?)\s*/\s*(?P<unit>s|m|h)\s*$")
_RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_CLEAR = "give it by reference (${{env:NAME}} or ${{file:PATH}}), never in clear: {what}"


class Model(base.Model):
    """The project's model base, with fields also settable by their Python names."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _secret(what: str, value: str) -> str:
    if not is_secret(value) and "${" not in value:  # (a reference not resolved is reported)
        raise ValueError(_CLEAR.format(what=f"penstock.yml is not a place for the {what}"))
    return value


class BearerAuth(Model):
    type: Literal["bearer"]
    token: str

    @field_validator("token")
    @classmethod
    def _by_reference(cls, value: str) -> str:
        return _secret("token", value)


class BasicAuth(Model):
    type: Literal["basic"]
    username: str
    password: str

    @field_validator("password")
    @classmethod
    def _by_reference(cls, value: str) -> str:
        return _secret("password", value)


class ApiKeyAuth(Model):
    type: Literal["api_key"]
    name: str = Field(min_length=1)
    value: str
    in_: Literal["header", "query"] = Field(default="header", alias="in")

    @field_validator("value")
    @classmethod
    def _by_reference(cls, value: str) -> str:
        return _secret("API key", value)


RestAuth = Annotated[BearerAuth | BasicAuth | ApiKeyAuth, Field(discriminator="type")]


def rate_per_second(text: str) -> float:
    """Requests per second in a rate such as `10/s`, `600/m` or `1000/h`."""
    match = _RATE.match(text)
    if match is None or float(match["count"]) <= 0:
        raise ValueError(f"expected a rate such as 10/s, 600/m or 1000/h, got '{text}'")
    return float(match["count"]) / _RATE_UNITS[match["unit"]]


class RestSource(BaseModel):
    """An HTTP API answering JSON, read page by page (sources/rest.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    internal_fields: ClassVar[frozenset[str]] = frozenset()

    kind: Literal["rest"]
    base_url: str
    auth: RestAuth | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    rate_limit: str | None = None
    """At most this many requests (`10/s`, `600/m`), over every object of the source."""
    retry: Retry | None = None
    """Each request's tries (default: 4 tries, backoff 1s, at most 60s between two)."""
    connect_timeout: Duration = "10s"
    read_timeout: Duration = "30s"
    verify: bool | str = True
    """TLS: verify the server's certificate (the default), or the path of a CA bundle."""
    timeout: Duration | None = None
    owner: str | None = None
    description: str | None = None

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL, got '{value}'")
        if parts.password or parts.username:
            raise ValueError("base_url holds credentials: give them in auth: by reference")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _check_rate(cls, value: str | None) -> str | None:
        if value is not None:
            rate_per_second(value)
        return value

    @property
    def request_retry(self) -> RetryPolicy:
        return self.retry or DEFAULT_REQUEST_RETRY

    @property
    def timeouts(self) -> tuple[float, float]:
        """(connect, read) seconds."""
        return seconds(self.connect_timeout), seconds(self.read_timeout)

    def display(self) -> str:
        """The API as logs may name it: scheme, host, port and path (no query)."""
        parts = urlsplit(self.base_url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


# -- an object's pagination ---------------------------------------------------------------
class PageNumber(Model):
    """`?page=1`, `?page=2`... until a page holds no record."""

    type: Literal["page_number"]
    param: str = "page"
    start: int = 1
    size_param: str | None = None
    size: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _size_pair(self) -> PageNumber:
        if (self.size_param is None) != (self.size is None):
            raise ValueError("give size_param: and size: together (the page size asked for)")
        return self


class OffsetPages(Model):
    """`?offset=0&limit=100`, then offset advanced by the records received, until none."""

    type: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"
    limit: Annotated[int, Field(ge=1)] = 100


class CursorPages(Model):
    """The next page's cursor is in the body at `path`; it is sent as `param`."""

    type: Literal["cursor"]
    path: str = Field(min_length=1)
    param: str = Field(default="cursor", min_length=1)


class NextUrlPages(Model):
    """The next page's URL is in the body at `path`."""

    type: Literal["next_url"]
    path: str = Field(min_length=1)


class LinkHeaderPages(Model):
    """The next page's URL is the `Link` header's `rel="next"` (RFC 8288)."""

    type: Literal["link_header"]


Pagination = Annotated[
    PageNumber | OffsetPages | CursorPages | NextUrlPages | LinkHeaderPages,
    Field(discriminator="type"),
]


class Incremental(Model):
    """Each run asks for the records changed since the watermark (`param`), which is the
    greatest `cursor` value of the records read so far."""

    param: str = Field(min_length=1)
    cursor: str = Field(min_length=1)


ParamValue = str | int | float | bool


def check_endpoint(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise ValueError("endpoint: is empty")
    if isinstance(value, str) and urlsplit(value).scheme:
        raise ValueError(
            f"endpoint: is a path under base_url (/customers), not a URL: '{value}' (the "
            "source's credentials go to its base_url's host only)"
        )
    return value


def _check_file_records(records: str, file_format: str | None) -> None:
    """`records:` on a files object: the keys of nested JSON objects leading to the array of
    records in a `format: json` file (sources/json_path.py)."""
    if file_format != "json":
        raise ValueError(
            "records: applies to a REST object (endpoint:) or to format: json files (the keys "
            f"leading to the array of records), not to format: {file_format} files"
        )
    if any(not part for part in records.split(".")):
        raise ValueError(f"records: '{records}' has an empty key (write keys.like.this)")


def check_api_object(spec: Any, cursor_family: Callable[[Any], str | None]) -> None:
    """An object's `endpoint:` and the keys only a REST object reads agree (`spec`: an
    ObjectSpec, validated; `cursor_family`: how a column orders, None if it cannot)."""
    api_only = {
        "params": spec.params or None,
        "records": spec.records,
        "pagination": spec.pagination,
        "incremental": spec.incremental,
    }
    if not spec.reads_api:
        if spec.records is not None and spec.files is not None:
            _check_file_records(spec.records, spec.format)
            api_only.pop("records")
        for what, value in api_only.items():
            if value is not None:
                raise ValueError(f"{what}: applies to a REST object (endpoint:)")
        return
    if spec.files is not None or spec.reads_database:
        raise ValueError("endpoint: reads a REST source: give no files:, table: or query:")
    if spec.load == "append":
        raise ValueError(
            "a REST object reads records again (every page without incremental:, the "
            "records tied on the watermark with it): load: merge or scd2 with a key, or "
            "replace for a snapshot, not append"
        )
    if spec.incremental is not None:
        cursor = spec.incremental.cursor
        column = spec.columns.get(cursor)
        if column is None:
            raise ValueError(f"incremental cursor '{cursor}' is not a declared column")
        if cursor_family(column) is None:
            raise ValueError(
                f"incremental cursor '{cursor}' is {column.type}: a cursor is a timestamp, "
                "date or integer column"
            )
        if not spec.key:
            raise ValueError(
                "incremental: needs a key: each run re-reads the records tied on the "
                "watermark, and the key makes a re-read record unchanged (load: merge)"
            )
