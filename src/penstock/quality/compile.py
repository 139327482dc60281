"""Compile an object's contract into one SQL pass over a staged batch.

Every value is cast with TRY_CAST to its declared type; each rule becomes a CASE that yields a
stable reason name, gathered into the row's `_reasons` list:

    required:<col>  type:<col>  min:<col>  max:<col>  in:<col>  pattern:<col>  check:<name>

Reasons come in column declaration order (per column: required, type, min, max, in, pattern),
then expression checks in declaration order. An empty or blank value counts as missing. Rules
other than required/type apply only to values that cast; an expression check fails only when
it is FALSE (NULL passes, as in a SQL CHECK constraint).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from penstock.catalog import ColumnSpec, ExpressionCheck, ObjectSpec
from penstock.sql import ident, literal

REASONS_COLUMN = "_reasons"


@dataclass(frozen=True)
class ColumnBinding:
    """A contract column and where its raw value comes from in the staged batch."""

    name: str
    spec: ColumnSpec
    raw_alias: str
    stage_column: str | None
    stage_type: str

    @property
    def raw_is_text(self) -> bool:
        return self.stage_type.upper() in ("VARCHAR", "TEXT", "STRING")


def bind_columns(obj: ObjectSpec, stage_schema: Mapping[str, str]) -> list[ColumnBinding]:
    """Match contract columns to staged columns by name, ignoring case."""
    by_lower = {name.lower(): name for name in stage_schema}
    bindings = []
    for index, (name, spec) in enumerate(obj.columns.items()):
        stage_column = by_lower.get(name.lower())
        stage_type = stage_schema[stage_column] if stage_column else "VARCHAR"
        bindings.append(ColumnBinding(name, spec, f"__raw_{index}", stage_column, stage_type))
    return bindings


def _bound_literal(spec: ColumnSpec, value: object, now: datetime) -> str:
    family = spec.column_type.family
    if value == "now":
        return literal(now.date() if family == "date" else now.replace(tzinfo=None))
    if family == "date" and isinstance(value, str):
        return literal(date.fromisoformat(value))
    if family == "timestamp" and isinstance(value, str):
        return literal(datetime.fromisoformat(value).replace(tzinfo=None))
    return literal(value)


def _missing(binding: ColumnBinding) -> str:
    raw = ident(binding.raw_alias)
    if binding.raw_is_text:
        return f"({raw} IS NULL OR trim({raw}) = '')"
    return f"({raw} IS NULL)"


def column_reasons(obj: ObjectSpec, binding: ColumnBinding, now: datetime) -> list[str]:
    """The CASE expressions for one column, in the documented order."""
    spec, name = binding.spec, binding.name
    col = ident(name)
    out = []
    if obj.is_required(name):
        out.append(f"CASE WHEN {_missing(binding)} THEN {literal('required:' + name)} END")
    if spec.column_type.family != "text":
        out.append(
            f"CASE WHEN NOT {_missing(binding)} AND {col} IS NULL "
            f"THEN {literal('type:' + name)} END"
        )
    if spec.min is not None:
        bound = _bound_literal(spec, spec.min, now)
        out.append(f"CASE WHEN {col} < {bound} THEN {literal('min:' + name)} END")
    if spec.max is not None:
        bound = _bound_literal(spec, spec.max, now)
        out.append(f"CASE WHEN {col} > {bound} THEN {literal('max:' + name)} END")
    if spec.in_ is not None:
        values = ", ".join(literal(v) for v in spec.in_)
        out.append(f"CASE WHEN {col} NOT IN ({values}) THEN {literal('in:' + name)} END")
    if spec.pattern is not None:
        out.append(
            f"CASE WHEN NOT regexp_matches({col}, {literal(spec.pattern)}) "
            f"THEN {literal('pattern:' + name)} END"
        )
    return out


def check_reasons(checks: Sequence[ExpressionCheck]) -> list[str]:
    return [
        f"CASE WHEN NOT coalesce(({check.expression}), true) "
        f"THEN {literal('check:' + check.name)} END"
        for check in checks
    ]


def typed_expr(binding: ColumnBinding) -> str:
    target = binding.spec.column_type.duckdb_type
    raw = ident(binding.raw_alias)
    if binding.spec.column_type.family == "text":
        return raw if binding.raw_is_text else f"CAST({raw} AS VARCHAR)"
    return f"TRY_CAST({raw} AS {target})"


def expression_checks(obj: ObjectSpec) -> list[ExpressionCheck]:
    return [c for c in obj.checks if isinstance(c, ExpressionCheck)]


def compile_validation(
    obj: ObjectSpec, bindings: Sequence[ColumnBinding], stage_sql: str, now: datetime
) -> str:
    """One SELECT over the staged rows: `_row_number`, raw values, typed values, `_reasons`."""
    raw_cols = ", ".join(
        f"{ident(b.stage_column) if b.stage_column else 'NULL::VARCHAR'} AS {ident(b.raw_alias)}"
        for b in bindings
    )
    raw_names = ", ".join(ident(b.raw_alias) for b in bindings)
    typed_cols = ", ".join(f"{typed_expr(b)} AS {ident(b.name)}" for b in bindings)
    reasons = [r for b in bindings for r in column_reasons(obj, b, now)]
    reasons += check_reasons(expression_checks(obj))
    reason_list = "[" + ", ".join(reasons) + "]::VARCHAR[]" if reasons else "[]::VARCHAR[]"
    return f"""
        SELECT *, list_filter({reason_list}, lambda x: x IS NOT NULL) AS {REASONS_COLUMN}
        FROM (
            SELECT _row_number, {raw_names}, {typed_cols}
            FROM (SELECT _row_number, {raw_cols} FROM ({stage_sql}) s0) s1
        ) s2
    """
