"""`penstock serve`: Prometheus `/metrics` over the metadata store (observe/prometheus.py).

A long-lived process: every scrape reads the store, so it shows the runs of every process that
records there (`penstock run` in cron, another terminal), not only what it saw itself."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from penstock.cli.render import console
from penstock.cli.shared import ProjectOpt, app, example
from penstock.errors import PenstockError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


@app.command(epilog=example("penstock serve --port 9464", "penstock serve --host 0.0.0.0 -p shop"))
def serve(
    project: ProjectOpt = Path(),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on (0: any free port).", min=0, max=65535)
    ] = 9464,
) -> None:
    """Serve the project's metrics for Prometheus at http://HOST:PORT/metrics until stopped.

    Rows processed by object and outcome, steps and runs by status, step and run durations
    (histograms), last success and last load per object, freshness lag, quarantine and DQ pass
    ratios of each object's last run, source availability. Read from the metadata store at
    every scrape: runs of other processes show as soon as they end. Needs the observe extra
    (pip install 'penstock[observe]')."""
    from penstock.catalog.outline import read_outline
    from penstock.observe.prometheus import registry_for, require_prometheus

    require_prometheus("penstock serve")
    from penstock.observe.store import MetadataStore

    proj = read_outline(project)
    store = MetadataStore(proj.metadata_url)
    try:
        server = _server(host, port, _app(registry_for(store, proj.name)))
        bound = server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        console.print(
            f"Serving metrics of {escape(proj.name)} at http://{shown}:{bound}/metrics "
            "(Ctrl-C stops)",
            highlight=False,
        )
        sys.stdout.flush()
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            server.serve_forever(poll_interval=0.5)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.server_close()
    finally:
        store.close()


def _stop(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _server(host: str, port: int, wsgi: Any) -> Any:
    import socket
    from wsgiref.simple_server import make_server

    from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

    class Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    try:
        return make_server(host, port, wsgi, Server, handler_class=_SilentHandler)
    except OSError as exc:
        raise PenstockError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}", host=host, port=port
        ) from None


def _app(registry: Any) -> Callable[..., Iterable[bytes]]:
    from prometheus_client import make_wsgi_app

    metrics = make_wsgi_app(registry)

    def route(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            result: Iterable[bytes] = metrics(environ, start_response)
            return result
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"penstock: metrics at /metrics\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: metrics are at /metrics\n"]

    return route
