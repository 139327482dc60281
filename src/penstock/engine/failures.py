"""How a step's exception becomes its error: one line for people, the traceback for the log.

A `PenstockError` says what went wrong in its message and fields. Anything else is a bug or an
unforeseen condition: it still fails only its step, with the exception's type and first line
as the message and the full traceback in the log record.
"""

from __future__ import annotations

import traceback
from typing import Any

from penstock.errors import PenstockError, first_line
from penstock.secrets import redact


def describe(exc: Exception) -> tuple[str, dict[str, Any]]:
    """(one-line message, structured log fields) for a step that raised `exc`."""
    if isinstance(exc, PenstockError):
        return exc.message, dict(exc.fields)
    message = redact(f"unexpected error: {type(exc).__name__}: {first_line(exc)}")
    trace = "".join(traceback.format_exception(exc))
    return message, {"error_type": type(exc).__name__, "traceback": redact(trace)}


def skip_command(object_name: str, batch_id: str) -> str:
    """The command that skips a batch, ready to copy (a batch id prefix is enough)."""
    return f"penstock batches skip {object_name} {batch_id} --reason TEXT"


def skip_hint(object_name: str, batch_id: str) -> str:
    """What to do about a batch that cannot load: the later batches of its object wait."""
    return (
        f"later batches of '{object_name}' wait for it: fix the cause, or deliver a corrected "
        f"file and skip this batch: {skip_command(object_name, batch_id)}"
    )
