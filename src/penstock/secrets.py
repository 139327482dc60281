"""Secret values resolved from `${env:...}` / `${file:...}` references, and their redaction.

Every value resolved from a reference is registered here; `redact` replaces each registered
value in a text by `***`. Logs, errors, metadata and alerts pass their text through it, so a
credential never leaves the process in clear.

Every non-empty value is redacted, however short. A value shorter than `SAFE_SECRET_LEN`
characters is redacted too, but it also hides every harmless occurrence of those characters
in other text (and a short credential is weak anyway): `penstock check` warns about it.
"""

from __future__ import annotations

import threading

SAFE_SECRET_LEN = 4
_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember a resolved secret value so that `redact` hides it."""
    if value:
        with _lock:
            _secrets.add(value)


def is_secret(value: str) -> bool:
    """Was `value` resolved from a reference (and so is redacted)?"""
    with _lock:
        return value in _secrets


def redact(text: str) -> str:
    """Return `text` with every registered secret replaced by `***` (longest first)."""
    if not _secrets or not text:
        return text
    with _lock:
        ordered = sorted(_secrets, key=len, reverse=True)
    for secret in ordered:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def clear_secrets() -> None:
    """Forget every registered secret (tests use this between projects)."""
    with _lock:
        _secrets.clear()
