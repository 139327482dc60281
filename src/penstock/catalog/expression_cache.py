"""Check expressions and patterns already found valid, remembered in the project's
`.penstock/` directory.

Vetting an expression (catalog/expressions.py) imports sqlglot and binds it in DuckDB: about
0.12 s that every command loading the project would pay again, the largest part of a run
with nothing new. While a project loads, `remembered(path)` makes the expressions found valid
before skip the vetting. An entry is the hash of the expression, the object's column types,
penstock's version and the installed sqlglot and DuckDB (their files' modification times),
so an upgrade, a changed column type or an edited expression vets it again. Only valid
expressions are kept: a problem is found and reported afresh each time. A cache that cannot
be read or written is ignored (a read-only project still loads).

Patterns (a column's `pattern:` regular expression, a `format:` strftime pattern) are vetted
by DuckDB in the process's scratch database, whose opening alone costs ~0.02 s a run; they are
remembered the same way (`vetted`), keyed by what they are and their text.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from penstock import __version__

CACHE_FILE = Path(".penstock") / "valid_checks.json"
MAX_ENTRIES = 2048

_current: ContextVar[ExpressionCache | None] = ContextVar("expression_cache", default=None)


@lru_cache(maxsize=1)
def _engines() -> str:
    """What the vetting depends on besides the expression: penstock, sqlglot and DuckDB as
    installed (a reinstall changes the files' modification times)."""
    stamps = [__version__]
    for package in ("sqlglot", "duckdb"):
        spec = importlib.util.find_spec(package)
        origin = spec.origin if spec is not None else None
        stamps.append(str(Path(origin).stat().st_mtime_ns) if origin else "-")
    return "/".join(stamps)


class ExpressionCache:
    """The valid expressions of one project's cache file (a JSON list of hashes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.known: set[str] = set()
        self.added = False
        with contextlib.suppress(OSError, ValueError, TypeError):
            entries = json.loads(path.read_text(encoding="utf-8"))
            self.known = {e for e in entries if isinstance(e, str)}

    @staticmethod
    def key(text: str, columns: Mapping[str, str], kind: str | None = None) -> str:
        """A check expression's entry (over `columns`), or with `kind` a pattern's."""
        parts: list[object] = [_engines(), text, sorted(columns.items())]
        if kind is not None:
            parts = [_engines(), kind, text]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def is_valid(self, text: str, columns: Mapping[str, str], kind: str | None = None) -> bool:
        return self.key(text, columns, kind) in self.known

    def add_valid(self, text: str, columns: Mapping[str, str], kind: str | None = None) -> None:
        key = self.key(text, columns, kind)
        if key not in self.known:
            self.known.add(key)
            self.added = True

    def save(self) -> None:
        if not self.added:
            return
        entries = sorted(self.known)[-MAX_ENTRIES:]
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(entries), encoding="utf-8")
            tmp.replace(self.path)


@contextlib.contextmanager
def remembered(path: Path) -> Iterator[ExpressionCache]:
    """Within the block, expressions vetted valid are looked up in and added to `path`."""
    cache = ExpressionCache(path)
    token = _current.set(cache)
    try:
        yield cache
    finally:
        _current.reset(token)
        cache.save()


def current() -> ExpressionCache | None:
    return _current.get()


def vetted(kind: str, text: str, problem: Callable[[], str | None]) -> str | None:
    """`problem()` (why `text`, a `kind` of pattern, is refused, or None), unless the
    project's cache knows `text` as valid; a valid answer is remembered."""
    cache = current()
    if cache is not None and cache.is_valid(text, {}, kind):
        return None
    found = problem()
    if found is None and cache is not None:
        cache.add_valid(text, {}, kind)
    return found
