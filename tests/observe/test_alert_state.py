"""The alert state machine in the metadata store (both backends): throttle per key, duplicates,
reminders, one recovery per alert, a claim given back, one winner among concurrent deciders,
retention."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from penstock.observe import MetadataStore
from penstock.observe.alert_state import AlertLedger, Decision, Occurrence
from penstock.observe.retention import collect
from penstock.observe.schema import alert_log, alert_state

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = 3600.0


def fire(at: datetime, fingerprint: str, *, key: str = "check_failed:orders") -> Occurrence:
    return Occurrence(
        rule="ops",
        key=key,
        event=key.split(":")[0],
        object="orders",
        firing=True,
        at=at,
        fingerprint=fingerprint,
        summary=f"seen {fingerprint}",
    )


def clear(at: datetime, *, key: str = "check_failed:orders") -> Occurrence:
    return Occurrence(
        rule="ops", key=key, event=key.split(":")[0], object="orders", firing=False, at=at
    )


def action(decision: Decision | None) -> str | None:
    return None if decision is None else decision.action


def test_throttle_duplicates_reminders_and_one_recovery(store: MetadataStore) -> None:
    ledger = AlertLedger(store, "shop")

    def decide(occ: Occurrence, recovery: bool = True) -> Decision | None:
        return ledger.decide(occ, throttle_s=HOUR, recovery=recovery)

    first = decide(fire(T0, "b1"))
    assert first is not None and (first.action, first.held_back) == ("alert", 0)
    assert decide(fire(T0 + timedelta(minutes=1), "b1")) is None  # the same occurrence
    held = decide(fire(T0 + timedelta(minutes=5), "b2"))
    assert held is not None and (held.action, held.held_back) == ("throttled", 1)
    held = decide(fire(T0 + timedelta(minutes=50), "b3"))
    assert held is not None and (held.action, held.held_back) == ("throttled", 2)
    reminder = decide(fire(T0 + timedelta(minutes=61), "b4"))
    assert reminder is not None
    assert (reminder.action, reminder.held_back, reminder.since) == ("reminder", 2, T0)
    # a duplicate of a firing condition is reminded of once the window passed, never before
    assert decide(fire(T0 + timedelta(minutes=90), "b4")) is None
    late = decide(fire(T0 + timedelta(minutes=122), "b4"))
    assert action(late) == "reminder"

    recovered = decide(clear(T0 + timedelta(hours=2, minutes=10)))
    assert action(recovered) == "recovery"
    assert (
        decide(clear(T0 + timedelta(hours=2, minutes=15))) is None
    )  # nothing firing: nothing to say

    # a relapse within the window of the last alert is held back; clearing it then owes
    # no second recovery (the last message said it recovered)
    relapse = decide(fire(T0 + timedelta(hours=2, minutes=20), "b5"))
    assert relapse is not None and (relapse.action, relapse.held_back) == ("throttled", 1)
    assert action(decide(clear(T0 + timedelta(hours=2, minutes=30)))) == "cleared"
    # after the window a new incident is an alert (not a reminder), counting what was held
    again = decide(fire(T0 + timedelta(hours=5), "b6"))
    assert again is not None and (again.action, again.held_back) == ("alert", 1)
    assert action(decide(clear(T0 + timedelta(hours=6)), recovery=False)) == "cleared"

    (state,) = ledger.states()
    assert (state.firing, state.last_message, state.held_back, state.summary) == (
        False,
        "alert",
        0,
        "seen b6",
    )


def test_a_one_shot_event_is_sent_once_per_fingerprint(store: MetadataStore) -> None:
    ledger = AlertLedger(store, "shop")
    drift = Occurrence(
        rule="ops",
        key="schema_drift:orders",
        event="schema_drift",
        object="orders",
        firing=True,
        at=T0,
        fingerprint="drift:b1",
        one_shot=True,
    )
    assert action(ledger.decide(drift, throttle_s=60, recovery=True)) == "alert"
    later = Occurrence(**{**drift.__dict__, "at": T0 + timedelta(days=1)})
    assert ledger.decide(later, throttle_s=60, recovery=True) is None
    other = Occurrence(**{**later.__dict__, "fingerprint": "drift:b2"})
    assert action(ledger.decide(other, throttle_s=60, recovery=True)) == "alert"
    (state,) = ledger.states()
    assert state.firing is False  # nothing clears a drift: it never fires as a condition


def test_a_claim_nobody_received_is_given_back(store: MetadataStore) -> None:
    ledger = AlertLedger(store, "shop")
    occ = fire(T0, "b1")
    claimed = ledger.decide(occ, throttle_s=HOUR, recovery=True)
    assert claimed is not None and claimed.action == "alert"
    ledger.give_back(occ, claimed)
    retry = ledger.decide(fire(T0 + timedelta(minutes=1), "b2"), throttle_s=HOUR, recovery=True)
    assert retry is not None and (retry.action, retry.held_back) == ("alert", 1)
    # and without a delivered alert, clearing owes no recovery
    ledger.give_back(fire(T0 + timedelta(minutes=1), "b2"), retry)
    assert action(
        ledger.decide(clear(T0 + timedelta(minutes=2)), throttle_s=HOUR, recovery=True)
    ) == ("cleared")


def test_concurrent_deciders_send_once(store: MetadataStore) -> None:
    """Eight threads (each with its own connection) meet the same new condition at once:
    exactly one alert; the others see it firing (a duplicate) and do nothing."""
    ledger = AlertLedger(store, "shop")
    barrier = threading.Barrier(8)
    results: list[str | None] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        barrier.wait()
        decision = ledger.decide(
            fire(T0 + timedelta(seconds=n), "same", key="sla_missed:orders:freshness"),
            throttle_s=HOUR,
            recovery=True,
        )
        with lock:
            results.append(action(decision))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 8
    assert results.count("alert") == 1 and results.count(None) == 7, results


def test_retention_prunes_quiet_keys_and_old_history_only(store: MetadataStore) -> None:
    ledger = AlertLedger(store, "shop")
    for key in ("check_failed:orders", "source_down:landing"):
        decision = ledger.decide(fire(T0, "x", key=key), throttle_s=HOUR, recovery=True)
        assert decision is not None
        ledger.record(
            rule="ops", key=key, event=key.split(":")[0], object="orders", run_id=None,
            at=T0, action=decision.action, severity="error", title=f"{key} failed",
            delivered=1,
        )  # fmt: skip
    ledger.decide(clear(T0, key="source_down:landing"), throttle_s=HOUR, recovery=True)
    other = AlertLedger(store, "another")
    other.decide(fire(T0, "x"), throttle_s=HOUR, recovery=True)
    other.record(
        rule="ops", key="k", event="run_failed", object=None, run_id=None, at=T0,
        action="alert", severity="error", title="t", delivered=1,
    )  # fmt: skip
    periods = {
        k: timedelta(days=30)
        for k in ("runs", "logs", "metrics", "dq_results", "lineage", "batch_decisions")
    }
    now = T0 + timedelta(days=31)
    dry = collect(store, periods, project="shop", now=now, dry_run=True)
    assert (dry.rows["alert_log"], dry.rows["alert_state"]) == (2, 1)
    collect(store, periods, project="shop", now=now)
    with store.engine.connect() as conn:
        states = conn.execute(
            sa.select(alert_state.c.project, alert_state.c.key).order_by(alert_state.c.project)
        ).all()
        history = conn.execute(sa.select(alert_log.c.project)).scalars().all()
    # the firing key stays (its recovery is owed); the other project is not touched
    assert [tuple(s) for s in states] == [
        ("another", "check_failed:orders"),
        ("shop", "check_failed:orders"),
    ]
    assert history == ["another"]
