"""The log reads behind `penstock logs` on both store backends: filters, and `follow`, which
yields records as they are written (here written between its polls) and ends with the run, or
when the run's process is gone."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from penstock.errors import UsageError
from penstock.observe import (
    EventBus,
    LogRecord,
    MetadataStore,
    RunFinished,
    RunStarted,
)
from penstock.observe.log_reads import Ended, follow, read_logs, resolve_run
from penstock.observe.records import LogRow


def started(bus: EventBus, run: str, pid: int | None = None) -> None:
    bus.emit(
        RunStarted(
            run_id=run,
            project="p",
            project_hash="h",
            command="run",
            selector=None,
            pid=pid,
            host=socket.gethostname() if pid else None,
        )
    )


def line(bus: EventBus, run: str, text: str, level: str = "info", obj: str = "o") -> None:
    bus.emit(LogRecord(run_id=run, level=level, message=text, object=obj, step_id="s1"))  # type: ignore[arg-type]


@pytest.fixture
def bus(store: MetadataStore) -> EventBus:
    b = EventBus()
    b.subscribe(store.handle)
    return b


def test_read_logs_filters_and_resolves_runs(store: MetadataStore, bus: EventBus) -> None:
    started(bus, "abc123")
    started(bus, "abd456")
    line(bus, "abc123", "one")
    line(bus, "abc123", "two", level="warning", obj="x")
    line(bus, "abc123", "three", level="error")
    with store.reading("read logs") as rows:
        assert resolve_run(rows, "abc") == "abc123"
        with pytest.raises(UsageError, match="more than one run"):
            resolve_run(rows, "ab")
        with pytest.raises(UsageError, match="no run has an id starting with 'a%'"):
            resolve_run(rows, "a%")
        every = read_logs(rows, "abc123")
        assert [r.message for r in every] == ["one", "two", "three"]
        assert every[0].step_id == "s1"
        warned = read_logs(rows, "abc123", level="warning")
        assert [r.message for r in warned] == ["two", "three"]
        assert [r.message for r in read_logs(rows, "abc123", object="x")] == ["two"]
        assert [r.message for r in read_logs(rows, "abc123", after=every[0].id)] == [
            "two",
            "three",
        ]


def test_follow_yields_lines_as_they_are_written_until_the_run_ends(
    store: MetadataStore, bus: EventBus
) -> None:
    started(bus, "r")
    line(bus, "r", "before the tail")
    # what the run writes while the tail waits between polls
    later: Iterator[list[str]] = iter([["a", "b"], [], ["c"], ["END"]])
    polls: list[int] = []

    def meanwhile(_: float) -> None:
        polls.append(1)
        for text in next(later):
            if text == "END":
                bus.emit(RunFinished(run_id="r", status="failed", error="boom"))
            else:
                line(bus, "r", text)

    with store.reading("follow") as rows:
        got = list(follow(rows, "r", sleep=meanwhile))
    texts = [g.message for g in got if isinstance(g, LogRow)]
    assert texts == ["before the tail", "a", "b", "c"]
    end = got[-1]
    assert isinstance(end, Ended) and not end.gone
    assert (end.state.status, end.state.ended_at is not None) == ("failed", True)
    assert len(polls) == 4


def test_follow_ends_when_the_runs_process_is_gone(store: MetadataStore, bus: EventBus) -> None:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as gone:
        gone.wait()  # reaped: its pid names no process now
    started(bus, "killed", pid=gone.pid)
    line(bus, "killed", "last words")
    with store.reading("follow") as rows:
        got = list(follow(rows, "killed", sleep=lambda _: pytest.fail("should not wait")))
    assert [g.message for g in got if isinstance(g, LogRow)] == ["last words"]
    end = got[-1]
    assert isinstance(end, Ended) and end.gone and end.state.pid == gone.pid
