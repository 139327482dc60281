"""What follows from a spec alone, worked out once per spec object.

A run with thousands of small files asks the same questions of one object's contract for
every batch (its reasons and their dimensions, its rules as check results, its columns'
lineage): `per_spec` keeps the answer per spec *object* (specs are frozen, so the answer
cannot go stale), keyed by identity with the spec held, so an id is never reused while its
entry lives. A few specs at most are alive at once; the memo is emptied past `LIMIT`.

Any immutable object that many events share serves as well: the lineage sinks key on the
schema tuple (`Dataset.fields`) that every batch of an object shares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

S = TypeVar("S")
R = TypeVar("R")

LIMIT = 256


def per_spec(fn: Callable[[S], R]) -> Callable[[S], R]:
    """`fn(spec)`, computed once per spec object. The answer is shared: callers must not
    change it (return an immutable value, or copy it in a wrapper)."""
    memo: dict[int, tuple[S, R]] = {}

    def wrapper(spec: S) -> R:
        found = memo.get(id(spec))
        if found is not None and found[0] is spec:
            return found[1]
        value = fn(spec)
        if len(memo) >= LIMIT:
            memo.clear()
        memo[id(spec)] = (spec, value)
        return value

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    wrapper.__qualname__ = fn.__qualname__
    return wrapper
