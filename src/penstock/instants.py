"""Dates and times given on the command line (`--before`, `--as-of`)."""

from __future__ import annotations

from datetime import datetime

from penstock.errors import UsageError


def parse_instant(text: str, option: str) -> datetime:
    """A date (its midnight) or an ISO timestamp, with its offset if it has one; a clear
    error naming `option` otherwise."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: give a date (2026-01-31) or a timestamp (2026-01-31T12:00)",
            value=text,
        ) from None
