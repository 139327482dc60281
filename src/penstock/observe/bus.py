"""A small synchronous, typed event bus: steps emit, sinks (the metadata store...) handle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from penstock.observe.events import LOG_LEVELS, Event, LogLevel, LogRecord
from penstock.observe.redaction import redact_value
from penstock.secrets import redact

Handler = Callable[[Event], None]


class EventBus:
    """Calls every subscribed handler, in subscription order, for each emitted event.

    Delivery is synchronous; an exception raised by a handler propagates to the emitter
    (handlers after it do not see that event).
    """

    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def emit(self, event: Event) -> None:
        for handler in tuple(self._handlers):
            handler(event)

    def log(
        self,
        run_id: str,
        level: LogLevel,
        message: str,
        *,
        object: str | None = None,
        batch_id: str | None = None,
        **fields: Any,
    ) -> None:
        """Build a `LogRecord` (message and string field values redacted) and emit it."""
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r}; expected one of {LOG_LEVELS}")
        self.emit(
            LogRecord(
                run_id=run_id,
                level=level,
                message=redact(message),
                object=object,
                batch_id=batch_id,
                fields={k: redact_value(v) for k, v in fields.items()},
            )
        )
