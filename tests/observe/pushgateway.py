"""A Prometheus Pushgateway on loopback for the tests: its HTTP API, kept in memory.

`/metrics/job/<job>{/<label>/<value>}` takes PUT (the group's metrics are replaced), POST
(push-add: the metric families pushed replace those of the same name in the group; the others
stay) and DELETE (the group goes); the body is the text exposition format. GET `/metrics`
serves every group's samples with the group's labels added, as the Pushgateway does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

Group = tuple[tuple[str, str], ...]


class Gateway:
    def __init__(self) -> None:
        self.groups: dict[Group, dict[str, Any]] = {}  # group -> family name -> family
        self.requests: list[tuple[str, str]] = []  # (method, path)
        self.lock = threading.Lock()

    def samples(self) -> list[Sample]:
        with self.lock:
            out = []
            for group, families in self.groups.items():
                for family in families.values():
                    for s in family.samples:
                        out.append(s._replace(labels={**s.labels, **dict(group)}))
            return out

    def value(self, name: str, **labels: str) -> float | None:
        found = [
            s.value
            for s in self.samples()
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]
        return found[0] if len(found) == 1 else None


def _group(path: str) -> Group | None:
    parts = path.strip("/").split("/")
    if len(parts) < 3 or parts[:2] != ["metrics", "job"] or len(parts) % 2 != 1:
        return None
    pairs = [("job", parts[2]), *zip(parts[3::2], parts[4::2], strict=True)]
    return tuple(sorted(pairs))


@contextmanager
def pushgateway() -> Iterator[tuple[str, Gateway]]:
    gateway = Gateway()

    class Handler(BaseHTTPRequestHandler):
        def _push(self, replace_group: bool) -> None:
            group = _group(self.path)
            gateway.requests.append((self.command, self.path))
            if group is None:
                self.send_error(400, "expected /metrics/job/<job>{/<label>/<value>}")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            try:
                families = {f.name: f for f in text_string_to_metric_families(body)}
            except ValueError as exc:
                self.send_error(400, str(exc))
                return
            with gateway.lock:
                if replace_group:
                    gateway.groups[group] = families
                else:
                    gateway.groups.setdefault(group, {}).update(families)
            self.send_response(200)
            self.end_headers()

        def do_PUT(self) -> None:
            self._push(replace_group=True)

        def do_POST(self) -> None:
            self._push(replace_group=False)

        def do_DELETE(self) -> None:
            group = _group(self.path)
            with gateway.lock:
                gateway.groups.pop(group or (), None)
            self.send_response(202)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", gateway
    finally:
        server.shutdown()
        server.server_close()
