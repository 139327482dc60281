"""Compare two versions of the contracts, object by object, and say which changes break.

A change is *breaking* when data that met the old contract may fail the new one (a narrower
type, a new required column, a tighter or changed check, another key), or when readers of
the warehouse table may break (a removed column, a type read differently, another table or
load mode). Additions of optional columns, loosened checks and wider types are not breaking.
Column rules are compared one by one: `min` raised or `max` lowered is tighter, an `in` list
that shrinks is tighter, a changed `pattern` is breaking unless identical, a new check
expression is tighter; a bound that cannot be ordered (`now` against a date) is breaking.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from penstock.catalog.batch_checks import DuplicateRateCheck, FreshnessCheck, ReconcileCheck
from penstock.catalog.columns import ColumnSpec, ExpressionCheck, RowCountCheck
from penstock.catalog.objects import ObjectSpec
from penstock.contract.type_change import type_change


@dataclass(frozen=True)
class Change:
    """One difference between two contracts: `kind` is a stable name (`column_removed`,
    `type_narrowed`, `check_tightened`...), `detail` one line saying what and why."""

    kind: str
    object: str
    column: str | None
    breaking: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diff_contracts(
    old: dict[str, ObjectSpec], new: dict[str, ObjectSpec], *, only: str | None = None
) -> list[Change]:
    """Every change from `old` to `new` (objects by name), in declaration order; `only`
    limits it to one object."""
    names = [*old, *(name for name in new if name not in old)]
    changes: list[Change] = []
    for name in names:
        if only is not None and name != only:
            continue
        before, after = old.get(name), new.get(name)
        if before is None:
            changes.append(Change("object_added", name, None, False, "a new object"))
        elif after is None:
            changes.append(Change("object_removed", name, None, True, "readers of its table break"))
        else:
            changes.extend(_ObjectDiff(before, after).changes())
    return changes


class _ObjectDiff:
    def __init__(self, old: ObjectSpec, new: ObjectSpec) -> None:
        self.old, self.new = old, new
        self.out: list[Change] = []

    def add(self, kind: str, column: str | None, breaking: bool, detail: str) -> None:
        self.out.append(Change(kind, self.new.name, column, breaking, detail))

    def changes(self) -> list[Change]:
        old, new = self.old, self.new
        if old.table_name != new.table_name:
            self.add(
                "table_changed",
                None,
                True,
                f"table {old.table_name} → {new.table_name}: readers of the old table break",
            )
        if old.load != new.load:
            self.add(
                "load_changed",
                None,
                True,
                f"load {old.load} → {new.load}: the table keeps its rows another way",
            )
        if old.key != new.key:
            self.add(
                "key_changed",
                None,
                True,
                f"key {_names(old.key)} → {_names(new.key)}: rows are matched and "
                "deduplicated by other columns",
            )
        if old.order_by != new.order_by:
            self.add(
                "order_by_changed",
                None,
                True,
                f"order_by {old.order_by or 'none'} → {new.order_by or 'none'}: another "
                "duplicate wins",
            )
        self._schema_drift()
        self._text("description", None, old.description, new.description)
        self._text("owner", None, old.owner, new.owner)
        for column in [*old.columns, *(c for c in new.columns if c not in old.columns)]:
            self._column(column)
        self._checks()
        return self.out

    def _schema_drift(self) -> None:
        """A stricter `schema_drift:` policy is breaking: a file that loaded may now fail or
        be quarantined (evolve only adds columns to the table: not stricter)."""
        old, new = self.old.schema_drift.model_dump(), self.new.schema_drift.model_dump()
        changed = [key for key in old if old[key] != new[key]]
        if not changed:
            return
        stricter = any(_DRIFT_RANK[new[k]] > _DRIFT_RANK[old[k]] for k in changed)
        detail = ", ".join(f"{k} {old[k]} → {new[k]}" for k in changed)
        self.add("schema_drift_changed", None, stricter, f"schema_drift {detail}")

    def _text(self, what: str, column: str | None, old: str | None, new: str | None) -> None:
        if (old or "").strip() != (new or "").strip():
            self.add(f"{what}_changed", column, False, f"{what} {_quoted(old)} → {_quoted(new)}")

    def _column(self, name: str) -> None:
        old, new = self.old.columns.get(name), self.new.columns.get(name)
        if old is None and new is not None:
            if self.new.is_required(name):
                self.add(
                    "column_added",
                    name,
                    True,
                    f"a new required {new.type} column: files without it fail",
                )
            else:
                self.add("column_added", name, False, f"a new optional {new.type} column")
            return
        if new is None:
            self.add("column_removed", name, True, "readers of this column break")
            return
        if old is None:
            return
        change = type_change(old.column_type, new.column_type)
        if change is not None:
            detail = f"{old.type} → {new.type}: {change.reason}"
            self.add(change.kind, name, change.breaking, detail)
        self._required(name)
        self._settings(name, old, new)
        self._bound(name, "min", old.min, new.min)
        self._bound(name, "max", old.max, new.max)
        self._in(name, old.in_, new.in_)
        self._pattern(name, old.pattern, new.pattern)
        self._more_rules(name, old, new)
        self._text("description", name, old.description, new.description)

    def _required(self, name: str) -> None:
        before, after = self.old.is_required(name), self.new.is_required(name)
        if before == after:
            return
        why = ""
        if name in self.new.key or name == self.new.order_by:
            why = " (as a key or order_by column)"
        if after:
            self.add("required_added", name, True, f"required{why}: rows without it fail")
        else:
            self.add("required_removed", name, False, "no longer required: it may be missing")

    def _settings(self, name: str, old: ColumnSpec, new: ColumnSpec) -> None:
        if old.timezone != new.timezone:
            self.add(
                "setting_changed",
                name,
                True,
                f"timezone {old.timezone or 'none'} → {new.timezone or 'none'}: "
                "times are read in another zone",
            )
        if old.from_ != new.from_:
            self.add(
                "setting_changed",
                name,
                True,
                f"reads source column {new.source_name(name)!r}, was {old.source_name(name)!r}",
            )
        if old.format != new.format:
            before, after = set(old.format or ()), set(new.format or ())
            wider = bool(old.format) and before <= after
            self.add(
                "setting_changed",
                name,
                not wider,
                f"format {_names(old.format or ())} → {_names(new.format or ())}: "
                + ("more patterns are accepted" if wider else "values in a dropped format fail"),
            )

    def _bound(self, name: str, rule: str, old: Any, new: Any, label: str = "") -> None:
        """A min (or between's low) or max (its high) bound changed; `label` names it."""
        if old == new:
            return
        if old is None:
            below = "below" if rule == "min" else "above"
            self.add(
                "check_added", name, True, f"{label or rule}: {new} added: values {below} it fail"
            )
            return
        if new is None:
            self.add("check_removed", name, False, f"{label or rule}: {old} removed")
            return
        order = _compare(old, new)
        if order is None:
            self.add(
                "check_changed",
                name,
                True,
                f"{label or rule} {old} → {new}: the bounds cannot be ordered",
            )
            return
        tighter = order < 0 if rule == "min" else order > 0
        verb = "raised" if order < 0 else "lowered"
        if tighter:
            self.add(
                "check_tightened",
                name,
                True,
                f"{label or rule} {verb} {old} → {new}: more values fail",
            )
        else:
            self.add("check_loosened", name, False, f"{label or rule} {verb} {old} → {new}")

    def _in(self, name: str, old: list[Any] | None, new: list[Any] | None) -> None:
        if old is None and new is None:
            return
        if old is None:
            self.add("check_added", name, True, f"in: {_names(new or [])} added: other values fail")
            return
        if new is None:
            self.add("check_removed", name, False, "in: removed")
            return
        dropped = [v for v in old if v not in new]
        allowed = [v for v in new if v not in old]
        if dropped and allowed:
            self.add(
                "check_changed",
                name,
                True,
                f"in: drops {_names(dropped)} and allows {_names(allowed)}",
            )
        elif dropped:
            self.add("check_tightened", name, True, f"in: drops {_names(dropped)}: they fail")
        elif allowed:
            self.add("check_loosened", name, False, f"in: allows {_names(allowed)}")

    def _pattern(self, name: str, old: str | None, new: str | None) -> None:
        if old == new:
            return
        if old is None:
            self.add("check_added", name, True, f"pattern {new!r} added: other values fail")
        elif new is None:
            self.add("check_removed", name, False, f"pattern {old!r} removed")
        else:
            self.add("check_changed", name, True, f"pattern {old!r} → {new!r}: values may now fail")

    def _more_rules(self, name: str, old: ColumnSpec, new: ColumnSpec) -> None:
        """between, length, references, unique, pii, and each rule's severity and
        max_failure_rate (catalog/rules.py)."""
        if old.between != new.between:
            if old.between is None:
                self.add("check_added", name, True, f"between {list(new.between or ())} added")
            elif new.between is None:
                self.add("check_removed", name, False, f"between {list(old.between)} removed")
            else:
                self._bound(name, "min", old.between[0], new.between[0], "between low")
                self._bound(name, "max", old.between[1], new.between[1], "between high")
        if old.length != new.length:
            self._length(name, old, new)
        if old.references != new.references:
            if new.references is None:
                self.add("check_removed", name, False, f"references {old.references} removed")
            else:
                verb = "added" if old.references is None else f"changed from {old.references}"
                self.add(
                    "check_added" if old.references is None else "check_changed",
                    name,
                    True,
                    f"references {new.references} {verb}: values not found there fail",
                )
        if old.unique != new.unique:
            if new.unique:
                self.add("check_added", name, True, "unique added: repeated values fail")
            else:
                self.add("check_removed", name, False, "unique removed")
        if old.pii != new.pii:
            stored = {"hash", "mask", "drop"}
            changes_storage = bool({old.pii, new.pii} & stored)
            self.add(
                "setting_changed",
                name,
                changes_storage,
                f"pii {old.pii or 'none'} → {new.pii or 'none'}"
                + (
                    ": the stored values change; readers of the column break"
                    if changes_storage
                    else ""
                ),
            )
        for rule in sorted({*old.rule_options, *new.rule_options}):
            before, after = old.options(rule), new.options(rule)
            self._severity(name, rule, before.severity, after.severity)
            self._rate(name, rule, before.max_failure_rate, after.max_failure_rate)

    def _severity(self, name: str | None, rule: str, before: str, after: str) -> None:
        """error → warn loosens (failing rows load), warn → error tightens."""
        if before == after:
            return
        tighter = after == "error"
        self.add(
            "check_tightened" if tighter else "check_loosened",
            name,
            tighter,
            f"{rule}: severity {before} → {after}"
            + (": failing rows are held back" if tighter else ": failing rows load"),
        )

    def _length(self, name: str, old: ColumnSpec, new: ColumnSpec) -> None:
        before, after = old.length, new.length
        if before is None or after is None:
            kind, breaking = ("check_added", True) if before is None else ("check_removed", False)
            self.add(kind, name, breaking, f"length {'added' if before is None else 'removed'}")
            return
        lows = (before.min or 0, after.min or 0)
        highs = (before.max, after.max)
        tighter = lows[1] > lows[0] or (
            highs[1] is not None and (highs[0] is None or highs[1] < highs[0])
        )
        looser = lows[1] < lows[0] or (
            highs[0] is not None and (highs[1] is None or highs[1] > highs[0])
        )
        what = (
            f"length {before.model_dump(exclude_none=True)} → {after.model_dump(exclude_none=True)}"
        )
        if tighter and looser:
            self.add("check_changed", name, True, what)
        elif tighter:
            self.add("check_tightened", name, True, f"{what}: more values fail")
        else:
            self.add("check_loosened", name, False, what)

    def _rate(self, name: str | None, rule: str, before: float | None, after: float | None) -> None:
        if before == after:
            return
        label = f"{rule}: max_failure_rate"
        if after is None:
            self.add("check_loosened", name, False, f"{label} removed")
        elif before is None or after < before:
            self.add(
                "check_tightened",
                name,
                True,
                f"{label} {'added' if before is None else 'lowered'} ({after:.4%}): a batch "
                "failing more fails whole",
            )
        else:
            self.add("check_loosened", name, False, f"{label} raised to {after:.4%}")

    def _batch_checks(self) -> None:
        """freshness, duplicate_rate and reconcile: added (of severity error) or changed
        break."""
        for kind in ("freshness", "duplicate_rate", "reconcile"):
            old = next((c for c in _batch(self.old) if c.name == kind), None)
            new = next((c for c in _batch(self.new) if c.name == kind), None)
            if old == new:
                continue
            if old is None and new is not None:
                holds = new.severity == "error"
                what = ": batches failing it are held back" if holds else " (a warning)"
                self.add("check_added", None, holds, f"{kind} check added{what}")
            elif new is None:
                self.add("check_removed", None, False, f"{kind} check removed")
            else:
                self.add("check_changed", None, True, f"{kind} check changed")

    def _checks(self) -> None:
        old = {c.name: c for c in self.old.checks if isinstance(c, ExpressionCheck)}
        new = {c.name: c for c in self.new.checks if isinstance(c, ExpressionCheck)}
        for name in [*old, *(n for n in new if n not in old)]:
            before, after = old.get(name), new.get(name)
            if before is None and after is not None:
                self.add(
                    "check_added",
                    None,
                    True,
                    f"check {name}: {after.expression!r} added: rows where it is false fail",
                )
            elif after is None and before is not None:
                self.add("check_removed", None, False, f"check {name} removed")
            elif (
                before is not None
                and after is not None
                and " ".join(before.expression.split()) != " ".join(after.expression.split())
            ):
                self.add(
                    "check_changed",
                    None,
                    True,
                    f"check {name}: {before.expression!r} → {after.expression!r}",
                )
            if before is not None and after is not None:
                self._severity(None, f"check {name}", before.severity, after.severity)
                self._rate(None, f"check {name}", before.max_failure_rate, after.max_failure_rate)
        self._row_count()
        self._batch_checks()

    def _row_count(self) -> None:
        old = next((c for c in self.old.checks if isinstance(c, RowCountCheck)), None)
        new = next((c for c in self.new.checks if isinstance(c, RowCountCheck)), None)
        for rule in ("min", "max"):
            before = getattr(old.row_count, rule) if old is not None else None
            after = getattr(new.row_count, rule) if new is not None else None
            if before == after:
                continue
            what = f"row_count {rule}"
            if before is None:
                self.add("check_added", None, True, f"{what}: {after} added: batches beyond fail")
            elif after is None:
                self.add("check_removed", None, False, f"{what}: {before} removed")
            else:
                tighter = after > before if rule == "min" else after < before
                verb = "raised" if after > before else "lowered"
                if tighter:
                    self.add(
                        "check_tightened",
                        None,
                        True,
                        f"{what} {verb} {before} → {after}: more batches fail",
                    )
                else:
                    self.add("check_loosened", None, False, f"{what} {verb} {before} → {after}")


# how strict each schema_drift choice is: a move up may fail or quarantine what loaded before
_DRIFT_RANK = {"ignore": 0, "evolve": 0, "warn": 0, "coerce": 0, "quarantine": 1, "fail": 2}


def _batch(spec: ObjectSpec) -> list[FreshnessCheck | DuplicateRateCheck | ReconcileCheck]:
    kinds = FreshnessCheck | DuplicateRateCheck | ReconcileCheck
    return [c for c in spec.checks if isinstance(c, kinds)]


def _compare(old: Any, new: Any) -> int | None:
    """-1, 0 or 1 as `old` is below, at or above `new`; None when they cannot be ordered."""
    if isinstance(old, bool) or isinstance(new, bool):
        return None
    if isinstance(old, int | float) and isinstance(new, int | float):
        return (old > new) - (old < new)
    if not (isinstance(old, str) and isinstance(new, str)) or "now" in (old, new):
        return None
    try:
        first, second = datetime.fromisoformat(old), datetime.fromisoformat(new)
    except ValueError:
        return None
    if (first.tzinfo is None) != (second.tzinfo is None):
        return None
    return (first > second) - (first < second)


def _names(values: Any) -> str:
    return "[" + ", ".join(str(v) for v in values) + "]"


def _quoted(text: str | None) -> str:
    if not text:
        return "none"
    short = " ".join(text.split())
    return repr(short if len(short) <= 40 else short[:39] + "…")
