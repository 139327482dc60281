"""Leases in the metadata store: who holds a named piece of a project's work, until when.

A lease is one row of `leases` (observe/schema.py), keyed by project and name (`project`
while a run or a rebuild writes the warehouse; `scheduler` for the active `penstock
schedule`; `object:<name>` is the name per-object work will take when objects run in
parallel). Its holder is a unique holder id (one per acquisition) with the process's pid and
host, the command and the run id when there is one.

Every write is one conditional statement in its own transaction, never read-then-write, so
SQLite and PostgreSQL decide races the same way:

- **take**: `UPDATE … WHERE expires_at <= now OR holder_id = me` (an expired lease, or my own);
- **create**: `INSERT` (the primary key refuses a second holder);
- **take over a dead holder**: a holder on this host whose pid is gone is replaced by
  `UPDATE … WHERE holder_id = <the dead holder's id>` (compare-and-set: two processes that
  both saw it dead cannot both win);
- **renew** (`expires_at = now + ttl`) and **release** (`DELETE`) match `holder_id = me`: a
  holder that lost its lease (expired, taken over) cannot renew or delete the new holder's.

Times are the processes' clocks in UTC: hosts sharing a store need synchronised clocks (NTP).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from penstock.observe.schema import leases

_ATTEMPTS = 20


@dataclass(frozen=True)
class Holder:
    """Who holds (or wants) a lease."""

    holder_id: str
    command: str
    pid: int
    host: str
    run_id: str | None = None

    @classmethod
    def this_process(cls, command: str) -> Holder:
        """A new holder identity for this process (each acquisition has its own id)."""
        return cls(uuid.uuid4().hex, command, os.getpid(), socket.gethostname())

    def with_run(self, run_id: str | None, command: str | None = None) -> Holder:
        return replace(self, run_id=run_id, command=command or self.command)


@dataclass(frozen=True)
class LeaseRow:
    """A lease as the store holds it."""

    project: str
    name: str
    holder: Holder
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        """`run 3f2a1c9b (pid 4242 on host-a, since 2026-12-06 05:30:01 UTC)`."""
        h = self.holder
        who = f"{h.command} {h.run_id[:8]}" if h.run_id else f"penstock {h.command}"
        since = self.acquired_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"{who} (PID {h.pid} on {h.host}, since {since})"


def pid_alive(pid: int) -> bool:
    """Is process `pid` alive on this host? (A zombie counts as alive until reaped.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


class LeaseStore:
    """The leases of one project in a metadata store (module docstring)."""

    def __init__(self, engine: sa.Engine, project: str) -> None:
        self.engine = engine
        self.project = project

    def _pk(self, name: str) -> sa.ColumnElement[bool]:
        c = leases.c
        return sa.and_(c.project == self.project, c.name == name)

    @staticmethod
    def _values(holder: Holder, now: datetime, ttl: float) -> dict[str, Any]:
        return {
            "holder_id": holder.holder_id,
            "command": holder.command,
            "run_id": holder.run_id,
            "pid": holder.pid,
            "host": holder.host,
            "acquired_at": now,
            "renewed_at": now,
            "expires_at": now + timedelta(seconds=ttl),
        }

    def try_acquire(
        self, name: str, holder: Holder, *, ttl: float, now: datetime
    ) -> LeaseRow | None:
        """Take lease `name` for `holder` for `ttl` seconds: None when taken, else the lease
        of the holder that keeps it. SQLite's "database is locked" and a lease that changed
        hands between two statements are tried again."""
        lost: Exception | None = None
        for attempt in range(_ATTEMPTS):
            try:
                return self._try_once(name, holder, ttl, now)
            except (_Moved, OperationalError) as exc:
                lost = exc
            time.sleep(min(0.01 * (attempt + 1), 0.2))
        if isinstance(lost, OperationalError):
            raise lost  # the store stayed locked or unreachable
        raise RuntimeError(f"lease '{name}' kept changing hands: gave up") from lost

    def _try_once(self, name: str, holder: Holder, ttl: float, now: datetime) -> LeaseRow | None:
        c = leases.c
        values = self._values(holder, now, ttl)
        with self.engine.begin() as conn:  # expired, or already mine
            took = conn.execute(
                leases.update()
                .where(self._pk(name), sa.or_(c.expires_at <= now, c.holder_id == holder.holder_id))
                .values(**values)
            )
            if took.rowcount == 1:
                return None
        # nobody holds it: the insert takes it; somebody does: the primary key refuses it
        with contextlib.suppress(IntegrityError), self.engine.begin() as conn:
            conn.execute(leases.insert().values(project=self.project, name=name, **values))
            return None
        current = self.current(name)
        if current is None:
            raise _Moved  # released meanwhile: try again
        theirs = current.holder
        if theirs.host == holder.host and not pid_alive(theirs.pid):
            with self.engine.begin() as conn:  # its holder died on this host: take it over
                took = conn.execute(
                    leases.update()
                    .where(self._pk(name), c.holder_id == theirs.holder_id)
                    .values(**values)
                )
                if took.rowcount == 1:
                    return None
            raise _Moved  # another process took it over first: see who
        return current

    def renew(self, name: str, holder: Holder, *, ttl: float, now: datetime) -> bool:
        """Extend the lease if `holder` still holds it; False if it lost it."""
        with self.engine.begin() as conn:
            done = conn.execute(
                leases.update()
                .where(self._pk(name), leases.c.holder_id == holder.holder_id)
                .values(renewed_at=now, expires_at=now + timedelta(seconds=ttl))
            )
        return done.rowcount == 1

    def note_run(self, name: str, holder: Holder) -> bool:
        """Record the holder's run id and command on its lease (False if it lost it)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                leases.update()
                .where(self._pk(name), leases.c.holder_id == holder.holder_id)
                .values(run_id=holder.run_id, command=holder.command)
            )
        return done.rowcount == 1

    def release(self, name: str, holder: Holder) -> bool:
        """Delete the lease if `holder` holds it (False: it had lost it)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                leases.delete().where(self._pk(name), leases.c.holder_id == holder.holder_id)
            )
        return done.rowcount == 1

    def current(self, name: str) -> LeaseRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(leases).where(self._pk(name))).mappings().first()
        return None if row is None else _row(row)

    def all(self) -> list[LeaseRow]:
        """Every lease row of the project (held or expired), by name."""
        query = sa.select(leases).where(leases.c.project == self.project).order_by(leases.c.name)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query).mappings()]


def _row(row: sa.RowMapping) -> LeaseRow:
    return LeaseRow(
        project=row["project"],
        name=row["name"],
        holder=Holder(row["holder_id"], row["command"], row["pid"], row["host"], row["run_id"]),
        acquired_at=row["acquired_at"],
        renewed_at=row["renewed_at"],
        expires_at=row["expires_at"],
    )


class _Moved(Exception):
    """The lease changed hands between two statements: look again."""
