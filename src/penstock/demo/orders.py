"""Orders CSV drops: plain rows generated in vectorised chunks, plus a small planned set of
special rows (defects, duplicate pairs, updates of earlier orders, one late older update).

Ids: the row at 0-based position p of a file gets order_id `start_id + p` unless it is planned
to repeat an existing id (second row of a duplicate pair, an update, the late row); ids of
such positions and of defect rows are simply never loaded, which leaves gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from penstock.demo import _common as c
from penstock.demo.expectations import FileExpectation

OBJECT = "orders"
COLUMNS = (
    "order_id",
    "customer_id",
    "order_ts",
    "status",
    "amount",
    "country",
    "email",
    "quantity",
    "updated_at",
)
HEADER = ",".join(COLUMNS) + "\n"
STATUSES = ("placed", "shipped", "delivered", "cancelled", "returned")
_STATUS_P = (0.2, 0.3, 0.4, 0.05, 0.05)
#: Defect kinds, one per defective row, assigned round-robin. The reason is the kind itself,
#: except both malformed kinds (a missing / an extra field) whose reason is `malformed`.
DEFECT_KINDS = (
    "required:order_id",
    "required:customer_id",
    "required:order_ts",
    "required:updated_at",
    "type:order_id",
    "type:customer_id",
    "type:order_ts",
    "type:amount",
    "type:quantity",
    "type:updated_at",
    "min:amount",
    "min:quantity",
    "max:order_ts",
    "max:quantity",
    "in:status",
    "pattern:country",
    "pattern:email",
    "check:updated_after_order",
    "malformed:missing_field",
    "malformed:extra_field",
)
DEFECT_RATE = 0.015
DUPLICATE_RATE = 0.002
UPDATE_RATE = 0.08
TRACK_RATE = 0.15
MIN_ROWS = 100
#: Rows rendered per vectorised chunk (a constant: changing it changes the plain rows).
CHUNK = 1 << 17


def reason_of(kind: str) -> str:
    return "malformed" if kind.startswith("malformed:") else kind


@dataclass
class OrderCols(c.Columns):
    """Order rows as numeric columns (indices into the vocabularies; email -1 = NULL)."""

    order_id: c.IntArray
    customer_id: c.IntArray
    order_ts: c.IntArray
    updated_at: c.IntArray
    cents: c.IntArray
    quantity: c.IntArray
    status: c.IntArray
    country: c.IntArray
    email: c.IntArray
    domain: c.IntArray


def random_orders(
    rng: np.random.Generator, ids: c.IntArray, win: tuple[int, int], n_customers: int
) -> OrderCols:
    """Valid new orders with the given ids, ordered within `win` (some legitimate edge values:
    amount 0.00, quantity 1000, no email)."""
    n = len(ids)
    order_ts = rng.integers(win[0], win[1], n)
    cents = rng.integers(100, 50_000, n)
    cents[rng.random(n) < 0.002] = 0
    quantity = rng.integers(1, 11, n)
    quantity[rng.random(n) < 0.001] = 1000
    email = rng.integers(0, len(c.FIRST_SLUGS) * len(c.LAST_SLUGS), n)
    email[rng.random(n) < 0.005] = -1
    return OrderCols(
        order_id=ids.astype(np.int64),
        customer_id=rng.integers(1, n_customers + 1, n),
        order_ts=order_ts,
        updated_at=order_ts + rng.integers(60, 3 * c.DAY, n),
        cents=cents,
        quantity=quantity,
        status=rng.choice(len(STATUSES), n, p=_STATUS_P).astype(np.int64),
        country=rng.integers(0, len(c.COUNTRIES), n),
        email=email,
        domain=rng.integers(0, len(c.DOMAINS), n),
    )


_SLUGS = tuple(f"{a}.{b}" for a in c.FIRST_SLUGS for b in c.LAST_SLUGS)


def render(cols: OrderCols) -> Any:
    """CSV lines (with newline) of valid rows, as one Arrow string column."""
    email = pc.binary_join_element_wise(
        c.vocab_text(_SLUGS, cols.email),
        c.int_text(cols.customer_id),
        "@",
        c.vocab_text(c.DOMAINS, cols.domain),
        "",
    )
    lines = pc.binary_join_element_wise(
        c.int_text(cols.order_id),
        c.int_text(cols.customer_id),
        c.ts_text(cols.order_ts),
        c.vocab_text(STATUSES, cols.status),
        c.cents_text(cols.cents),
        c.vocab_text(c.COUNTRIES, cols.country),
        email,
        c.int_text(cols.quantity),
        c.ts_text(cols.updated_at),
        ",",
        null_handling="replace",
        null_replacement="",
    )
    return c.with_newline(lines)


def _fields(cols: OrderCols, i: int) -> dict[str, str]:
    e = int(cols.email[i])
    cid = int(cols.customer_id[i])
    return {
        "order_id": str(int(cols.order_id[i])),
        "customer_id": str(cid),
        "order_ts": c.fmt_ts(int(cols.order_ts[i])),
        "status": STATUSES[int(cols.status[i])],
        "amount": c.fmt_cents(int(cols.cents[i])),
        "country": c.COUNTRIES[int(cols.country[i])],
        "email": "" if e < 0 else f"{_SLUGS[e]}{cid}@{c.DOMAINS[int(cols.domain[i])]}",
        "quantity": str(int(cols.quantity[i])),
        "updated_at": c.fmt_ts(int(cols.updated_at[i])),
    }


def defect_line(cols: OrderCols, i: int, kind: str, occurrence: int) -> str:
    """Row i of `cols` (a valid row) with exactly one defect of `kind`, as a CSV line."""
    f = _fields(cols, i)
    ts, upd = int(cols.order_ts[i]), int(cols.updated_at[i])
    slug = _SLUGS[int(cols.email[i]) % len(_SLUGS)]
    col = kind.split(":", 1)[1]
    if kind.startswith("required:"):
        f[col] = ""
    elif kind == "type:order_id":
        f[col] = f"ORD-{f[col]}"
    elif kind == "type:customer_id":
        f[col] = f"C{f[col]}"
    elif kind == "type:order_ts":
        f[col] = c.pick(("2024-13-45 10:00:00", "2024-02-30 08:15:00", "not a date"), occurrence)
    elif kind == "type:amount":
        f[col] = c.pick(("n/a", "12.3.4", "1O.00"), occurrence)
    elif kind == "type:quantity":
        f[col] = c.pick(("two", "5x"), occurrence)
    elif kind == "type:updated_at":
        f[col] = c.pick(("2024-02-30 08:00:00", "2025-00-10 12:00:00", "soon"), occurrence)
    elif kind == "min:amount":
        f[col] = c.fmt_cents(-max(int(cols.cents[i]), 1))
    elif kind == "min:quantity":
        f[col] = c.pick(("0", "-1"), occurrence)
    elif kind == "max:order_ts":  # updated_at moves along, so the check still holds
        f["order_ts"], f["updated_at"] = c.fmt_ts(ts + c.TO_2099), c.fmt_ts(upd + c.TO_2099)
    elif kind == "max:quantity":
        f[col] = str(1001 + (occurrence * 37) % 4000)
    elif kind == "in:status":
        f[col] = c.pick(("lost", "on hold, pending"), occurrence)
    elif kind == "pattern:country":
        f[col] = c.pick((f[col].lower(), "Germany"), occurrence)
    elif kind == "pattern:email":
        f[col] = c.pick((f"{slug}.example.com", f"{slug}@example"), occurrence)
    elif kind == "check:updated_after_order":
        f["updated_at"] = c.fmt_ts(ts - c.HOUR * (1 + occurrence % 47))
    elif kind not in ("malformed:missing_field", "malformed:extra_field"):
        raise ValueError(f"unknown orders defect kind {kind!r}")
    values = [c.csv_field(f[name]) for name in COLUMNS]
    if kind == "malformed:missing_field":
        values.pop()
    elif kind == "malformed:extra_field":
        values.append("gift wrap")
    return ",".join(values) + "\n"


@dataclass
class OrderPool:
    """Current state of the orders a later drop may update: `origin` is the drop that loaded it."""

    cols: OrderCols
    origin: c.IntArray

    @classmethod
    def empty(cls) -> OrderPool:
        none = np.zeros(0, dtype=np.int64)
        return cls(OrderCols(*[none.copy() for _ in fields(OrderCols)]), none.copy())


@dataclass
class OrdersPlan:
    """Everything about one orders file except its plain rows."""

    rows: int
    start_id: int
    window: tuple[int, int]
    n_customers: int
    special_pos: c.IntArray  # ascending positions of planned valid rows
    special: OrderCols  # their values
    defect_pos: c.IntArray  # ascending positions of defect rows
    defect_lines: list[str]
    defect_reasons: list[str]
    duplicates: int
    duplicate_winners: dict[int, str]
    late: tuple[int, dict[str, str]] | None
    new_ids: int  # distinct valid ids this file loads for the first time

    def expectation(self) -> FileExpectation:
        quarantined = {
            int(p) + 1: [r] for p, r in zip(self.defect_pos, self.defect_reasons, strict=True)
        }
        return FileExpectation.build(OBJECT, self.rows, quarantined, self.duplicates)


def plan_drop(
    rng: np.random.Generator,
    *,
    rows: int,
    start_id: int,
    drop: int,
    drops: int,
    n_customers: int,
    pool: OrderPool | None,
    late: bool,
) -> tuple[OrdersPlan, OrderPool | None]:
    """Plan one file. With a `pool`, also updates earlier orders (drop > 0), adds a late older
    update of an order loaded by the previous drop (`late`), and returns the new pool."""
    if rows < MIN_ROWS:
        raise ValueError(f"an orders file needs at least {MIN_ROWS} rows")
    win = c.window(drop, drops)
    n_def = max(len(DEFECT_KINDS), round(rows * DEFECT_RATE))
    n_pairs = max(2, round(rows * DUPLICATE_RATE))
    has_pool = pool is not None and len(pool.cols) > 0
    late_candidates = np.flatnonzero(pool.origin == drop - 1) if pool is not None else None
    do_late = late and has_pool and late_candidates is not None and len(late_candidates) > 0
    n_upd = min(round(rows * UPDATE_RATE), len(pool.cols) - 1) if pool and has_pool else 0
    n_track = round(rows * TRACK_RATE) if pool is not None else 0
    sizes = [n_def, 2 * n_pairs, n_upd, int(do_late), n_track]
    pos = rng.choice(rows, sum(sizes), replace=False).astype(np.int64)
    def_pos, pair_pos, upd_pos, late_pos, track_pos = np.split(pos, np.cumsum(sizes)[:-1])
    special: list[tuple[c.IntArray, OrderCols]] = []

    # Defects: fresh ids, each row rendered with exactly one defect.
    def_pos = np.sort(def_pos)
    dcols = random_orders(rng, start_id + def_pos, win, n_customers)
    slots = [int(k) + drop for k in rng.permutation(n_def)]  # round-robin kinds, shuffled
    kinds = [DEFECT_KINDS[k % len(DEFECT_KINDS)] for k in slots]
    occurrence = [k // len(DEFECT_KINDS) for k in slots]
    defect_lines = [defect_line(dcols, k, kinds[k], occurrence[k]) for k in range(n_def)]

    # Duplicate pairs: same id, order_ts and customer; the winner has the later updated_at
    # and a different status/amount. Even pairs put the winner first in the file.
    pairs = np.sort(pair_pos.reshape(n_pairs, 2), axis=1)
    first, second = pairs[:, 0], pairs[:, 1]
    loser = random_orders(rng, start_id + first, win, n_customers)
    loser.status[:] = 0
    loser.updated_at = loser.order_ts + rng.integers(60, c.DAY, n_pairs)
    winner = loser.take(slice(None))
    winner.status = rng.integers(1, len(STATUSES), n_pairs)
    winner.cents = loser.cents + rng.integers(1, 5_000, n_pairs)
    winner.updated_at = loser.updated_at + rng.integers(c.HOUR, 2 * c.DAY, n_pairs)
    winner_first = np.arange(n_pairs) % 2 == 0
    special.append((np.where(winner_first, first, second), winner))
    special.append((np.where(winner_first, second, first), loser))
    duplicate_winners = {
        int(i): c.fmt_ts(int(u)) for i, u in zip(winner.order_id, winner.updated_at, strict=True)
    }

    new_pool = pool
    late_info: tuple[int, dict[str, str]] | None = None
    if pool is not None:
        cur = pool.cols
        origin = pool.origin.copy()
        late_idx = -1
        if do_late and late_candidates is not None:
            late_idx = int(late_candidates[rng.integers(0, len(late_candidates))])
        if n_upd:
            eligible = np.flatnonzero(np.arange(len(cur)) != late_idx)
            sel = np.sort(rng.choice(eligible, n_upd, replace=False))
            upd = cur.take(sel)
            base = np.maximum(upd.updated_at + c.HOUR, win[0])
            upd.updated_at = base + rng.integers(0, (win[1] - win[0]) // 2, n_upd)
            upd.status = (upd.status + rng.integers(1, len(STATUSES), n_upd)) % len(STATUSES)
            bump = rng.random(n_upd) < 0.25
            upd.cents = np.where(bump, upd.cents + rng.integers(1, 2_000, n_upd), upd.cents)
            special.append((upd_pos, upd))
            cur = cur.take(slice(None))
            cur.put(sel, upd)
            origin[sel] = drop
        if late_idx >= 0:
            stored = cur.take([late_idx])
            row = stored.take(slice(None))
            row.updated_at = row.order_ts + (stored.updated_at - stored.order_ts) // 2
            row.status = (row.status + 1) % len(STATUSES)
            row.cents = row.cents + 1_234
            special.append((late_pos, row))
            expected = {
                "status": STATUSES[int(stored.status[0])],
                "amount": c.fmt_cents(int(stored.cents[0])),
            }
            late_info = (int(stored.order_id[0]), expected)
        tracked = random_orders(rng, start_id + track_pos, win, n_customers)
        special.append((track_pos, tracked))
        new_pool = OrderPool(
            OrderCols.concat([cur, tracked]),
            np.concatenate([origin, np.full(n_track, drop, dtype=np.int64)]),
        )

    special_pos = np.concatenate([p for p, _ in special])
    order = np.argsort(special_pos, kind="stable")
    plan = OrdersPlan(
        rows=rows,
        start_id=start_id,
        window=win,
        n_customers=n_customers,
        special_pos=special_pos[order],
        special=OrderCols.concat([cols for _, cols in special]).take(order),
        defect_pos=def_pos,
        defect_lines=defect_lines,
        defect_reasons=[reason_of(k) for k in kinds],
        duplicates=n_pairs,
        duplicate_winners=duplicate_winners,
        late=late_info,
        new_ids=rows - n_def - n_pairs - n_upd - int(late_info is not None),
    )
    return plan, new_pool


def write_drop(path: Path, plan: OrdersPlan, rng: np.random.Generator) -> None:
    """Write the file: plain rows from `rng` chunk by chunk, overlaid with the plan's rows."""
    with c.atomic_write(path) as out:
        out.write(HEADER.encode())
        for lo in range(0, plan.rows, CHUNK):
            hi = min(plan.rows, lo + CHUNK)
            ids = np.arange(lo, hi, dtype=np.int64) + plan.start_id
            cols = random_orders(rng, ids, plan.window, plan.n_customers)
            a, b = np.searchsorted(plan.special_pos, [lo, hi])
            cols.put(plan.special_pos[a:b] - lo, plan.special.take(slice(a, b)))
            lines = render(cols)
            a, b = np.searchsorted(plan.defect_pos, [lo, hi])
            lines = c.replace_rows(lines, plan.defect_pos[a:b] - lo, plan.defect_lines[a:b])
            c.write_text_column(out, lines)


def write_orders_csv(path: Path, rows: int, *, seed: int = 7, start_id: int = 1) -> FileExpectation:
    """Write one orders CSV of `rows` data rows with the demo's defect mix and duplicate pairs
    (no updates of earlier files) and return what it contains. Vectorised and chunked."""
    plan, _ = plan_drop(
        c.derive_rng(seed, c.ORDERS_STREAM, 0, c.PLAN_STREAM),
        rows=rows,
        start_id=start_id,
        drop=0,
        drops=1,
        n_customers=10_000,
        pool=None,
        late=False,
    )
    write_drop(Path(path), plan, c.derive_rng(seed, c.ORDERS_STREAM, 0, c.BASE_STREAM))
    return plan.expectation()
