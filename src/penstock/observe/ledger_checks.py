"""How far back a session checks the warehouse ledger against the store (`ledger_checks`).

A session opening a project gives every ledger load the store has no successful load step
for a `reconciled` one (MetadataStore.reconcile_loads): the store may have missed it (a sink
failure, a process killed before the store's sink caught up). A load can only be missed by
the store after the session that last checked opened, so each check records the latest load
time it found complete, and the next session reads the ledger from there, less `MARGIN`, and
not the whole retention window again: 0.1 s of every session per 10,000 loads in the window,
which a landing zone dropping a file a minute fills in a week. The loads a rebuild replays keep
their first load time, and their batches' load steps are in the store from that first load.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from penstock.observe.schema import ledger_checks

# checked again below the recorded time: a clock set back, a load committed as a check ran
MARGIN = timedelta(days=1)


def checked_through(conn: sa.Connection, project: str) -> datetime | None:
    """The load time up to which the project's ledger was found complete, if it ever was."""
    c = ledger_checks.c
    found = conn.execute(sa.select(c.checked_through).where(c.project == project)).scalar()
    return found if isinstance(found, datetime) else None


def record_checked(conn: sa.Connection, project: str, through: datetime) -> None:
    """Record that every ledger load up to `through` is in the store (never moves back)."""
    c = ledger_checks.c
    known = checked_through(conn, project)
    if known is None:
        conn.execute(ledger_checks.insert().values(project=project, checked_through=through))
    elif through > known:
        conn.execute(
            ledger_checks.update().where(c.project == project).values(checked_through=through)
        )


def check_from(cutoff: datetime, checked: datetime | None) -> datetime:
    """Where a session starts reading the ledger: the retention cutoff, or the last check
    less the margin when that is later."""
    if checked is None:
        return cutoff
    return max(cutoff, checked - MARGIN)
