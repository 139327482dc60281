"""A real JSON API for the REST source tests: `http.server` on 127.0.0.1 (port 0) in a thread.

It serves `records` (dicts with `id` and `updated_at`, in id order) in pages, one endpoint per
pagination style, filtered by `updated_since` (records with `updated_at >= it`, as most APIs do),
and checks the credentials a test expects. Tests script faults (`faults`: responses answered before
the normal ones, in order) and see every request it received (`requests`).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PAGE = 3


@dataclass
class Fault:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # None: the normal body
    delay: float = 0.0  # seconds before answering
    truncate: bool = False  # the normal body, cut in the middle (a valid HTTP response)


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float


class Api:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.requests: list[Seen] = []
        self.auth: tuple[str, ...] | None = None  # ("bearer", t) | ("basic", u, p) | ("key"...)
        self.overlap = False  # offset pages repeat the record before the page
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.records, self.faults, self.requests = [], [], []
            self.auth, self.overlap = None, False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- serving ------------------------------------------------------------------------------
    def handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.requests.append(
                Seen(parts.path, query, dict(request.headers.items()), time.monotonic())
            )
            fault = self.faults.pop(0) if self.faults else Fault()
        if fault.delay:
            time.sleep(fault.delay)
        if not self._authorized(request, query):
            self._send(request, 401, {}, b'{"error": "unauthorized"}')
            return
        if fault.status != 200 or fault.body is not None:
            self._send(request, fault.status, fault.headers, fault.body or b"")
            return
        status, headers, body = self._answer(parts.path, query)
        data = _dumps(body)
        if fault.truncate:
            data = data[: len(data) // 2]
        self._send(request, status, {**headers, **fault.headers}, data)

    def _send(
        self, request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], data: bytes
    ) -> None:
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)

    def _authorized(self, request: BaseHTTPRequestHandler, query: dict[str, str]) -> bool:
        if self.auth is None:
            return True
        kind, *values = self.auth
        given = request.headers.get("Authorization", "")
        if kind == "bearer":
            return given == f"Bearer {values[0]}"
        if kind == "basic":
            token = base64.b64encode(f"{values[0]}:{values[1]}".encode()).decode()
            return given == f"Basic {token}"
        if kind == "header":
            return request.headers.get(values[0]) == values[1]
        return query.get(values[0]) == values[1]  # query

    def selected(self, query: dict[str, str]) -> list[dict[str, Any]]:
        since = query.get("updated_since")
        return [
            r
            for r in self.records
            if since is None or not isinstance(r, dict) or str(r["updated_at"]) >= since
        ]

    def _answer(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        rows = self.selected(query)
        size = int(query.get("per_page", PAGE))
        if path == "/plain":
            return 200, {}, rows
        if path == "/pages":
            page = int(query.get("page", "1"))
            return 200, {}, {"data": {"items": rows[(page - 1) * size : page * size]}}
        if path == "/offset":
            offset, limit = int(query.get("offset", "0")), int(query.get("limit", PAGE))
            start = max(0, offset - 1) if self.overlap and offset else offset
            return 200, {}, {"results": rows[start : start + limit]}
        if path == "/cursor":
            start = int(query["cursor"][1:]) if "cursor" in query else 0
            more = start + PAGE < len(rows)
            meta = {"next": f"c{start + PAGE}" if more else None}
            return 200, {}, {"items": rows[start : start + PAGE], "meta": meta}
        if path == "/next":
            start = int(query.get("after", "0"))
            since = query.get("updated_since")
            link = f"/next?after={start + PAGE}" + (f"&updated_since={since}" if since else "")
            more = start + PAGE < len(rows)
            return 200, {}, {"items": rows[start : start + PAGE], "next": link if more else None}
        if path == "/link":
            start = int(query.get("after", "0"))
            headers = {}
            if start + PAGE < len(rows):
                headers["Link"] = f'<{self.url}/link?after={start + PAGE}>; rel="next"'
            return 200, headers, rows[start : start + PAGE]
        return 404, {}, {"error": "no such endpoint"}


def _dumps(body: Any) -> bytes:
    """JSON, a Decimal written as a number with all its digits."""
    text = json.dumps(body, default=lambda d: f"@@{d}@@")
    return text.replace('"@@', "").replace('@@"', "").encode()


def serve() -> Iterator[Api]:
    api = Api()
    try:
        yield api
    finally:
        api.close()
