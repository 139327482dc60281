"""`penstock init DIR [--demo]`: write a starter project, or the demo project and its data.

The demo's landing files are deterministic for a seed, and `create_demo_project` returns (and
writes to `.penstock/demo_expected.json`) exactly what they contain and what the warehouse must
hold after loading all of them. penstock.yml is written last, so an interrupted call can simply
be repeated.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from penstock.demo import _common as c
from penstock.demo import customers, orders
from penstock.demo.expectations import EXPECTED_PATH, DemoExpectations, FileExpectation
from penstock.demo.templates import (
    DEMO_CUSTOMERS,
    DEMO_MODEL,
    DEMO_MODEL_PATH,
    DEMO_PROJECT,
    empty_project,
)
from penstock.errors import UsageError

PROJECT_FILE = "penstock.yml"
ORDERS_DIR = "landing/orders"
CUSTOMERS_DIR = "landing/customers"
MAX_DROPS = 99


def _refuse_existing(directory: Path) -> None:
    if (directory / PROJECT_FILE).exists():
        raise UsageError(
            f"{directory / PROJECT_FILE} already exists; choose an empty directory",
            path=str(directory / PROJECT_FILE),
        )
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} exists and is not a directory", path=str(directory))


def _check_sizes(**sizes: tuple[int, int, int]) -> None:
    for name, (value, low, high) in sizes.items():
        if not low <= value <= high:
            raise UsageError(f"{name} must be between {low} and {high}, got {value}", option=name)


def _refuse_strangers(directory: Path, planned: set[str]) -> None:
    """Landing files the demo would not write would be loaded too: refuse rather than delete."""
    for sub in (ORDERS_DIR, CUSTOMERS_DIR):
        folder = directory / sub
        if not folder.is_dir():
            continue
        for item in sorted(folder.iterdir()):
            rel = f"{sub}/{item.name}"
            if rel not in planned and not item.name.startswith("."):
                path = directory / rel
                raise UsageError(
                    f"{path} is not part of the demo; remove it or choose another directory",
                    path=str(path),
                )


def create_demo_project(
    directory: Path,
    *,
    seed: int = 7,
    order_rows: int = 5000,
    order_drops: int = 3,
    customer_rows: int = 1000,
    customer_drops: int = 2,
) -> DemoExpectations:
    """Write the demo project into `directory` (created if missing) and return its expectations.

    Raises UsageError if `directory/penstock.yml` exists or a size is out of range.
    """
    directory = Path(directory)
    _refuse_existing(directory)
    _check_sizes(
        seed=(seed, 0, 2**63 - 1),
        order_rows=(order_rows, orders.MIN_ROWS, 10**8),
        order_drops=(order_drops, 1, MAX_DROPS),
        customer_rows=(customer_rows, customers.MIN_ROWS, 10**7),
        customer_drops=(customer_drops, 1, MAX_DROPS),
    )
    order_paths = [f"{ORDERS_DIR}/drop_{d + 1:03d}.csv" for d in range(order_drops)]
    customer_paths = [f"{CUSTOMERS_DIR}/drop_{d + 1:03d}.jsonl" for d in range(customer_drops)]
    _refuse_strangers(directory, set(order_paths) | set(customer_paths))
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, FileExpectation] = {}

    cpool: customers.CustomerPool | None = None
    changed: list[int] = []
    repeats: list[int] = []
    customer_winners: dict[int, str] = {}
    for d, rel in enumerate(customer_paths):
        cdrop = customers.write_drop(
            directory / rel,
            c.derive_rng(seed, c.CUSTOMERS_STREAM, d, c.PLAN_STREAM),
            rows=customer_rows,
            start_id=1 + d * customer_rows,
            drop=d,
            drops=customer_drops,
            pool=cpool,
        )
        files[rel] = cdrop.expectation
        cpool = cdrop.pool
        changed += cdrop.changed_ids
        repeats += cdrop.repeat_ids
        customer_winners |= cdrop.duplicate_winners
    assert cpool is not None

    opool: orders.OrderPool | None = orders.OrderPool.empty()
    order_winners: dict[int, str] = {}
    orders_rows = 0
    late: tuple[int, dict[str, str]] | None = None
    for d, rel in enumerate(order_paths):
        plan, opool = orders.plan_drop(
            c.derive_rng(seed, c.ORDERS_STREAM, d, c.PLAN_STREAM),
            rows=order_rows,
            start_id=1 + d * order_rows,
            drop=d,
            drops=order_drops,
            n_customers=customer_rows * customer_drops,
            pool=opool,
            late=d == order_drops - 1,
        )
        orders.write_drop(
            directory / rel, plan, c.derive_rng(seed, c.ORDERS_STREAM, d, c.BASE_STREAM)
        )
        files[rel] = plan.expectation()
        orders_rows += plan.new_ids
        order_winners |= plan.duplicate_winners
        late = plan.late or late

    expected = DemoExpectations(
        seed=seed,
        files=files,
        orders_rows=orders_rows,
        late_order_id=None if late is None else late[0],
        late_order_expected={} if late is None else late[1],
        duplicate_winners=order_winners,
        customers_current=len(cpool.cols),
        # every customer's current version, plus the older one of each changed customer and of
        # each in-file duplicate pair (both rows of a pair are versions in the SCD2 history)
        customers_versions=len(cpool.cols) + len(changed) + len(customer_winners),
        changed_customer_ids=sorted(changed),
        unchanged_repeat_customer_ids=sorted(repeats),
        reason_counts=DemoExpectations.count_reasons(files),
        customer_duplicate_winners=customer_winners,
    )
    _delivered_earlier(directory, [*customer_paths, *order_paths])
    c.write_text(directory / EXPECTED_PATH, expected.to_json())
    c.write_text(directory / "objects" / "customers.yml", DEMO_CUSTOMERS)
    c.write_text(directory / DEMO_MODEL_PATH, DEMO_MODEL)
    c.write_text(directory / PROJECT_FILE, DEMO_PROJECT)
    return expected


def _delivered_earlier(directory: Path, paths: list[str]) -> None:
    """Date the landing files an hour back, a second apart in drop order: they are complete
    deliveries, so `penstock run` right after `penstock init --demo` takes them (files
    modified within the source's settle time would wait for the next run)."""
    base = time.time_ns() - 3600 * 10**9
    for index, rel in enumerate(paths):
        stamp = base + index * 10**9
        os.utime(directory / rel, ns=(stamp, stamp))


def create_empty_project(directory: Path, name: str) -> None:
    """Write a starter penstock.yml (one example object, `events`) and an empty
    `landing/events/`. Raises UsageError if `directory/penstock.yml` exists."""
    directory = Path(directory)
    _refuse_existing(directory)
    if not name.strip():
        raise UsageError("the project name must not be empty", option="name")
    events = directory / "landing" / "events"
    events.mkdir(parents=True, exist_ok=True)
    (events / ".gitkeep").touch()
    c.write_text(directory / PROJECT_FILE, empty_project(name))
