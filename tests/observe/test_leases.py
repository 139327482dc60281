"""Leases in the metadata store (observe/leases.py, engine/lease.py), on SQLite and on a real
PostgreSQL: acquire, renew by heartbeat, release, expiry, take-over of a dead holder, and
real processes racing for one lease (exactly one wins)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from penstock.engine.lease import Lease
from penstock.errors import LeaseHeld
from penstock.observe import MetadataStore
from penstock.observe.leases import Holder, LeaseStore, pid_alive

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def holder(name: str, *, pid: int | None = None, host: str | None = None) -> Holder:
    me = Holder.this_process(name)
    return Holder(me.holder_id, name, pid or me.pid, host or me.host)


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not pid_alive(gone.pid)
    return gone.pid


def test_one_holder_at_a_time_then_the_next(store: MetadataStore) -> None:
    leases = LeaseStore(store.engine, "shop")
    a, b = holder("run"), holder("rebuild")
    assert leases.try_acquire("project", a, ttl=60, now=T0) is None
    kept = leases.try_acquire("project", b, ttl=60, now=T0 + timedelta(seconds=1))
    assert kept is not None and kept.holder.holder_id == a.holder_id
    assert "PID" in kept.describe() and kept.holder.host in kept.describe()
    # another project, another name: independent
    assert LeaseStore(store.engine, "other").try_acquire("project", b, ttl=60, now=T0) is None
    assert leases.try_acquire("scheduler", b, ttl=60, now=T0) is None
    # b cannot release a's lease; a can
    assert not leases.release("project", b)
    assert leases.release("project", a)
    assert leases.try_acquire("project", b, ttl=60, now=T0 + timedelta(seconds=2)) is None
    assert leases.current("project").holder.holder_id == b.holder_id  # type: ignore[union-attr]


def test_renew_extends_and_an_expired_lease_is_taken_over(store: MetadataStore) -> None:
    leases = LeaseStore(store.engine, "shop")
    a, b = holder("run"), holder("run")
    assert leases.try_acquire("project", a, ttl=10, now=T0) is None
    assert leases.renew("project", a, ttl=10, now=T0 + timedelta(seconds=8))
    row = leases.current("project")
    assert row is not None and row.expires_at == T0 + timedelta(seconds=18)
    # still held at 17s (renewed), expired at 18s: b takes it
    assert leases.try_acquire("project", b, ttl=10, now=T0 + timedelta(seconds=17)) is not None
    assert leases.try_acquire("project", b, ttl=10, now=T0 + timedelta(seconds=18)) is None
    # a lost it: it can neither renew nor release b's lease
    assert not leases.renew("project", a, ttl=10, now=T0 + timedelta(seconds=19))
    assert not leases.release("project", a)
    assert leases.current("project").holder.holder_id == b.holder_id  # type: ignore[union-attr]


def test_a_dead_holder_on_this_host_is_taken_over_at_once(store: MetadataStore) -> None:
    leases = LeaseStore(store.engine, "shop")
    dead = holder("run", pid=dead_pid())
    assert leases.try_acquire("project", dead, ttl=3600, now=T0) is None
    me = holder("run")
    assert leases.try_acquire("project", me, ttl=60, now=T0 + timedelta(seconds=1)) is None
    assert leases.current("project").holder.holder_id == me.holder_id  # type: ignore[union-attr]


def test_a_holder_on_another_host_waits_for_expiry(store: MetadataStore) -> None:
    leases = LeaseStore(store.engine, "shop")
    elsewhere = holder("run", pid=dead_pid(), host="another-host")
    assert leases.try_acquire("project", elsewhere, ttl=60, now=T0) is None
    me = holder("run")
    # its pid means nothing here: only expiry frees it
    assert leases.try_acquire("project", me, ttl=60, now=T0 + timedelta(seconds=30)) is not None
    assert leases.try_acquire("project", me, ttl=60, now=T0 + timedelta(seconds=61)) is None


def test_the_heartbeat_keeps_a_short_lease_and_release_deletes_it(store: MetadataStore) -> None:
    first = Lease(store, "shop", "project", command="run", ttl=0.6)
    first.acquire(0)
    try:
        first.note_run("a" * 32, "run")
        time.sleep(1.5)  # more than twice the ttl: only the heartbeat keeps it
        other = Lease(store, "shop", "project", command="run", ttl=0.6)
        kept = other.try_acquire()
        assert kept is not None and kept.holder.holder_id == first.holder.holder_id
        assert kept.holder.run_id == "a" * 32 and kept.describe().startswith("run aaaaaaaa")
        assert not first.lost
    finally:
        first.release()
    assert LeaseStore(store.engine, "shop").all() == []  # bounded: a released lease is gone


def test_acquire_waits_for_a_release_or_gives_up_naming_the_holder(store: MetadataStore) -> None:
    first = Lease(store, "shop", "project", command="run")
    first.acquire(0)
    heard: list[str] = []
    second = Lease(store, "shop", "project", command="run")
    started = time.monotonic()
    with pytest.raises(LeaseHeld) as held:
        second.acquire(0.4, heard.append)
    assert time.monotonic() - started >= 0.4
    assert f"PID {first.holder.pid}" in held.value.message and "waited 0.4s" in held.value.message
    assert held.value.fields["holder_pid"] == first.holder.pid
    assert len(heard) == 1 and "waiting up to 0.4s" in heard[0]
    threading.Timer(0.3, first.release).start()
    second.acquire(10)
    assert second.held
    second.release()


RACER = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from penstock.observe import MetadataStore
    from penstock.observe.leases import Holder, LeaseStore
    url, folder = sys.argv[1], Path(sys.argv[2])
    store = MetadataStore(url)
    leases = LeaseStore(store.engine, "shop")
    me = Holder.this_process("run")
    with store.engine.connect():
        pass  # connected: the race is about the statements, not the connecting
    print("ready", flush=True)
    while not (folder / "go").exists():
        time.sleep(0.001)
    kept = leases.try_acquire("project", me, ttl=60, now=datetime.now(UTC))
    print("won" if kept is None else "lost", flush=True)
    while not (folder / "done").exists():  # alive while the others look
        time.sleep(0.01)
    store.close()
    """
)


def race(url: str, racers: int, tmp_path: Path) -> list[str]:
    """`racers` processes, all connected, try to take one lease at the same moment."""
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), url, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(racers)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        (tmp_path / "go").touch()
        outs = [p.stdout.readline().strip() for p in procs if p.stdout is not None]
    finally:
        (tmp_path / "done").touch()
        for p in procs:
            p.communicate(timeout=60)
    assert all(p.returncode == 0 for p in procs), outs
    return outs


def test_processes_racing_for_a_free_lease_one_wins(
    store_url: str, store: MetadataStore, tmp_path: Path
) -> None:
    outs = race(store_url, 4, tmp_path)
    assert sorted(outs) == ["lost", "lost", "lost", "won"]


def test_processes_racing_for_an_expired_lease_one_wins(
    store_url: str, store: MetadataStore, tmp_path: Path
) -> None:
    stale = holder("run", host="gone-host")
    LeaseStore(store.engine, "shop").try_acquire(
        "project", stale, ttl=1, now=datetime.now(UTC) - timedelta(hours=1)
    )
    outs = race(store_url, 4, tmp_path)
    assert sorted(outs) == ["lost", "lost", "lost", "won"]


def test_a_holder_that_lost_its_lease_knows_and_can_take_it_again(store: MetadataStore) -> None:
    said: list[str] = []
    first = Lease(store, "shop", "scheduler", command="schedule", on_lost=said.append)
    first.acquire(0)
    try:
        # it stalled past its expiry and another process took the lease over
        thief = holder("schedule")
        later = datetime.now(UTC) + timedelta(hours=1)
        leases = LeaseStore(store.engine, "shop")
        assert leases.try_acquire("scheduler", thief, ttl=60, now=later) is None
        assert not first.renew() and first.lost
        assert said == ["lost the scheduler of 'shop': it expired and another process took it over"]
        assert leases.release("scheduler", thief)
        assert first.try_acquire() is None and first.held and not first.lost
        assert first._thread is not None and first._thread.is_alive()  # beating again
    finally:
        first.release()
