"""What `penstock logs` reads, as plain SQL over `status_reads.Rows` (sqlite3 on a SQLite
store, so the command starts without SQLAlchemy; the store's engine otherwise), and
`follow`: the live tail of a run in progress in another process.

`follow` polls the store (`POLL_SECONDS`) for log records after the last one it yielded, and
ends when the run has ended (its last records read), or when the run's process is gone
without recording its end: a run records the PID and host it runs in (job_runs.pid, .host),
and a run still `running` whose process no longer exists on this host was killed.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from penstock.errors import UsageError
from penstock.observe.names import LOG_LEVELS
from penstock.observe.records import LogRow
from penstock.observe.status_reads import Rows, utc

POLL_SECONDS = 0.2
_BATCH = 1000


@dataclass(frozen=True)
class RunState:
    run_id: str
    status: str  # as stored: running, success, failed, abandoned, reconciled
    started_at: datetime
    ended_at: datetime | None
    pid: int | None = None
    host: str | None = None

    @property
    def process_gone(self) -> bool:
        """The run is `running` but its process no longer exists (checked on its own host)."""
        if self.status != "running" or self.pid is None or self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # exists, owned by someone else
            return False
        return False


def last_run_id(rows: Rows) -> str | None:
    found = rows("SELECT run_id FROM job_runs ORDER BY started_at DESC, run_id DESC LIMIT 1", {})
    return str(found[0]["run_id"]) if found else None


def resolve_run(rows: Rows, prefix: str) -> str:
    """The one run whose id starts with `prefix` (as `penstock runs` shows it)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    found = rows(
        "SELECT run_id FROM job_runs WHERE run_id LIKE :p ESCAPE '\\' ORDER BY run_id LIMIT 2",
        {"p": f"{escaped}%"},
    )
    if len(found) != 1:
        what = "no run" if not found else "more than one run"
        raise UsageError(f"{what} has an id starting with '{prefix}'")
    return str(found[0]["run_id"])


def run_state(rows: Rows, run_id: str) -> RunState | None:
    found = rows("SELECT * FROM job_runs WHERE run_id = :r", {"r": run_id})
    if not found:
        return None
    row = found[0]
    started = utc(row["started_at"])
    assert started is not None
    pid = row.get("pid")
    return RunState(
        run_id=run_id,
        status=str(row["status"]),
        started_at=started,
        ended_at=utc(row["ended_at"]),
        pid=None if pid is None else int(pid),
        host=row.get("host"),
    )


def levels_from(level: str) -> tuple[str, ...]:
    if level not in LOG_LEVELS:
        raise UsageError(f"unknown log level '{level}'; expected one of {', '.join(LOG_LEVELS)}")
    return LOG_LEVELS[LOG_LEVELS.index(level) :]


def read_logs(
    rows: Rows,
    run_id: str,
    *,
    after: int = 0,
    level: str = "debug",
    object: str | None = None,
    limit: int | None = None,
) -> list[LogRow]:
    """The run's log records with an id above `after`, in emission order; `level` and
    above; of `object` only, when given."""
    params: dict[str, Any] = {"r": run_id, "after": after}
    where = "run_id = :r AND id > :after"
    wanted = levels_from(level)
    if len(wanted) < len(LOG_LEVELS):
        names = []
        for i, name in enumerate(wanted):
            params[f"l{i}"] = name
            names.append(f":l{i}")
        where += f" AND level IN ({', '.join(names)})"
    if object is not None:
        where += " AND object = :o"
        params["o"] = object
    sql = f"SELECT * FROM logs WHERE {where} ORDER BY id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [_log_row(row) for row in rows(sql, params)]


def _log_row(row: dict[str, Any]) -> LogRow:
    fields = row["fields"]
    if isinstance(fields, str):
        fields = json.loads(fields)
    at = utc(row["at"])
    assert at is not None
    return LogRow(
        id=int(row["id"]),
        run_id=row["run_id"],
        at=at,
        level=row["level"],
        object=row["object"],
        batch_id=row["batch_id"],
        message=row["message"],
        fields=dict(fields or {}),
        step_id=row.get("step_id"),
    )


@dataclass(frozen=True)
class Ended:
    """What ended a follow: the run's final state (`gone`: its process died mid-run)."""

    state: RunState
    gone: bool = False


def follow(
    rows: Rows,
    run_id: str,
    *,
    level: str = "info",
    object: str | None = None,
    poll_s: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogRow | Ended]:
    """Yield the run's log records as they are written, then an `Ended`."""
    after = 0
    while True:
        state = run_state(rows, run_id)  # read before the logs: no record written before
        # the run ended is missed
        if state is None:
            raise UsageError(f"run {run_id} is not in the metadata store (pruned?)")
        while True:
            found = read_logs(rows, run_id, after=after, level=level, object=object, limit=_BATCH)
            yield from found
            if found:
                after = found[-1].id
            if len(found) < _BATCH:
                break
        if state.status != "running":
            yield Ended(state)
            return
        if state.process_gone:
            yield Ended(state, gone=True)
            return
        sleep(poll_s)
