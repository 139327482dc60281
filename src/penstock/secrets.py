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
# `_secrets` longest first, as `redact` goes through them: sorted when one is registered, not
# at every call (logs, errors and each batch's rules pass ~30,000 texts through `redact` on
# 1,000 small files; with three secrets a call took 1.3 us, sorting them under the lock)
_ordered: tuple[str, ...] = ()


def register_secret(value: str) -> None:
    """Remember a resolved secret value so that `redact` hides it."""
    global _ordered
    if value:
        with _lock:
            _secrets.add(value)
            _ordered = tuple(sorted(_secrets, key=len, reverse=True))


def is_secret(value: str) -> bool:
    """Was `value` resolved from a reference (and so is redacted)?"""
    with _lock:
        return value in _secrets


def redact(text: str) -> str:
    """Return `text` with every registered secret replaced by `***` (longest first)."""
    ordered = _ordered  # replaced whole, never changed: read without the lock
    if not ordered or not text:
        return text
    for secret in ordered:
        if secret in text:
            text = text.replace(secret, "***")
    return text


def clear_secrets() -> None:
    """Forget every registered secret (tests use this between projects)."""
    global _ordered
    with _lock:
        _secrets.clear()
        _ordered = ()
