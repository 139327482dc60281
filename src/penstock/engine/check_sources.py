"""`penstock check` reaches every source and says how long it took to answer.

A files source: its directory exists. A database: a connection (to the primary, else to the
first `failover:` server that answers: a warning), then `SELECT 1`. A REST API:
one GET of its `base_url` with its credentials, tried once (no retry: check reports, it does
not wait); any answer but 401/403 or 5xx means reachable (a 404 at the root of an API is
common), 401/403 is an error naming the auth, 5xx a warning. Nothing is read or written.
"""

from __future__ import annotations

import time

from penstock.catalog import FilesSource, Project
from penstock.catalog.database import DatabaseSource
from penstock.catalog.orchestration import RetryPolicy
from penstock.catalog.rest import RestSource
from penstock.engine.check_stores import Level, Reached
from penstock.errors import PenstockError, SourceError, TransientError


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def reach_source(project: Project, name: str) -> tuple[Reached, float | None]:
    """Whether source `name` answers, and in how many seconds (None: not asked)."""
    spec = project.sources[name]
    if isinstance(spec, FilesSource):
        ok = project.path(spec.path).is_dir()
        detail = f"{spec.path} exists" if ok else f"directory {spec.path} does not exist"
        return Reached("ok" if ok else "error", detail), None
    started = time.monotonic()
    try:
        level: Level = "ok"
        if isinstance(spec, DatabaseSource):
            level, detail, took = *_reach_database(project, name, spec), None
        else:
            detail, took = _reach_api(name, spec)
    except TransientError as exc:
        if exc.fields.get("status") is None:  # no answer
            return Reached("error", exc.message), None
        return Reached("warning", exc.message), time.monotonic() - started  # 429, 5xx
    except PenstockError as exc:
        return Reached("error", exc.message), time.monotonic() - started
    took = took if took is not None else time.monotonic() - started
    return Reached(level, f"{detail} in {_ms(took)}"), took


def _reach_database(project: Project, name: str, spec: DatabaseSource) -> tuple[Level, str]:
    """The first of the source's servers that answers (the primary, then each `failover:`)."""
    from penstock.sources.database import DatabaseSourceReader
    from penstock.sources.db_driver import source_error

    reader = DatabaseSourceReader(project, name, spec)
    conn, served = reader.connect_serving()
    try:
        conn.scalars("SELECT 1")
    except Exception as exc:
        raise source_error(name, f"{served.display} does not answer", exc) from exc
    finally:
        conn.close()
    if served.failover:  # reachable, but not where it should be
        return "warning", f"{served.describe()}; it answered"
    return "ok", f"{served.display} answered"


def _reach_api(name: str, spec: RestSource) -> tuple[str, float | None]:
    """What the API answered, and how long the request took (without setting up httpx)."""
    from penstock.sources.rest_http import RestClient

    once = spec.model_copy(update={"retry": RetryPolicy(attempts=1)})
    with RestClient(name, once) as client:
        try:
            response = client.get(spec.base_url)
        except SourceError as exc:
            if exc.fields.get("status") in (401, 403):
                raise
            return f"{spec.display()} answered {exc.fields.get('status')}", client.first_answer_s
    return f"{spec.display()} answered {response.status_code}", client.first_answer_s
