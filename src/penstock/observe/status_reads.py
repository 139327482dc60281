"""What `penstock status` and `penstock runs` read from the metadata store, as plain SQL.

One SQL text serves both databases. On a SQLite store (the default) it runs through Python's
own sqlite3, so these commands start without importing SQLAlchemy (~0.15 s of a 0.2 s
budget); on any other store through the store's SQLAlchemy engine. `MetadataStore.runs` and
`MetadataStore.object_status` run the same functions, so there is one implementation.

Outcome words are those of `penstock.outcomes`: a run or an object is `success`, `warning`,
`running`, `failed` or `abandoned` (an object also `upstream_failed`), derived from the stored
statuses (nothing is migrated).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from penstock.errors import TransientError
from penstock.observe.names import OBJECT_STEP
from penstock.observe.records import ObjectStatus, RunSummary, duration
from penstock.outcomes import run_outcome, worst

Rows = Callable[[str, Mapping[str, Any]], list[dict[str, Any]]]
"""Runs one query with named (`:name`) parameters; returns its rows as dicts."""

_SQLITE = "sqlite:///"
_CHUNK = 500
_LOADED = ("success", "warning")  # the stored statuses of a step that loaded its batch


@dataclass(frozen=True, slots=True)
class ObjectCounts:
    """An object's counts in the warehouse when its last run's work on it ended."""

    object: str
    table_name: str
    run_id: str | None  # the run that counted; None: counted by `status` itself
    counted_at: datetime
    rows: int | None
    batches_loaded: int
    rows_quarantined: int
    rows_warned: int
    batches_rejected: int = 0  # landing files rejected as unreadable


def sqlite_file(url: str) -> Path | None:
    """The database file of a plain `sqlite:///PATH` URL (no query, not in memory), else None."""
    if not url.startswith(_SQLITE) or "?" in url:
        return None
    location = url.removeprefix(_SQLITE)
    if not location or location.startswith((":memory:", "file:")):
        return None
    return Path(location)


@contextmanager
def reading(url: str) -> Iterator[Rows | None]:
    """A query function over the metadata store at `url`; None when a SQLite store does not
    exist yet (nothing has run: nothing to read, and reading creates no file)."""
    path = sqlite_file(url)
    if path is None:
        yield from _through_sqlalchemy(url)
        return
    if not path.exists():
        yield None
        return
    try:
        # mode=rw: never creates the file; these reads write nothing
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=10)
    except sqlite3.Error as exc:
        raise TransientError(f"metadata store: cannot open {path}: {exc}", url=url) from None
    try:

        def rows(sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
            try:
                cursor = conn.execute(sql, dict(params))
            except sqlite3.Error as exc:
                raise TransientError(f"metadata store: cannot read: {exc}", url=url) from None
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor]

        yield rows
    finally:
        conn.close()


def _through_sqlalchemy(url: str) -> Iterator[Rows]:
    from penstock.observe.store import MetadataStore

    with MetadataStore(url) as store, store.reading("read status") as rows:
        yield rows


def sqlalchemy_rows(conn: Any) -> Rows:
    """The query function over an open SQLAlchemy connection."""
    import sqlalchemy as sa

    def rows(sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [dict(row) for row in conn.execute(sa.text(sql), dict(params)).mappings()]

    return rows


def utc(value: Any) -> datetime | None:
    """A timestamp as the driver returns it (SQLite: naive UTC text) → aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a timestamp from the metadata store, got {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _in(name: str, values: Sequence[str]) -> tuple[str, dict[str, str]]:
    """`(:name0, :name1, …)` and its parameters (portable; no expanding parameters)."""
    params = {f"{name}{i}": value for i, value in enumerate(values)}
    return "(" + ", ".join(f":{key}" for key in params) + ")", params


# ---- runs --------------------------------------------------------------------------------

_RUNS = f"""
SELECT r.run_id, r.command, r.selector, r.status, r.started_at, r.ended_at, r.error,
       t.steps, t.failed_steps, t.warned_steps,
       t.rows_in, t.rows_loaded, t.rows_quarantined, t.rows_duplicate
FROM job_runs r
LEFT JOIN (
    SELECT run_id,
           SUM(CASE WHEN step <> '{OBJECT_STEP}' THEN 1 ELSE 0 END) AS steps,
           SUM(CASE WHEN step <> '{OBJECT_STEP}' AND status = 'failed' THEN 1 ELSE 0 END)
               AS failed_steps,
           SUM(CASE WHEN status = 'warning' THEN 1 ELSE 0 END) AS warned_steps,
           SUM(rows_in) AS rows_in, SUM(rows_loaded) AS rows_loaded,
           SUM(rows_quarantined) AS rows_quarantined, SUM(rows_duplicate) AS rows_duplicate
    FROM step_runs
    WHERE run_id IN (SELECT run_id FROM job_runs
                     ORDER BY started_at DESC, run_id DESC LIMIT :limit)
    GROUP BY run_id
) t ON t.run_id = r.run_id
ORDER BY r.started_at DESC, r.run_id DESC
LIMIT :limit
"""


def runs(rows: Rows | None, limit: int) -> list[RunSummary]:
    """The latest `limit` runs, newest first, with their outcome and totals over their steps.

    An `object` step records an object's work, not a step of its own: not counted in `steps`.
    `status` is the run's outcome: its stored status, `warning` when it ended `success` (or was
    `reconciled` from the ledger) and one of its steps warned."""
    if rows is None:
        return []
    out: list[RunSummary] = []
    for row in rows(_RUNS, {"limit": limit}):
        started, ended = utc(row["started_at"]), utc(row["ended_at"])
        assert started is not None
        out.append(
            RunSummary(
                run_id=row["run_id"],
                command=row["command"],
                selector=row["selector"],
                status=run_outcome(row["status"], warned=_int(row["warned_steps"]) > 0),
                started_at=started,
                ended_at=ended,
                duration_s=duration(started, ended),
                error=row["error"],
                steps=_int(row["steps"]),
                failed_steps=_int(row["failed_steps"]),
                rows_in=_int(row["rows_in"]),
                rows_loaded=_int(row["rows_loaded"]),
                rows_quarantined=_int(row["rows_quarantined"]),
                rows_duplicate=_int(row["rows_duplicate"]),
                reconciled=row["status"] == "reconciled",
            )
        )
    return out


# ---- object status -----------------------------------------------------------------------


def object_status(
    rows: Rows | None, objects: Sequence[str], *, totals: bool = True
) -> dict[str, ObjectStatus]:
    """Where each object stands (see `ObjectStatus`); objects never run get None/0 values.

    Each figure is read with index lookups per object (ix_step_runs_object_started_at,
    ix_step_runs_object_step_status), so the time does not grow with the store's history;
    only `totals` (`batches_loaded`, `rows_quarantined_total`: every load step of the
    object) reads all of an object's steps. `penstock status` does without them."""
    wanted = list(dict.fromkeys(objects))
    found: dict[str, dict[str, Any]] = {name: {} for name in wanted}
    if rows is not None:
        for i in range(0, len(wanted), _CHUNK):
            _object_status_chunk(rows, wanted[i : i + _CHUNK], found, totals)
    return {name: ObjectStatus(object=name, **found[name]) for name in wanted}


def _per_object(chunk: list[str], *columns: str) -> tuple[str, dict[str, str]]:
    """One row per object of `chunk` (`object` and the given scalar subqueries, in which
    `:o` is the object), as a UNION ALL: each subquery is an index lookup."""
    params = {f"o{i}": name for i, name in enumerate(chunk)}
    selects = [
        f"SELECT :{key} AS object, " + ", ".join(c.replace(":o", f":{key}") for c in columns)
        for key in params
    ]
    return " UNION ALL ".join(selects), params


def _object_status_chunk(
    rows: Rows, chunk: list[str], found: dict[str, dict[str, Any]], totals: bool
) -> None:
    latest_at, params = _per_object(
        chunk, "(SELECT MAX(started_at) FROM step_runs WHERE object = :o) AS started_at"
    )
    latest = (
        "SELECT s.object, s.run_id, s.started_at FROM step_runs s "
        f"JOIN ({latest_at}) l ON l.object = s.object AND l.started_at = s.started_at "
        "ORDER BY s.object, s.step_id"
    )
    last_run: dict[str, str] = {}
    for row in rows(latest, params):
        last_run[row["object"]] = row["run_id"]
        found[row["object"]].update(last_run_id=row["run_id"], last_run_at=utc(row["started_at"]))
    if last_run:
        names, _ = _in("o", chunk)
        run_names, run_params = _in("r", sorted(set(last_run.values())))
        statuses: dict[str, list[str]] = {}
        query = (
            f"SELECT object, run_id, status FROM step_runs "
            f"WHERE object IN {names} AND run_id IN {run_names}"
        )
        for row in rows(query, params | run_params):
            if last_run.get(row["object"]) == row["run_id"]:
                statuses.setdefault(row["object"], []).append(row["status"])
        for name, found_statuses in statuses.items():
            found[name]["last_status"] = worst(found_statuses)
    # the last loaded batch: one lookup per loaded status (MAX over an index prefix)
    last_load, params = _per_object(
        chunk,
        *(
            f"(SELECT MAX(ended_at) FROM step_runs WHERE object = :o AND step = 'load' "
            f"AND status = '{status}') AS {status}"
            for status in _LOADED
        ),
    )
    for row in rows(last_load, params):
        ended = [t for t in (utc(row[status]) for status in _LOADED) if t is not None]
        if ended:
            found[row["object"]]["last_batch_at"] = max(ended)
    if not totals:
        return
    names, params = _in("o", chunk)
    loads = (
        "SELECT object, COUNT(batch_id) AS batches_loaded, "
        "SUM(rows_quarantined) AS rows_quarantined_total FROM step_runs "
        f"WHERE object IN {names} AND step = 'load' AND status IN ('success', 'warning') "
        "GROUP BY object"
    )
    for row in rows(loads, params):
        found[row["object"]].update(
            batches_loaded=_int(row["batches_loaded"]),
            rows_quarantined_total=_int(row["rows_quarantined_total"]),
        )


# ---- object counts -----------------------------------------------------------------------


def object_counts(
    rows: Rows | None, project: str, objects: Sequence[str]
) -> dict[str, ObjectCounts]:
    """The latest recorded counts of each object that has some (a store written before
    counts were recorded has none: its table is created the next time a run opens it)."""
    wanted = list(dict.fromkeys(objects))
    out: dict[str, ObjectCounts] = {}
    if rows is None or not wanted:
        return out
    for i in range(0, len(wanted), _CHUNK):
        names, params = _in("o", wanted[i : i + _CHUNK])
        # every column: a store from before `batches_rejected` existed has none (status
        # reads it without migrating it)
        query = f"SELECT * FROM object_counts WHERE project = :project AND object IN {names}"
        try:
            found = rows(query, params | {"project": project})
        except TransientError as exc:
            if "no such table: object_counts" in exc.message:
                return out
            raise
        for row in found:
            counted_at = utc(row["counted_at"])
            assert counted_at is not None
            out[row["object"]] = ObjectCounts(
                object=row["object"],
                table_name=row["table_name"],
                run_id=row["run_id"],
                counted_at=counted_at,
                rows=None if row["table_rows"] is None else int(row["table_rows"]),
                batches_loaded=_int(row["batches_loaded"]),
                rows_quarantined=_int(row["rows_quarantined"]),
                rows_warned=_int(row["rows_warned"]),
                batches_rejected=_int(row.get("batches_rejected")),
            )
    return out
