"""What the demo's landing files contain, so tests can check every number the pipeline reports.

Both classes round-trip through JSON (`to_dict` / `from_dict`); integer keys become strings in
JSON and are converted back on load.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Where `create_demo_project` writes the expectations, relative to the project directory.
EXPECTED_PATH = ".penstock/demo_expected.json"


@dataclass(frozen=True)
class FileExpectation:
    """One landing file = one batch.

    `quarantined` maps the 1-based record number (header excluded, malformed lines counted) to
    the reasons of that record; every defective record has exactly one reason.
    """

    object: str
    rows_in: int
    quarantined: dict[int, list[str]]
    duplicates: int
    loaded: int

    def __post_init__(self) -> None:
        if self.loaded != self.rows_in - len(self.quarantined) - self.duplicates:
            raise ValueError("loaded must equal rows_in - quarantined - duplicates")

    @classmethod
    def build(
        cls, obj: str, rows_in: int, quarantined: dict[int, list[str]], duplicates: int
    ) -> FileExpectation:
        ordered = {k: list(quarantined[k]) for k in sorted(quarantined)}
        loaded = rows_in - len(ordered) - duplicates
        return cls(obj, rows_in, ordered, duplicates, loaded)

    def reason_counts(self) -> Counter[str]:
        return Counter(r for reasons in self.quarantined.values() for r in reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "rows_in": self.rows_in,
            "quarantined": {str(k): list(v) for k, v in self.quarantined.items()},
            "duplicates": self.duplicates,
            "loaded": self.loaded,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileExpectation:
        return cls(
            object=str(data["object"]),
            rows_in=int(data["rows_in"]),
            quarantined={int(k): [str(r) for r in v] for k, v in data["quarantined"].items()},
            duplicates=int(data["duplicates"]),
            loaded=int(data["loaded"]),
        )


@dataclass(frozen=True)
class DemoExpectations:
    """The demo project's files and the warehouse state after running all of them.

    `files` is keyed by the path relative to the project directory (POSIX separators).
    `late_order_expected` holds the `status` and `amount` (text, two decimals) that the late,
    older update must not overwrite. `duplicate_winners` / `customer_duplicate_winners` map a
    key that occurs twice in one file to the `updated_at` of the row that must win.
    """

    seed: int
    files: dict[str, FileExpectation]
    orders_rows: int
    late_order_id: int | None
    late_order_expected: dict[str, str]
    duplicate_winners: dict[int, str]
    customers_current: int
    customers_versions: int
    changed_customer_ids: list[int]
    unchanged_repeat_customer_ids: list[int]
    reason_counts: dict[str, dict[str, int]]
    customer_duplicate_winners: dict[int, str] = field(default_factory=dict)

    @staticmethod
    def count_reasons(files: dict[str, FileExpectation]) -> dict[str, dict[str, int]]:
        totals: dict[str, Counter[str]] = {}
        for fe in files.values():
            totals.setdefault(fe.object, Counter()).update(fe.reason_counts())
        return {obj: dict(sorted(c.items())) for obj, c in sorted(totals.items())}

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "files": {path: fe.to_dict() for path, fe in self.files.items()},
            "orders_rows": self.orders_rows,
            "late_order_id": self.late_order_id,
            "late_order_expected": dict(self.late_order_expected),
            "duplicate_winners": {str(k): v for k, v in self.duplicate_winners.items()},
            "customers_current": self.customers_current,
            "customers_versions": self.customers_versions,
            "changed_customer_ids": list(self.changed_customer_ids),
            "unchanged_repeat_customer_ids": list(self.unchanged_repeat_customer_ids),
            "reason_counts": {k: dict(v) for k, v in self.reason_counts.items()},
            "customer_duplicate_winners": {
                str(k): v for k, v in self.customer_duplicate_winners.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DemoExpectations:
        late = data["late_order_id"]
        return cls(
            seed=int(data["seed"]),
            files={p: FileExpectation.from_dict(fe) for p, fe in data["files"].items()},
            orders_rows=int(data["orders_rows"]),
            late_order_id=None if late is None else int(late),
            late_order_expected={str(k): str(v) for k, v in data["late_order_expected"].items()},
            duplicate_winners={int(k): str(v) for k, v in data["duplicate_winners"].items()},
            customers_current=int(data["customers_current"]),
            customers_versions=int(data["customers_versions"]),
            changed_customer_ids=[int(i) for i in data["changed_customer_ids"]],
            unchanged_repeat_customer_ids=[int(i) for i in data["unchanged_repeat_customer_ids"]],
            reason_counts={
                obj: {r: int(n) for r, n in counts.items()}
                for obj, counts in data["reason_counts"].items()
            },
            customer_duplicate_winners={
                int(k): str(v) for k, v in data.get("customer_duplicate_winners", {}).items()
            },
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def read_expectations(directory: Path) -> DemoExpectations:
    """Load the expectations `create_demo_project` wrote into `directory`."""
    data = json.loads((Path(directory) / EXPECTED_PATH).read_text(encoding="utf-8"))
    return DemoExpectations.from_dict(data)
