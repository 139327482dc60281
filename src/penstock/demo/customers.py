"""Customers JSONL drops (SCD2): new customers, keys with two versions (different updated_at)
in the first drop, both of which enter the history, and in later drops changed versions (new
e-mail or segment, newer updated_at) and byte-identical repeats of earlier customers. Files
are small, so each is built whole, vectorised.

Lines look exactly like `json.dumps(obj, ensure_ascii=False)`: customer_id is a JSON number,
everything else a JSON string; a valid row may carry `"signup_date": null`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from penstock.demo import _common as c
from penstock.demo.expectations import FileExpectation

OBJECT = "customers"
COLUMNS = ("customer_id", "name", "email", "country", "segment", "signup_date", "updated_at")
SEGMENTS = ("consumer", "business")
DEFECT_KINDS = (
    "required:customer_id",
    "required:name",
    "required:updated_at",
    "type:customer_id",
    "type:signup_date",
    "type:updated_at",
    "max:signup_date",
    "in:segment",
    "pattern:email",
    "pattern:country",
    "malformed",
)
DEFECT_RATE = 0.015
DUPLICATE_RATE = 0.002
CHANGE_RATE = 0.05
REPEAT_RATE = 0.05
MIN_ROWS = 100


def _escaped(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(json.dumps(n, ensure_ascii=False)[1:-1] for n in names)


_FIRST_JSON = _escaped(c.FIRST_NAMES)
_LAST_JSON = _escaped(c.LAST_NAMES)


@dataclass
class CustomerCols(c.Columns):
    """Customer rows as numeric columns (vocabulary indices; signup -1 = NULL)."""

    customer_id: c.IntArray
    first: c.IntArray
    last: c.IntArray
    domain: c.IntArray
    country: c.IntArray
    segment: c.IntArray
    signup: c.IntArray  # days since 1970-01-01
    updated_at: c.IntArray


def random_customers(
    rng: np.random.Generator, ids: c.IntArray, win: tuple[int, int]
) -> CustomerCols:
    n = len(ids)
    signup = c.SIGNUP_START_DAY + rng.integers(0, 540, n)
    signup[rng.random(n) < 0.01] = -1
    return CustomerCols(
        customer_id=ids.astype(np.int64),
        first=rng.integers(0, len(c.FIRST_NAMES), n),
        last=rng.integers(0, len(c.LAST_NAMES), n),
        domain=rng.integers(0, len(c.DOMAINS), n),
        country=rng.integers(0, len(c.COUNTRIES), n),
        segment=(rng.random(n) < 0.3).astype(np.int64),
        signup=signup,
        updated_at=rng.integers(win[0], win[1], n),
    )


def _email(first: int, last: int, cid: int, domain: int) -> str:
    return f"{c.FIRST_SLUGS[first]}.{c.LAST_SLUGS[last]}{cid}@{c.DOMAINS[domain]}"


def render(cols: CustomerCols) -> Any:
    """JSON lines (with newline) of valid rows, as one Arrow string column."""
    cid = c.int_text(cols.customer_id)
    q = '"'
    first, last = cols.first, cols.last
    name = pc.binary_join_element_wise(
        '"name": "', c.vocab_text(_FIRST_JSON, first), " ", c.vocab_text(_LAST_JSON, last), q, ""
    )
    slugs = (c.vocab_text(c.FIRST_SLUGS, first), ".", c.vocab_text(c.LAST_SLUGS, last))
    domain = c.vocab_text(c.DOMAINS, cols.domain)
    email = pc.binary_join_element_wise('"email": "', *slugs, cid, "@", domain, q, "")
    signup = pc.coalesce(
        pc.binary_join_element_wise('"', c.date_text(cols.signup), '"', ""), "null"
    )

    def keyed(key: str, text: Any, quote: bool = True) -> Any:
        if quote:
            return pc.binary_join_element_wise(f'"{key}": "', text, q, "")
        return pc.binary_join_element_wise(f'"{key}": ', text, "")

    body = pc.binary_join_element_wise(
        keyed("customer_id", cid, quote=False),
        name,
        email,
        keyed("country", c.vocab_text(c.COUNTRIES, cols.country)),
        keyed("segment", c.vocab_text(SEGMENTS, cols.segment)),
        keyed("signup_date", signup, quote=False),
        keyed("updated_at", c.ts_text(cols.updated_at)),
        ", ",
    )
    return pc.binary_join_element_wise("{", body, "}\n", "")


def row_object(cols: CustomerCols, i: int) -> dict[str, Any]:
    """Row i as the JSON object `render` writes for it."""
    first, last, cid = int(cols.first[i]), int(cols.last[i]), int(cols.customer_id[i])
    signup = int(cols.signup[i])
    return {
        "customer_id": cid,
        "name": f"{c.FIRST_NAMES[first]} {c.LAST_NAMES[last]}",
        "email": _email(first, last, cid, int(cols.domain[i])),
        "country": c.COUNTRIES[int(cols.country[i])],
        "segment": SEGMENTS[int(cols.segment[i])],
        "signup_date": None if signup < 0 else c.fmt_date(signup),
        "updated_at": c.fmt_ts(int(cols.updated_at[i])),
    }


def defect_line(cols: CustomerCols, i: int, kind: str, occurrence: int) -> str:
    """Row i of `cols` (a valid row) with exactly one defect of `kind`, as a JSON line."""
    obj = row_object(cols, i)
    if kind == "required:name":
        obj["name"] = None
    elif kind.startswith("required:"):
        del obj[kind.split(":", 1)[1]]
    elif kind == "type:customer_id":
        obj["customer_id"] = f"C{obj['customer_id']}"
    elif kind == "type:signup_date":
        obj["signup_date"] = c.pick(("2024-13-45", "2024-02-30", "last spring"), occurrence)
    elif kind == "type:updated_at":
        obj["updated_at"] = c.pick(("2024-02-30 08:00:00", "not a date"), occurrence)
    elif kind == "max:signup_date":
        obj["signup_date"] = f"2099-{1 + occurrence % 12:02d}-15"
    elif kind == "in:segment":
        obj["segment"] = c.pick(("enterprise", "vip"), occurrence)
    elif kind == "pattern:email":
        email = str(obj["email"])
        obj["email"] = c.pick(
            (email.replace("@", "."), email.split(".")[0] + "@example"), occurrence
        )
    elif kind == "pattern:country":
        obj["country"] = c.pick((str(obj["country"]).lower(), "USA"), occurrence)
    elif kind != "malformed":
        raise ValueError(f"unknown customers defect kind {kind!r}")
    line = json.dumps(obj, ensure_ascii=False)
    if kind == "malformed":  # cut off: not valid JSON
        line = line[: -1 - occurrence % 5]
    return line + "\n"


@dataclass
class CustomerPool:
    """Current (loaded) version of every valid customer; `free` = may still change or repeat."""

    cols: CustomerCols
    free: c.BoolArray


@dataclass
class CustomerDrop:
    expectation: FileExpectation
    pool: CustomerPool
    changed_ids: list[int]
    repeat_ids: list[int]
    duplicate_winners: dict[int, str]


def write_drop(
    path: Path,
    rng: np.random.Generator,
    *,
    rows: int,
    start_id: int,
    drop: int,
    drops: int,
    pool: CustomerPool | None,
) -> CustomerDrop:
    """Plan and write one customers file; return its expectation and the new pool."""
    if rows < MIN_ROWS:
        raise ValueError(f"a customers file needs at least {MIN_ROWS} rows")
    win = c.window(drop, drops)
    n_def = max(len(DEFECT_KINDS), round(rows * DEFECT_RATE))
    n_pairs = max(2, round(rows * DUPLICATE_RATE)) if drop == 0 else 0
    free = np.flatnonzero(pool.free) if pool is not None else np.zeros(0, dtype=np.int64)
    n_change = min(round(rows * CHANGE_RATE), len(free) // 2) if drop > 0 else 0
    n_repeat = min(round(rows * REPEAT_RATE), len(free) // 2) if drop > 0 else 0
    sizes = [n_def, 2 * n_pairs, n_change, n_repeat]
    pos = rng.choice(rows, sum(sizes), replace=False).astype(np.int64)
    def_pos, pair_pos, change_pos, repeat_pos = np.split(pos, np.cumsum(sizes)[:-1])
    def_pos = np.sort(def_pos)

    cols = random_customers(rng, start_id + np.arange(rows, dtype=np.int64), win)
    valid = np.ones(rows, dtype=np.bool_)
    valid[def_pos] = False
    new_free = valid.copy()  # plain new customers may change or repeat in a later drop

    # Duplicate pairs: the winner (later updated_at, other e-mail domain) comes first in even
    # pairs and second in odd ones.
    pairs = np.sort(pair_pos.reshape(n_pairs, 2), axis=1)
    winner_first = np.arange(n_pairs) % 2 == 0
    win_pos = np.where(winner_first, pairs[:, 0], pairs[:, 1])
    lose_pos = np.where(winner_first, pairs[:, 1], pairs[:, 0])
    loser = cols.take(pairs[:, 0])
    winner = loser.take(slice(None))
    winner.domain = (loser.domain + 1) % len(c.DOMAINS)
    winner.updated_at = loser.updated_at + rng.integers(c.HOUR, c.DAY, n_pairs)
    cols.put(win_pos, winner)
    cols.put(lose_pos, loser)
    valid[lose_pos] = False
    new_free[pairs.ravel()] = False
    duplicate_winners = {
        int(i): c.fmt_ts(int(u)) for i, u in zip(winner.customer_id, winner.updated_at, strict=True)
    }

    changed_ids: list[int] = []
    repeat_ids: list[int] = []
    current = pool.cols.take(slice(None)) if pool is not None else cols.take(slice(0, 0))
    still_free = pool.free.copy() if pool is not None else np.zeros(0, dtype=np.bool_)
    if n_change or n_repeat:
        picked = rng.choice(free, n_change + n_repeat, replace=False)
        change_sel, repeat_sel = np.sort(picked[:n_change]), np.sort(picked[n_change:])
        changed = current.take(change_sel)
        flip = np.arange(n_change) % 2 == 0  # even: new e-mail domain; odd: other segment
        changed.domain = np.where(flip, (changed.domain + 1) % len(c.DOMAINS), changed.domain)
        changed.segment = np.where(flip, changed.segment, 1 - changed.segment)
        base = np.maximum(changed.updated_at + c.HOUR, win[0])
        changed.updated_at = base + rng.integers(0, (win[1] - win[0]) // 2, n_change)
        cols.put(change_pos, changed)
        cols.put(repeat_pos, current.take(repeat_sel))
        current.put(change_sel, changed)
        still_free[picked] = False
        changed_ids = [int(i) for i in changed.customer_id]
        repeat_ids = [int(i) for i in current.customer_id[repeat_sel]]
    new_free[change_pos] = False
    new_free[repeat_pos] = False
    valid[change_pos] = False  # not new: they update the pool instead
    valid[repeat_pos] = False

    lines = render(cols)
    slots = [int(k) + drop for k in rng.permutation(n_def)]  # round-robin kinds, shuffled
    kinds = [DEFECT_KINDS[k % len(DEFECT_KINDS)] for k in slots]
    occurrence = [k // len(DEFECT_KINDS) for k in slots]
    defect_lines = [
        defect_line(cols, int(p), kinds[k], occurrence[k]) for k, p in enumerate(def_pos)
    ]
    lines = c.replace_rows(lines, def_pos, defect_lines)
    with c.atomic_write(path) as out:
        c.write_text_column(out, lines)

    added = np.flatnonzero(valid)  # plain new customers and duplicate winners
    new_pool = CustomerPool(
        CustomerCols.concat([current, cols.take(added)]),
        np.concatenate([still_free, new_free[added]]),
    )
    quarantined = {int(p) + 1: [k] for p, k in zip(def_pos, kinds, strict=True)}
    return CustomerDrop(
        # customers load as SCD2: both rows of a pair (different updated_at) are versions of
        # their key, so nothing collapses as a duplicate
        expectation=FileExpectation.build(OBJECT, rows, quarantined, 0),
        pool=new_pool,
        changed_ids=changed_ids,
        repeat_ids=repeat_ids,
        duplicate_winners=duplicate_winners,
    )
