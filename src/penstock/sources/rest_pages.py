"""The pages of a REST object: each request, the records it answers, and where the next is.

Pagination styles (`pagination: {type: ...}`):

- none (the default): one request.
- `page_number {param: page, start: 1, size_param, size}`: pages `start`, `start + 1`...
- `offset {offset_param: offset, limit_param: limit, limit: 100}`: the offset advances by the
  records received.
- `cursor {path, param: cursor}`: the body holds the next page's cursor at `path`, sent as
  `param` with the object's params.
- `next_url {path}`: the body holds the next page's URL at `path` (relative URLs are resolved
  against the page's).
- `link_header`: the `Link` header's `rel="next"`.

Numbered pages (page_number, offset) end at the first page holding no record, so a server
answering fewer records than asked (a capped page size) loses none; the others end when no
next page is given. A next cursor or URL seen before is an error (the pages would loop), as is
a next URL on another host than the source's (penstock does not send its credentials there).

`records:` is the dotted path to the list of records in the body (`data.items`); without it
the body must be the list. A path that is absent from a body is an error naming the page;
`null` there is a page without records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from penstock.catalog import ObjectSpec
from penstock.catalog.rest import (
    CursorPages,
    LinkHeaderPages,
    NextUrlPages,
    OffsetPages,
    PageNumber,
)
from penstock.errors import SourceError
from penstock.sources.json_path import at_path
from penstock.sources.rest_http import Params, RestClient


@dataclass(frozen=True)
class Page:
    number: int  # 1 for the first request
    url: str  # as logs may show it
    records: list[Any]


def endpoint_url(base_url: str, endpoint: str) -> str:
    """`base_url` joined with `endpoint` (`/customers` under `https://h/v1` is
    `/v1/customers`)."""
    return base_url.rstrip("/") + "/" + endpoint.lstrip("/")


class PageReader:
    """Reads an object's pages in order (`pages()`), with `extra` params (the watermark)."""

    def __init__(self, client: RestClient, obj: ObjectSpec, base_url: str, extra: Params) -> None:
        assert obj.endpoint is not None
        self.client = client
        self.obj = obj
        self.url = endpoint_url(base_url, obj.endpoint)
        self.origin = urlsplit(self.url)[:2]
        self.params: dict[str, Any] = {**obj.params, **extra}

    def pages(self) -> Iterator[Page]:
        style = self.obj.pagination
        match style:
            case None:
                yield self._page(1, self.url, self.params)[0]
            case PageNumber():
                yield from self._numbered(style)
            case OffsetPages():
                yield from self._offsets(style)
            case CursorPages():
                yield from self._cursors(style)
            case NextUrlPages() | LinkHeaderPages():
                yield from self._links(style)

    def _numbered(self, style: PageNumber) -> Iterator[Page]:
        number = style.start
        count = 1
        while True:
            params = {**self.params, style.param: number}
            if style.size_param is not None and style.size is not None:
                params[style.size_param] = style.size
            page, _, _ = self._page(count, self.url, params)
            yield page
            if not page.records:
                return
            number += 1
            count += 1

    def _offsets(self, style: OffsetPages) -> Iterator[Page]:
        offset = 0
        count = 1
        while True:
            params = {**self.params, style.offset_param: offset, style.limit_param: style.limit}
            page, _, _ = self._page(count, self.url, params)
            yield page
            if not page.records:
                return
            offset += len(page.records)
            count += 1

    def _cursors(self, style: CursorPages) -> Iterator[Page]:
        params = dict(self.params)
        seen: set[str] = set()
        count = 1
        while True:
            page, body, _ = self._page(count, self.url, params)
            yield page
            found, cursor = at_path(body, style.path)
            if not found or cursor is None or cursor == "":
                return
            token = str(cursor)
            if token in seen:
                raise self._error(page, f"the next cursor {token!r} was given before")
            seen.add(token)
            params = {**self.params, style.param: token}
            count += 1

    def _links(self, style: NextUrlPages | LinkHeaderPages) -> Iterator[Page]:
        url, params = self.url, self.params
        seen: set[str] = set()
        count = 1
        while True:
            page, body, response = self._page(count, url, params)
            yield page
            if isinstance(style, NextUrlPages):
                found, link = at_path(body, style.path)
                target = link if found and isinstance(link, str) and link else None
            else:
                target = response.links.get("next", {}).get("url") or None
            if target is None:
                return
            url = urljoin(str(response.url), target)
            if urlsplit(url)[:2] != self.origin:
                raise self._error(
                    page,
                    f"the next page is on another host ({self.client.shown(url)}); penstock "
                    "sends the source's credentials to its base_url's host only",
                )
            if url in seen:
                raise self._error(page, f"the next page {self.client.shown(url)} was given before")
            seen.add(url)
            params = {}  # the next URL carries its query
            count += 1

    # -- one page -------------------------------------------------------------------------
    def _page(self, number: int, url: str, params: Params) -> tuple[Page, Any, httpx.Response]:
        """GET one page: (its records, its body, the response)."""
        where = f" (page {number})"
        response = self.client.get(url, params, where=where)
        page = Page(number, self.client.shown(url, params), [])
        try:
            body = json.loads(response.content, parse_float=Decimal)
        except ValueError as exc:
            raise self._error(page, f"the body is not valid JSON ({exc})") from None
        if self.obj.records is None:
            found, records = True, body
            if isinstance(body, dict):
                keys = ", ".join(sorted(body)[:8])
                raise self._error(
                    page,
                    f"the body is a JSON object (keys: {keys}), not a list: give records: "
                    "(the path to the list of records)",
                )
        else:
            found, records = at_path(body, self.obj.records)
            if not found:
                raise self._error(page, f"the body has no '{self.obj.records}' (records:)")
        if records is None:
            records = []
        if not isinstance(records, list):
            raise self._error(
                page, f"'{self.obj.records or 'the body'}' is a {_json_kind(records)}, not a list"
            )
        return Page(number, page.url, records), body, response

    def _error(self, page: Page, what: str) -> SourceError:
        name = self.client.name
        return SourceError(
            f"source '{name}': GET {page.url} (page {page.number}): {what}; nothing from "
            f"this read of '{self.obj.name}' was staged",
            source=name,
            object=self.obj.name,
            url=page.url,
            page=page.number,
        )


def _json_kind(value: Any) -> str:
    kinds: Mapping[type, str] = {dict: "JSON object", str: "string", bool: "boolean"}
    for kind, word in kinds.items():
        if isinstance(value, kind):
            return word
    return "number" if isinstance(value, int | float) else "JSON value"
