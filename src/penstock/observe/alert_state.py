"""Where alerting keeps its state: in the metadata store, so that every process shares it.

Two tables (observe/schema.py: every store has them; `penstock sql` reads them):

- `alert_state`: one row per project, rule and key (`check_failed:orders`,
  `sla_missed:orders:freshness`, `source_down:landing`): whether the condition is firing,
  since when, when an alert was last sent, what the last message was (an alert or a
  recovery), the fingerprint of the last occurrence and how many occurrences were held back
  since the last alert.
- `alert_log`: one row per decision that reached a destination or was held back: `alert`,
  `reminder`, `recovery`, `throttled`, `test`, with how many destinations took it and the
  errors of those that did not (never a destination's URL: `ops[0] (json)`).

**The decision** (`AlertLedger.decide`) is one compare-and-set on the state row: read it,
work out the next state, write it only if its `version` is still the one read (a new row:
insert, and a primary-key clash means another process got there first). Whoever loses reads
again and decides on the winner's state. So two processes meeting the same condition at once
(two `penstock slo --check`, a run and the scheduler) send it once. On SQLite a write that
meets another process's fresh snapshot fails as "database is locked": tried again as well.

The rules of a key, with W its rule's `throttle`:
- a **condition fires**: it is sent if no alert of the key was sent within W (a `reminder`
  when the key was already firing and its last message was an alert); otherwise it is held
  back (`throttled`) and counted, and the next message says how many were held back. The
  same occurrence again (same fingerprint, e.g. the same batch or the same stale load) is a
  duplicate: not counted, only reminded of after W. A one-shot event (`schema_drift`,
  `anomaly`: nothing clears them) with a fingerprint already sent is never sent again.
- a **condition clears**: if the last message of the key was an alert, a `recovery` is sent
  (at most one per alert); otherwise the state just goes back to quiet.
- a **failed delivery** (no destination took an alert) gives the claim back, so the next
  occurrence tries again rather than being throttled by a message nobody got.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from penstock.observe.retention import Prune, PruneContext, register
from penstock.observe.schema import alert_log, alert_state
from penstock.secrets import redact

if TYPE_CHECKING:
    from penstock.observe.store import MetadataStore

Action = Literal["alert", "reminder", "recovery", "throttled", "cleared", "test"]
SENDING: tuple[str, ...] = ("alert", "reminder", "recovery", "test")

_ATTEMPTS = 20


@dataclass(frozen=True)
class Occurrence:
    """A condition met (`firing`) or cleared, as a rule's key sees it."""

    rule: str
    key: str
    event: str
    object: str | None
    firing: bool
    at: datetime
    fingerprint: str = ""
    one_shot: bool = False
    summary: str = ""


@dataclass(frozen=True)
class Decision:
    """What to do about an occurrence: `action`, and the state before and after (to give a
    claim back); `held_back` occurrences were throttled since the last alert."""

    action: Action
    since: datetime | None
    held_back: int
    version: int
    previous: dict[str, Any] | None

    @property
    def sends(self) -> bool:
        return self.action in SENDING


@dataclass(frozen=True)
class StateRow:
    """A key's state as `penstock alerts` shows it."""

    rule: str
    key: str
    event: str
    object: str | None
    firing: bool
    since: datetime | None
    last_seen_at: datetime
    last_alert_at: datetime | None
    last_message: str | None
    held_back: int
    summary: str | None


def _next(
    row: dict[str, Any] | None, occ: Occurrence, throttle: timedelta, recovery: bool
) -> tuple[dict[str, Any], Action, int] | None:
    """The next state of a key, the action and how many occurrences were held back (None:
    nothing changes)."""
    now = occ.at
    if not occ.firing:
        if row is None or not row["firing"]:
            return None
        state = dict(row, firing=False, since=None, last_seen_at=now)
        if recovery and row["last_message"] == "alert":  # the recovery says what was held
            state.update(last_message="recovery", held_back=0)
            return state, "recovery", int(row["held_back"])
        return state, "cleared", int(row["held_back"])  # still counted for the next alert
    last = None if row is None else row["last_alert_at"]
    due = last is None or now - last >= throttle
    duplicate = row is not None and bool(occ.fingerprint) and row["fingerprint"] == occ.fingerprint
    if duplicate and (occ.one_shot or not due or not row["firing"]):  # type: ignore[index]
        return None
    state = dict(row) if row is not None else {"held_back": 0, "last_message": None}
    was_firing = row is not None and bool(row["firing"])
    state.update(
        event=occ.event,
        object=occ.object,
        firing=not occ.one_shot,
        since=(row["since"] if was_firing and row is not None else now),
        last_seen_at=now,
        fingerprint=occ.fingerprint,
        summary=redact(occ.summary),
    )
    if not due:
        state["held_back"] = int(state["held_back"]) + 1
        return state, "throttled", int(state["held_back"])
    held = int(state["held_back"])
    action: Action = "reminder" if was_firing and state["last_message"] == "alert" else "alert"
    state.update(last_alert_at=now, last_message="alert", held_back=0)
    return state, action, held


class AlertLedger:
    """Alert state and history of one project in a metadata store (module docstring)."""

    def __init__(self, store: MetadataStore, project: str) -> None:
        self.engine = store.engine
        self.project = project

    def _pk(self, rule: str, key: str) -> sa.ColumnElement[bool]:
        c = alert_state.c
        return sa.and_(c.project == self.project, c.rule == rule, c.key == key)

    def decide(self, occ: Occurrence, *, throttle_s: float, recovery: bool) -> Decision | None:
        """Move the key's state on by `occ` (compare-and-set, tried again when another
        process moved it first); the action to take, or None when nothing changes."""
        throttle = timedelta(seconds=throttle_s)
        lost: Exception | None = None
        for attempt in range(_ATTEMPTS):
            try:
                return self._decide_once(occ, throttle, recovery)
            except (_Lost, IntegrityError, OperationalError) as exc:
                # another process moved the key first, inserted its row, or held SQLite's
                # write lock: read the state again and decide anew
                lost = exc
            time.sleep(min(0.01 * (attempt + 1), 0.2))
        raise RuntimeError(f"alert state of {occ.rule}/{occ.key} kept changing: gave up") from lost

    def _decide_once(self, occ: Occurrence, throttle: timedelta, recovery: bool) -> Decision | None:
        with self.engine.begin() as conn:
            found = (
                conn.execute(sa.select(alert_state).where(self._pk(occ.rule, occ.key)))
                .mappings()
                .first()
            )
            row = None if found is None else dict(found)
            step = _next(row, occ, throttle, recovery)
            if step is None:
                return None
            state, action, held = step
            version = 1 if row is None else int(row["version"]) + 1
            values = {
                k: state.get(k)
                for k in (
                    "event",
                    "object",
                    "firing",
                    "since",
                    "last_seen_at",
                    "last_alert_at",
                    "last_message",
                    "fingerprint",
                    "held_back",
                    "summary",
                )
            }
            if row is None:
                conn.execute(
                    alert_state.insert().values(
                        project=self.project, rule=occ.rule, key=occ.key, version=1, **values
                    )
                )
            else:
                done = conn.execute(
                    alert_state.update()
                    .where(self._pk(occ.rule, occ.key), alert_state.c.version == row["version"])
                    .values(version=version, **values)
                )
                if done.rowcount != 1:
                    raise _Lost
        return Decision(
            action=action,
            since=state.get("since") or (row or {}).get("since"),
            held_back=held,
            version=version,
            previous=row,
        )

    def give_back(self, occ: Occurrence, decision: Decision) -> None:
        """No destination took the alert: restore the key's last alert, so the next
        occurrence is not throttled by a message nobody received (only if no other process
        moved the state since)."""
        before = decision.previous or {}
        with self.engine.begin() as conn:
            conn.execute(
                alert_state.update()
                .where(self._pk(occ.rule, occ.key), alert_state.c.version == decision.version)
                .values(
                    version=decision.version + 1,
                    last_alert_at=before.get("last_alert_at"),
                    last_message=before.get("last_message"),
                    held_back=int(before.get("held_back") or 0) + 1,
                )
            )

    def record(
        self,
        *,
        rule: str,
        key: str,
        event: str,
        object: str | None,
        run_id: str | None,
        at: datetime,
        action: str,
        severity: str | None,
        title: str,
        delivered: int = 0,
        failed: int = 0,
        errors: Sequence[str] = (),
    ) -> None:
        """One line of the alert history (title and errors redacted)."""
        with self.engine.begin() as conn:
            conn.execute(
                alert_log.insert().values(
                    project=self.project,
                    rule=rule,
                    key=key,
                    event=event,
                    object=object,
                    run_id=run_id,
                    at=at,
                    action=action,
                    severity=severity,
                    title=redact(title),
                    delivered=delivered,
                    failed=failed,
                    error=redact("; ".join(errors)) if errors else None,
                )
            )

    def states(self) -> list[StateRow]:
        """Every key of the project, firing ones first, newest first."""
        c = alert_state.c
        query = (
            sa.select(alert_state)
            .where(c.project == self.project)
            .order_by(c.firing.desc(), c.last_seen_at.desc(), c.rule, c.key)
        )
        with self.engine.connect() as conn:
            return [
                StateRow(
                    rule=r.rule,
                    key=r.key,
                    event=r.event,
                    object=r.object,
                    firing=bool(r.firing),
                    since=r.since,
                    last_seen_at=r.last_seen_at,
                    last_alert_at=r.last_alert_at,
                    last_message=r.last_message,
                    held_back=int(r.held_back),
                    summary=r.summary,
                )
                for r in conn.execute(query)
            ]

    def history(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest `limit` lines of the alert history, newest first."""
        c = alert_log.c
        query = (
            sa.select(alert_log)
            .where(c.project == self.project)
            .order_by(c.at.desc(), c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]


class _Lost(Exception):
    """Another process changed the state row between our read and our write."""


def _prune(ctx: PruneContext) -> list[Prune]:
    """Retention: the alert history is kept as long as logs; a key's state once it is quiet
    and was last seen before that (a firing key stays: its recovery is still owed)."""
    cutoff = ctx.cutoff("logs")
    s, log = alert_state.c, alert_log.c
    return [
        Prune("logs", alert_log, sa.and_(log.project == ctx.project, log.at < cutoff)),
        Prune(
            "logs",
            alert_state,
            sa.and_(s.project == ctx.project, s.firing.is_(False), s.last_seen_at < cutoff),
        ),
    ]


register("logs", _prune)
