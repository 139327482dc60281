"""Compile an object's contract into one SQL pass over a staged batch.

Every value is cast strictly to its declared type (quality/casts.py: exact or NULL); each
rule becomes a CASE that yields a stable reason name, gathered into the row's `_reasons` list:

    required:<col>  type:<col>  min:<col>  max:<col>  between:<col>  in:<col>  pattern:<col>
    length:<col>  check:<name>  references:<col>

Reasons come in column declaration order (per column: required, type, min, max, between, in,
pattern, length), then expression checks in declaration order, then `references` (checked
after the pass, against another object's table: quality/set_rules.py). A rule of severity
`warn` (catalog/rules.py) adds its reason but does not hold the row back. An empty or blank
value (whitespace only: space, tab, CR, LF, VT, FF, no-break space), or a text value that is
one of the object's `null_values`, counts as missing. The object's value dialect
(catalog/dialect.py) is applied here, at validation, never at staging. Rules other than
required/type apply only to values that cast; an expression check fails only when it is FALSE
(NULL passes, as in a SQL CHECK constraint).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from penstock.catalog import ColumnSpec, ExpressionCheck, ObjectSpec
from penstock.catalog.columns import source_key
from penstock.catalog.dialect import ColumnDialect, column_dialect
from penstock.catalog.rules import RuleOptions
from penstock.catalog.schema_drift import MISSING_REASON
from penstock.errors import ContractViolation
from penstock.lake.read import RESERVED_PREFIX
from penstock.quality.bounds import Now, value_literal
from penstock.quality.casts import missing_sql, raw_text_sql, strict_cast_sql
from penstock.sql import ident, literal

# internal names carry the reserved prefix: a source column cannot collide with them
REASONS_COLUMN = f"{RESERVED_PREFIX}reasons"
FAILED_COLUMN = f"{RESERVED_PREFIX}failed"  # a rule of severity error failed: held back
WARNED_COLUMN = f"{RESERVED_PREFIX}warned"  # only rules of severity warn failed: loads
# the raw values (as text) of a row that may go to quarantine, one list for all columns (one
# column of mostly NULLs costs less to materialise than one per contract column)
RAW_COLUMN = f"{RESERVED_PREFIX}raw"
DEFAULT_OPTIONS = RuleOptions()


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
    """Which staged column feeds each contract column: the one place that decides it.

    A contract column reads the source column its `from:` names, else the one of its own name,
    matched ignoring case and surrounding whitespace (`source_key`). Where a batch holds more
    than one spelling (Parquet may), the exact spelling wins; otherwise the match is ambiguous
    and the batch is refused.
    """
    by_key: dict[str, list[str]] = {}
    for staged in stage_schema:
        by_key.setdefault(source_key(staged), []).append(staged)
    bindings = []
    for index, (name, spec) in enumerate(obj.columns.items()):
        wanted = spec.source_name(name)
        candidates = by_key.get(source_key(wanted), [])
        stage_column = wanted if wanted in candidates else None
        if stage_column is None and len(candidates) > 1:
            spelled = " and ".join(f"'{c}'" for c in candidates)
            raise ContractViolation(
                f"object '{obj.name}': source columns {spelled} both match '{wanted}' "
                f"(names match ignoring case and surrounding spaces); rename one in the source",
                object=obj.name,
                column=name,
            )
        if stage_column is None and candidates:
            stage_column = candidates[0]
        stage_type = stage_schema[stage_column] if stage_column else "VARCHAR"
        bindings.append(ColumnBinding(name, spec, raw_alias(index), stage_column, stage_type))
    return bindings


def raw_alias(index: int) -> str:
    """The name the raw value of the contract's `index`-th column goes by in validation."""
    return f"{RESERVED_PREFIX}raw_{index}"


def raw_value_sql(alias: str, index: int) -> str:
    """The raw value (text) of the contract's `index`-th column in a checked row (table alias
    `alias`, with its dot): NULL unless the row kept its raw values."""
    return f"{alias}{RAW_COLUMN}[{index + 1}]"


def unbound_columns(
    bindings: Sequence[ColumnBinding], stage_schema: Mapping[str, str]
) -> list[str]:
    """The staged columns no contract column reads (system-looking `_` names aside)."""
    bound = {b.stage_column for b in bindings}
    return [c for c in stage_schema if c not in bound and not c.startswith("_")]


def _missing(binding: ColumnBinding, dialect: ColumnDialect) -> str:
    """TRUE when the column's raw value is missing: NULL, blank, or a null token."""
    return missing_sql(ident(binding.raw_alias), binding.raw_is_text, dialect)


@dataclass(frozen=True)
class Rule:
    """One row-level rule: a SQL condition that is TRUE when the row fails, and its reason."""

    condition: str
    reason: str
    options: RuleOptions = DEFAULT_OPTIONS

    @property
    def warns(self) -> bool:
        return self.options.severity == "warn"


def column_rules(
    obj: ObjectSpec, binding: ColumnBinding, now: Now, missing: str | None = None
) -> list[Rule]:
    """The rules of one column, in the documented order. `missing` names a column that holds
    the raw value's missing test (`missing_sql`) where it is computed once for the row's rules
    (a text column's rules all need it); by default the rules carry the test themselves."""
    spec, name = binding.spec, binding.name
    col = ident(name)
    if missing is None:
        missing = _missing(binding, column_dialect(obj, spec))
    out = []
    typed = spec.column_type.family != "text"
    if obj.is_required(name):
        # a value that cast is present: test for blank text only where the cast gave NULL
        absent = f"CASE WHEN {col} IS NULL THEN {missing} ELSE false END" if typed else missing
        out.append(Rule(absent, f"required:{name}", spec.options("required")))
    if typed:
        out.append(
            Rule(
                f"CASE WHEN {col} IS NULL THEN NOT {missing} ELSE false END",
                f"type:{name}",
            )
        )
    if spec.min is not None:
        low = value_literal(spec, spec.min, now)
        out.append(Rule(f"{col} < {low}", f"min:{name}", spec.options("min")))
    if spec.max is not None:
        high = value_literal(spec, spec.max, now)
        out.append(Rule(f"{col} > {high}", f"max:{name}", spec.options("max")))
    if spec.between is not None:
        low, high = (value_literal(spec, v, now) for v in spec.between)
        out.append(
            Rule(f"{col} NOT BETWEEN {low} AND {high}", f"between:{name}", spec.options("between"))
        )
    value_rules = []
    if spec.in_ is not None:
        values = ", ".join(value_literal(spec, v, now) for v in spec.in_)
        value_rules.append(Rule(f"{col} NOT IN ({values})", f"in:{name}", spec.options("in")))
    if spec.pattern is not None:
        value_rules.append(
            Rule(
                f"NOT regexp_matches({col}, {literal(spec.pattern)})",
                f"pattern:{name}",
                spec.options("pattern"),
            )
        )
    if spec.length is not None:
        bounds = spec.length
        outside = [
            *([f"length({col}) < {bounds.min}"] if bounds.min is not None else []),
            *([f"length({col}) > {bounds.max}"] if bounds.max is not None else []),
        ]
        value_rules.append(
            Rule(f"({' OR '.join(outside)})", f"length:{name}", spec.options("length"))
        )
    if not typed:
        # blank text is a missing value: `required` speaks for it, the value rules do not
        value_rules = [
            Rule(f"CASE WHEN {missing} THEN false ELSE {r.condition} END", r.reason, r.options)
            for r in value_rules
        ]
    return out + value_rules


def check_rules(checks: Sequence[ExpressionCheck]) -> list[Rule]:
    return [
        Rule(f"NOT coalesce(({c.expression}), true)", f"check:{c.name}", c.options) for c in checks
    ]


def typed_expr(obj: ObjectSpec, binding: ColumnBinding) -> str:
    return strict_cast_sql(
        binding.raw_alias,
        binding.spec,
        binding.stage_type,
        binding.raw_is_text,
        column_dialect(obj, binding.spec),
    )


def missing_column_rules(obj: ObjectSpec, bindings: Sequence[ColumnBinding]) -> list[Rule]:
    """Under `schema_drift: {missing_columns: quarantine}`, a contract column the batch lacks
    fails every row as `schema:missing:<column>` (a column `evolve` added is never missing)."""
    if obj.schema_drift.missing_columns != "quarantine":
        return []
    evolved = set(obj.evolved_columns)
    return [
        Rule("true", f"{MISSING_REASON}{b.name}")
        for b in bindings
        if b.stage_column is None and b.name not in evolved
    ]


def expression_checks(obj: ObjectSpec) -> list[ExpressionCheck]:
    return [c for c in obj.checks if isinstance(c, ExpressionCheck)]


def compile_validation(
    obj: ObjectSpec,
    bindings: Sequence[ColumnBinding],
    stage_sql: str,
    now: Now,
    *,
    keep_all_raw: str = "false",
    passthrough: Sequence[str] = (),
) -> str:
    """One SELECT over the staged rows: typed values, failed flag, reasons, and the raw values
    (as text, a list in column order: `raw_value_sql`) of failing rows, or of every row where
    `keep_all_raw` (SQL) holds. It keeps the rows in file order (projections only), so a table
    created from it numbers them in file order. `passthrough` names columns of `stage_sql`
    carried through as they are. `now` is the extraction time, or the name of a column of
    `stage_sql` holding it (TIMESTAMPTZ)."""
    carried = "".join(f"{ident(c)}, " for c in passthrough)
    # `now` may be a column of the stage rows (a chunk's batches each have their own): it is
    # carried to where the rules are evaluated, not into the output
    inner = carried + (f"{ident(now)}, " if isinstance(now, str) else "")
    rule_now: Now = ident(now) if isinstance(now, str) else now
    raw_cols = ", ".join(
        f"{ident(b.stage_column) if b.stage_column else 'NULL::VARCHAR'} AS {ident(b.raw_alias)}"
        for b in bindings
    )
    raw_names = ", ".join(ident(b.raw_alias) for b in bindings)
    typed_cols = "".join(f", {typed_expr(obj, b)} AS {ident(b.name)}" for b in bindings)
    # a text column's missing test is needed for every row, by its required rule and each
    # value rule (and again for the reasons of a failing row): computed once, beside the casts
    # (a typed column's rules test it only where the cast gave NULL: rare, left in place)
    missing = {
        b.name: f"{RESERVED_PREFIX}missing_{i}"
        for i, b in enumerate(bindings)
        if b.spec.column_type.family == "text"
    }
    missing_cols = "".join(
        f", {_missing(b, column_dialect(obj, b.spec))} AS {ident(missing[b.name])}"
        for b in bindings
        if b.name in missing
    )
    rules = [
        r
        for b in bindings
        for r in column_rules(
            obj, b, rule_now, ident(missing[b.name]) if b.name in missing else None
        )
    ]
    rules += check_rules(expression_checks(obj))
    rules += missing_column_rules(obj, bindings)
    # `_failed` and `_warned` are cheap booleans per row; the list of reasons is built only
    # for the rows that failed a rule (CASE evaluates its THEN branch for those rows alone).
    failed = " OR ".join(_flag_terms(obj, bindings, [r for r in rules if not r.warns]))
    warned = " OR ".join(f"coalesce({r.condition}, false)" for r in rules if r.warns)
    cases = ", ".join(f"CASE WHEN {r.condition} THEN {literal(r.reason)} END" for r in rules)
    reasons = (
        f"CASE WHEN {FAILED_COLUMN} OR {WARNED_COLUMN} THEN list_filter([{cases}]::VARCHAR[], "
        f"lambda x: x IS NOT NULL) ELSE []::VARCHAR[] END"
    )
    # raw text is kept only where a row failed: the quarantine needs it, loaded rows do not
    # (unless a batch-level check may fail: then every row may go to quarantine)
    keep = f"{FAILED_COLUMN} OR {WARNED_COLUMN} OR ({keep_all_raw})"
    raw_texts = ", ".join(raw_text_sql(ident(b.raw_alias), b.stage_type) for b in bindings)
    raw_if_failed = f"CASE WHEN {keep} THEN [{raw_texts}]::VARCHAR[] END AS {RAW_COLUMN}"
    typed_names = ", ".join(ident(b.name) for b in bindings)
    return f"""
        SELECT {carried}{typed_names}, {FAILED_COLUMN}, {WARNED_COLUMN},
               {reasons} AS {REASONS_COLUMN}, {raw_if_failed}
        FROM (
            SELECT *, {failed or "false"} AS {FAILED_COLUMN},
                   {warned or "false"} AS {WARNED_COLUMN}
            FROM (
                SELECT {inner}{raw_names}{typed_cols}{missing_cols}
                FROM (SELECT {inner}{raw_cols} FROM ({stage_sql}) s0) s1
            ) s2
        ) s3
    """


def _flag_terms(
    obj: ObjectSpec, bindings: Sequence[ColumnBinding], rules: Sequence[Rule]
) -> list[str]:
    """The terms of a row's failed flag, one per rule, except that a required typed column's
    `required` and `type` rules, both in `rules`, are one term: between them they fail every
    row whose cast gave NULL (blank: required; anything else: type), so the flag needs no
    blank test (the reasons still tell the two apart)."""
    reasons = {r.reason for r in rules}
    folded: dict[str, str] = {}
    for b in bindings:
        name = b.name
        pair = (f"required:{name}", f"type:{name}")
        if b.spec.column_type.family != "text" and all(p in reasons for p in pair):
            folded[pair[0]] = f"{ident(name)} IS NULL"
            folded[pair[1]] = ""
    terms = []
    for r in rules:
        term = folded.get(r.reason)
        if term is None:
            terms.append(f"coalesce({r.condition}, false)")
        elif term:
            terms.append(term)
    return terms


def rule_options(obj: ObjectSpec) -> dict[str, RuleOptions]:
    """Every rule's reason name with its options, for the rules that have any."""
    out: dict[str, RuleOptions] = {}
    for name, spec in obj.columns.items():
        for rule, options in spec.rule_options.items():
            out[f"{rule}:{name}"] = options
    for check in expression_checks(obj):
        if check.severity != "error" or check.max_failure_rate is not None:
            out[f"check:{check.name}"] = check.options
    return out
