"""Rules that need more than one row: `references`, `unique` and `max_failure_rate`.

The validation pass (quality/compile.py) is projections only, so the checked table keeps the
records in file order (their record numbers come from it). A rule that joins would reorder
them, so `references` is applied after the pass, as an UPDATE of the checked table's flags and
of a text column of extra reasons (`SET_REASONS_COLUMN`: DuckDB updates a list column by
deleting and appending the row, which would renumber it; a boolean or text column is updated
in place). A value
not found in the referenced object's warehouse table fails the row (`references:<col>`; NULL
passes, as a foreign key does). The referenced table is read as it stands when the batch is
validated: declare `depends_on` (or put the objects in ordered groups) so it loads first.

`unique` fails a row whose value another row holds: a row of another key (any other row,
without a key) in the warehouse table as it stands before the batch loads, or in the same
batch; a row held back by another rule holds nothing. NULL is never a duplicate. Rows of one
batch that share a value all fail. All conflicts are found first, then flagged, so one unique
column does not change another's. Such an object loads one batch per transaction
(`ObjectSpec.chunking`): each batch is judged against the table the earlier ones left, in a run
as in a rebuild.

`max_failure_rate` is judged per batch once the reasons are counted: a rule failing more than
its share of the batch's records fails the batch (`failure_rate:<reason>`), as a failed row
count does.

An object with either keeps the raw text of every record through validation (not only of the
failing ones), since a row can fail after the pass or with its whole batch: more memory for
large batches of such objects, nothing for the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb

from penstock.catalog import ObjectSpec
from penstock.catalog.batch_checks import DuplicateRateCheck, FreshnessCheck, ReconcileCheck
from penstock.catalog.rules import RuleOptions
from penstock.errors import ContractViolation, first_line
from penstock.lake import Manifest, StagedBatch
from penstock.quality.compile import FAILED_COLUMN, REASONS_COLUMN, WARNED_COLUMN
from penstock.sql import ident, literal

RATE_PREFIX = "failure_rate:"
SET_REASONS_COLUMN = "__penstock_set_reasons"  # comma-separated (reasons hold no comma)


def has_set_rules(obj: ObjectSpec) -> bool:
    return any(spec.references or spec.unique for spec in obj.columns.values())


def keeps_all_raw(obj: ObjectSpec, options: Mapping[str, RuleOptions]) -> bool:
    """Does any row of this object fail after the pass, or with its whole batch?"""
    return (
        has_set_rules(obj)
        or any(o.max_failure_rate is not None for o in options.values())
        or any(
            isinstance(c, FreshnessCheck | DuplicateRateCheck | ReconcileCheck)
            and c.severity == "error"
            for c in obj.checks
        )
    )


def all_reasons_sql(obj: ObjectSpec) -> str:
    """A row's reasons: those of the pass, then those found after it."""
    if not has_set_rules(obj):
        return REASONS_COLUMN
    return (
        f"list_concat({REASONS_COLUMN}, "
        f"coalesce(string_split({SET_REASONS_COLUMN}, ','), []::VARCHAR[]))"
    )


def apply_references(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, checked: str, table_of: Mapping[str, str]
) -> None:
    """Fail (or warn) the checked rows whose value is not in the referenced table.

    `table_of` maps an object name to its warehouse table (quoted). A referenced table that does
    not exist yet refuses the batch: loading it later (after the referenced object) is right,
    quarantining every row is not.
    """
    referencing = {c: s for c, s in obj.columns.items() if s.references}
    if has_set_rules(obj):
        conn.execute(f"ALTER TABLE {checked} ADD COLUMN {SET_REASONS_COLUMN} VARCHAR")
    for column, spec in referencing.items():
        assert spec.references is not None
        target, _, target_column = spec.references.partition(".")
        table = table_of[target]
        try:
            conn.execute(f"SELECT {ident(target_column)} FROM {table} LIMIT 0").fetchall()
        except duckdb.Error as exc:
            raise ContractViolation(
                f"object '{obj.name}': column {column} references {spec.references}, but the "
                f"table of '{target}' cannot be read ({first_line(exc)}): load '{target}' "
                f"first (depends_on: [{target}])",
                object=obj.name,
                column=column,
            ) from exc
        warn = spec.options("references").severity == "warn"
        flag = WARNED_COLUMN if warn else FAILED_COLUMN
        col = ident(column)
        conn.execute(
            f"UPDATE {checked} SET {flag} = true, {SET_REASONS_COLUMN} = "
            f"concat_ws(',', {SET_REASONS_COLUMN}, {literal('references:' + column)}) "
            f"WHERE {col} IS NOT NULL AND {col} NOT IN "
            f"(SELECT {ident(target_column)} FROM {table} "
            f"WHERE {ident(target_column)} IS NOT NULL)"
        )


def rate_failures(
    reason_counts: Mapping[str, int], rows_in: int, options: Mapping[str, RuleOptions]
) -> list[str]:
    """The `failure_rate:<reason>` checks a batch fails: rules over their max_failure_rate."""
    if rows_in <= 0:
        return []
    return [
        f"{RATE_PREFIX}{reason}"
        for reason, option in options.items()
        if option.max_failure_rate is not None
        and reason_counts.get(reason, 0) / rows_in > option.max_failure_rate
    ]


def warn_reasons(options: Mapping[str, RuleOptions]) -> set[str]:
    return {reason for reason, option in options.items() if option.severity == "warn"}


def failed_reasons_sql(seq_column: str, failed: Sequence[tuple[int, list[str]]]) -> str:
    """A VARCHAR[] expression: the failed batch checks of the row's batch (by SEQ)."""
    if not failed:
        return "[]::VARCHAR[]"
    whens = " ".join(
        f"WHEN {seq} THEN [{', '.join(literal(r) for r in reasons)}]::VARCHAR[]"
        for seq, reasons in failed
    )
    return f"CASE {seq_column} {whens} ELSE []::VARCHAR[] END"


def apply_unique(conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, checked: str, seq: str) -> None:
    """Fail (or warn) the checked rows whose `unique` value another row holds (see above);
    `seq` is the column numbering the batches of the micro-batch."""
    uniques = [c for c, spec in obj.columns.items() if spec.unique]
    if not uniques:
        return
    found = conn.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?",
        [obj.table_name],
    ).fetchall()
    table = ident(obj.table_name) if found[0][0] else None
    conflicts = f"{checked}_unique"
    selects = [_conflicts_sql(obj, checked, table, seq, c) for c in uniques]
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {conflicts} AS {' UNION ALL '.join(selects)}")
    try:
        for column in uniques:
            warn = obj.columns[column].options("unique").severity == "warn"
            flag = WARNED_COLUMN if warn else FAILED_COLUMN
            conn.execute(
                f"UPDATE {checked} SET {flag} = true, {SET_REASONS_COLUMN} = "
                f"concat_ws(',', {SET_REASONS_COLUMN}, {literal('unique:' + column)}) "
                f"WHERE rowid IN (SELECT r FROM {conflicts} WHERE reason = "
                f"{literal('unique:' + column)})"
            )
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {conflicts}")


def _conflicts_sql(obj: ObjectSpec, checked: str, table: str | None, seq: str, column: str) -> str:
    from penstock.quality.privacy_sql import stored_sql

    col = ident(column)
    key = list(obj.key)
    if key:
        other_key = " OR ".join(f"o.{ident(k)} IS DISTINCT FROM c.{ident(k)}" for k in key)
    else:
        other_key = "o.rowid <> c.rowid"
    in_chunk = (
        f"EXISTS (SELECT 1 FROM {checked} o WHERE o.{col} = c.{col} AND o.{seq} = c.{seq} "
        f"AND NOT o.{FAILED_COLUMN} AND ({other_key}))"
    )
    found = [in_chunk]
    if table is not None:
        stored = stored_sql(obj, column, f"c.{col}") or f"c.{col}"
        if key:
            stored_keys = [stored_sql(obj, k, f"c.{ident(k)}") or f"c.{ident(k)}" for k in key]
            other = " OR ".join(
                f"t.{ident(k)} IS DISTINCT FROM {s}" for k, s in zip(key, stored_keys, strict=True)
            )
        else:
            other = "true"
        found.append(f"EXISTS (SELECT 1 FROM {table} t WHERE t.{col} = {stored} AND ({other}))")
    return (
        f"SELECT c.rowid AS r, {literal('unique:' + column)} AS reason FROM {checked} c "
        f"WHERE c.{col} IS NOT NULL AND ({' OR '.join(found)})"
    )


def judge_batch_checks(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    checked: str,
    seq: str,
    batches: Sequence[StagedBatch],
    versions: Sequence[str],
) -> list[tuple[int, str, bool]]:
    """The freshness, duplicate_rate and reconcile checks the chunk's batches fail (catalog/
    batch_checks.py): (seq, reason, held back) for each, held back when its severity is
    error. `versions` are the columns that make a record a duplicate (the key, and order_by
    for SCD2 dated by it)."""
    from penstock.quality.bounds import value_literal

    failures: list[tuple[int, str, bool]] = []
    for check in obj.checks:
        if isinstance(check, FreshnessCheck):
            column = check.freshness.column
            spec = obj.columns[column]
            seconds = obj.freshness_seconds(check)
            oldest = " ".join(
                f"WHEN {i} THEN {value_literal(spec, 'now', b.manifest.extracted_at)} "
                f"- INTERVAL {literal(f'{seconds} seconds')}"
                for i, b in enumerate(batches, 1)
            )
            rows = conn.execute(
                f"SELECT {seq}, coalesce(max({ident(column)}) >= CASE {seq} {oldest} END, false) "
                f"FROM {checked} GROUP BY {seq}"
            ).fetchall()
            stale = {int(s) for s, fresh in rows if not fresh}
            failures += [(s, "check:freshness", check.severity == "error") for s in sorted(stale)]
        elif isinstance(check, DuplicateRateCheck) and versions:
            key = ", ".join(ident(v) for v in versions)
            rows = conn.execute(
                f"SELECT {seq}, count(*) - count(DISTINCT ({key})) FROM {checked} "
                f"WHERE NOT {FAILED_COLUMN} GROUP BY ALL"
            ).fetchall()
            for s, repeats in rows:
                rows_in = batches[int(s) - 1].manifest.rows_in
                if rows_in and int(repeats) / rows_in > check.duplicate_rate.max:
                    failures.append((int(s), "check:duplicate_rate", check.severity == "error"))
        elif isinstance(check, ReconcileCheck):
            failures += [
                (i, "check:reconcile", check.severity == "error")
                for i, b in enumerate(batches, 1)
                if reconcile_problem(b.manifest) is not None
            ]
    return failures


def reconcile_problem(manifest: Manifest) -> str | None:
    """Why a batch fails its `reconcile` check (both counts), or None: the counts agree, or
    the source was not counted (a batch staged before the check was declared)."""
    counted = manifest.source_rows
    if counted is None or counted == manifest.rows_in:
        return None
    return f"the source counts {counted} row(s) in the window, the batch holds {manifest.rows_in}"
