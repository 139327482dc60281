"""Queued sinks: their own thread and bounded queue. A slow sink does not slow the emitter, a
failing one never reaches it, a full queue drops (and counts) instead of blocking, flush
waits for the sink to catch up, close gives up on a hung sink after its timeout."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from penstock.observe import (
    DeliveryPolicy,
    Event,
    EventBus,
    LogRecord,
    RunFinished,
    RunStarted,
    StepStarted,
)


def log(n: int) -> LogRecord:
    return LogRecord(run_id="r", level="info", message=f"m{n}")


def test_a_queued_sink_gets_every_event_in_order_on_its_own_thread() -> None:
    got: list[tuple[str, str]] = []
    bus = EventBus()
    bus.subscribe(
        lambda e: got.append((threading.current_thread().name, e.message)),  # type: ignore[union-attr]
        name="mine",
        queued=True,
        events=[LogRecord],
    )
    for n in range(200):
        bus.emit(log(n))
    bus.emit(RunStarted(run_id="r", project="p", project_hash="h", command="run", selector=None))
    assert bus.flush()
    assert [m for _, m in got] == [f"m{n}" for n in range(200)]  # RunStarted filtered out
    assert {t for t, _ in got} == {"penstock-sink:mine"}
    bus.close()


def test_a_slow_sink_does_not_slow_the_emitter_and_flush_waits_for_it() -> None:
    done: list[int] = []

    def slow(event: Event) -> None:
        time.sleep(0.05)
        done.append(1)

    bus = EventBus()
    bus.subscribe(slow, name="slow", queued=True)
    started = time.monotonic()
    for n in range(20):  # 20 x 50 ms of sink work
        bus.emit(log(n))
    emitted = time.monotonic() - started
    assert emitted < 0.2, emitted
    assert len(done) < 20
    assert bus.flush()
    assert len(done) == 20
    assert time.monotonic() - started >= 0.9
    bus.close()


def test_a_failing_queued_sink_never_reaches_the_emitter(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise OSError("disk full")

    bus = EventBus()
    policy = DeliveryPolicy(retry_delays=(0.0,), cooldown_s=60.0)
    bus.subscribe(broken, name="lineage file", queued=True, policy=policy)
    bus.subscribe(seen.append)
    for n in range(5):
        bus.emit(log(n))
    bus.flush()
    assert len(seen) == 5
    assert bus.dropped == {"lineage file": 5}  # the first tried twice, the rest rested
    err = capsys.readouterr().err
    assert err.count("lineage file could not record LogRecord (tried 2x): disk full") == 1
    bus.close()


def test_a_full_queue_drops_events_but_a_run_end_waits_for_room(
    capsys: pytest.CaptureFixture[str],
) -> None:
    release, busy = threading.Event(), threading.Event()
    got: list[Event] = []

    def stuck(event: Event) -> None:
        busy.set()
        release.wait(5)
        got.append(event)

    bus = EventBus()
    bus.subscribe(stuck, name="stuck", queued=True, policy=DeliveryPolicy(queue_size=3))
    bus.emit(log(0))
    assert busy.wait(5)
    for n in range(1, 10):
        bus.emit(log(n))
    # one in delivery, three queued, six dropped
    assert bus.dropped == {"stuck": 6}
    assert "stuck is falling behind (its queue of 3 events is full)" in capsys.readouterr().err
    threading.Timer(0.2, release.set).start()
    end = RunFinished(run_id="r", status="success")
    bus.emit(end)  # precious: waits for room instead of being dropped
    assert bus.flush()
    assert got[-1] is end and len(got) == 5
    bus.close()


def test_close_gives_up_on_a_hung_sink_after_its_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    hang = threading.Event()
    closed: list[bool] = []

    class Hung:
        def handle(self, event: Event) -> None:
            hang.wait(30)

        def close(self) -> None:
            closed.append(True)

    bus = EventBus()
    bus.subscribe(Hung(), name="webhook", queued=True, policy=DeliveryPolicy(flush_timeout_s=0.3))
    for n in range(3):
        bus.emit(log(n))
    started = time.monotonic()
    assert not bus.flush()
    bus.close()
    assert time.monotonic() - started < 2
    assert bus.dropped == {"webhook": 3}
    assert closed == []  # not closed under the feet of its still busy thread
    err = capsys.readouterr().err
    assert "webhook has not caught up after 0.3s" in err
    assert "webhook did not catch up within 0.3s: 3 event(s) dropped" in err
    hang.set()


def test_a_sink_object_is_flushed_after_the_events_before_the_flush_then_closed() -> None:
    calls: list[str] = []

    class Sink:
        def handle(self, event: Event) -> None:
            calls.append(type(event).__name__)

        def flush(self) -> None:
            calls.append("flush")

        def close(self) -> None:
            calls.append("close")

    bus = EventBus()
    bus.subscribe(Sink(), name="s", queued=True)
    bus.emit(StepStarted(run_id="r", step_id="s", object="o", batch_id=None, step="load"))
    bus.flush()
    bus.emit(log(1))
    bus.close()
    assert calls == ["StepStarted", "flush", "LogRecord", "close"]
    bus.emit(log(2))  # after close: dropped, counted, never delivered
    assert calls[-1] == "close" and bus.dropped == {"s": 1}


def test_flush_asks_every_queued_sink_at_once() -> None:
    """The first sink's flush can only finish once the second sink's flush has started: asked
    one after the other (the first waited on before the second is asked), the first would
    time out; asked together, both finish."""
    second_started = threading.Event()

    class First:
        def handle(self, event: Event) -> None: ...

        def flush(self) -> None:
            assert second_started.wait(5), "the second sink was not asked to flush"

    class Second:
        def handle(self, event: Event) -> None: ...

        def flush(self) -> None:
            second_started.set()

    bus = EventBus()
    policy = DeliveryPolicy(flush_timeout_s=2.0)
    bus.subscribe(First(), name="first", queued=True, policy=policy)
    bus.subscribe(Second(), name="second", queued=True, policy=policy)
    bus.emit(log(1))
    assert bus.flush()
    bus.close()


def test_a_flush_last_sink_flushes_after_the_others_caught_up() -> None:
    """The alerts sink evaluates SLOs from what the store sink records: subscribed
    `flush_last`, its flush starts only once every other queued sink has handled the events
    and run its own flush, however slow that one is (the SLO test raced without it)."""
    recorded: list[str] = []
    seen_at_flush: list[list[str]] = []

    class SlowStore:
        def handle(self, event: Event) -> None:
            time.sleep(0.2)
            recorded.append(type(event).__name__)

        def flush(self) -> None:
            time.sleep(0.1)
            recorded.append("flushed")

    class Reader:
        def handle(self, event: Event) -> None: ...

        def flush(self) -> None:
            seen_at_flush.append(list(recorded))

    bus = EventBus()
    policy = DeliveryPolicy(flush_timeout_s=5.0)
    bus.subscribe(Reader(), name="alerts", queued=True, policy=policy, flush_last=True)
    bus.subscribe(SlowStore(), name="store", queued=True, policy=policy)
    bus.emit(log(1))
    bus.emit(log(2))
    assert bus.flush()
    assert seen_at_flush == [["LogRecord", "LogRecord", "flushed"]]
    bus.close()


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is Linux's")
def test_a_queued_sink_runs_nicer_than_the_run() -> None:
    """A sink's thread yields the cores to the data path: on Linux it runs SINK_NICENESS
    nicer than the thread that emits (capped at 19); the emitting thread is unchanged."""
    import os

    from penstock.observe.queue import SINK_NICENESS

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    seen: list[int] = []
    bus = EventBus()
    bus.subscribe(lambda e: seen.append(niceness()), name="n", queued=True)
    before = niceness()
    bus.emit(log(1))
    assert bus.flush()
    bus.close()
    assert seen == [min(19, before + SINK_NICENESS)]
    assert niceness() == before
