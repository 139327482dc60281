"""`penstock quarantine release OBJECT [--where SQL] [--set COLUMN=EXPR]`: re-validate
quarantined rows against the current contract and load the rows that now pass.

**What is re-validated.** The rows held back (not those loaded anyway under `on_invalid:
warn`, nor malformed records, which have no values), as the quarantine keeps them: each
contract column's raw text. `--where` (DuckDB SQL over the quarantine's fields: the contract
columns as text, `_reasons`, `_batch_id`, `_row_number`, `_source_file`, `_superseded`)
narrows them; `--set COLUMN=EXPR` corrects them first (EXPR: DuckDB SQL over the same fields,
its result taken as the column's raw text). The row rules of the contract run as at a load
(types, required, min/max/in/pattern/length, expression checks, unique, references); batch
checks (row_count, freshness, duplicate_rate, failure rates) judged the batch as delivered and
are not judged again.

**What loads.** Every row that passes leaves the quarantine; per batch and key (merge, SCD2)
the later record of the batch wins as at a load, the others are duplicates. Each row loads by
the object's mode *as of its own batch*: with its batch id and its batch's first load time,
SCD2's `_valid_from` from its batch's extraction time; merge leaves a stored row that a later
batch loaded, or with a greater `order_by`, in place (the released row is counted stale). A
stored row of the same batch stays too: the table does not say which of the two records came
later, which a rebuild (keeping the later record of a batch) decides;
replace loads a released row only into the snapshot of its own batch. A row that still fails
stays quarantined, its reasons replaced by today's.

**Accounting.** In one transaction with the data, each batch's ledger row moves: `rows_loaded`
+= released, `rows_duplicate` += duplicates, `rows_quarantined` -= both, so rows_in = loaded +
quarantined + duplicate holds before and after.

**Durability.** The release is recorded in the lake (lake/releases.py) before the warehouse
changes; then the warehouse (one transaction), then the lake's quarantine files. A later load
of those batches (a rebuild) releases the same rows again, with the same corrections, right
after they load. A release killed before its transaction committed is finished by the next
release (or rebuild): recorded rows still held are released first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from penstock.catalog import ObjectSpec, Project
from penstock.catalog.expressions import scalar_problem
from penstock.defaults import DEFAULT_WAIT_SECONDS
from penstock.engine.quarantine_view import object_spec
from penstock.engine.release_rows import ReleaseResult, prepare
from penstock.engine.results import RunResult
from penstock.engine.session import Session
from penstock.errors import UsageError
from penstock.lake import Lake
from penstock.lake.releases import ReleaseRecord, add_release, read_releases
from penstock.sql import literal
from penstock.warehouse.quarantine import FIELDS

if TYPE_CHECKING:
    from penstock.warehouse import Warehouse

__all__ = ["ReleaseResult", "parse_sets", "release_quarantine", "replay_releases"]


def fields_of(obj: ObjectSpec) -> list[str]:
    """What `--where` and `--set` expressions may name: the quarantine's fields (FIELDS) and
    the contract columns (raw text)."""
    return [*FIELDS, *obj.columns]


def check_sql(option: str, text: str, obj: ObjectSpec) -> None:
    """`--where` / `--set` SQL is pasted into the release's queries: one scalar expression
    over the quarantine's fields, nothing else (catalog/expressions.py)."""
    problem = scalar_problem(text, fields_of(obj))
    if problem is not None:
        raise UsageError(f"{option} {text!r}: {problem}")


def parse_sets(values: Sequence[str], obj: ObjectSpec) -> dict[str, str]:
    """`--set COLUMN=EXPR` values as {column: expression}; the column must be the contract's."""
    sets: dict[str, str] = {}
    for value in values:
        column, eq, expression = value.partition("=")
        column, expression = column.strip(), expression.strip()
        if not eq or not column or not expression:
            raise UsageError(
                f'--set {value!r}: give COLUMN=EXPR, e.g. --set "country=upper(country)"'
            )
        if column not in obj.columns:
            raise UsageError(
                f"--set {value!r}: '{column}' is not a column of {obj.name} "
                f"(columns: {', '.join(obj.columns)})"
            )
        check_sql("--set", expression, obj)
        sets[column] = expression
    return sets


def release_quarantine(
    project: Project,
    object_name: str,
    *,
    where: str | None = None,
    sets: Sequence[str] = (),
    dry_run: bool = False,
    wait: float = DEFAULT_WAIT_SECONDS,
    on_wait: Callable[[str], None] | None = None,
) -> ReleaseResult:
    """Re-validate the object's held-back quarantine rows (those `where` picks, corrected by
    `sets`) and load those that pass (with `dry_run`: count them, change nothing)."""
    obj = object_spec(project, object_name)
    corrections = parse_sets(sets, obj)
    if where is not None:
        check_sql("--where", where, obj)
    _check_releasable(obj)
    with Session(
        project, wait=wait, on_wait=on_wait, command="quarantine release", record_catalog=False
    ) as session:
        result = ReleaseResult(obj.name, dry_run)
        if not dry_run:  # recorded rows still held (a release killed before its commit) first
            result.replayed = replay_releases(session.warehouse, session.lake, obj, None)
        work = prepare(session.warehouse, session.lake, obj, where, corrections, result)
        if work is None:
            if result.replayed:
                _count(session, obj)
            return result
        try:
            if dry_run:
                return result
            if result.released:  # recorded before the warehouse changes
                add_release(
                    session.lake.root,
                    ReleaseRecord(
                        obj.name, datetime.now(UTC), where, corrections, work.released_rows()
                    ),
                )
            work.apply()  # also when none passes: the rows that still fail get today's reasons
        finally:
            work.drop()
        # the metadata store hears of it (`penstock logs`), and `penstock status` shows the
        # object's counts as they are now
        done = RunResult(run_id=f"release-{uuid.uuid4().hex[:12]}", command="release")
        session.runner._log(
            done,
            "info",
            f"{obj.name}: released {result.released} of {result.examined} quarantined row(s) "
            f"({result.loaded} loaded, {result.released - result.loaded} duplicate)"
            + (f" where {where}" if where else "")
            + (
                f" with {', '.join(f'{c}={e}' for c, e in corrections.items())}"
                if corrections
                else ""
            ),
            obj,
            event="released",
            rows=result.released,
            batches={b: c.loaded + c.duplicate for b, c in result.batches.items()},
        )
        session.runner._count(done, obj)
        return result


def _count(session: Session, obj: ObjectSpec) -> None:
    """`penstock status` shows the object's counts as they are now."""
    session.runner._count(
        RunResult(run_id=f"release-{uuid.uuid4().hex[:12]}", command="release"), obj
    )


def replay_releases(
    warehouse: Warehouse, lake: Lake, obj: ObjectSpec, batch_ids: set[str] | None
) -> int:
    """Release again, as recorded, the rows of the object's recorded releases (of `batch_ids`,
    or of every batch) that its quarantine holds: after a rebuild loaded those batches again,
    or a release killed before its commit. The rows released."""
    released = 0
    for record in read_releases(lake.root, obj.name):
        rows = {b: r for b, r in record.rows.items() if r and (batch_ids is None or b in batch_ids)}
        if not rows:
            continue
        picked = " OR ".join(
            f"(_batch_id = {literal(b)} AND _row_number IN ({', '.join(map(str, r))}))"
            for b, r in sorted(rows.items())
        )
        result = ReleaseResult(obj.name, dry_run=False)
        work = prepare(warehouse, lake, obj, picked, record.sets, result)
        if work is None:
            continue
        try:
            if result.released:
                work.apply()
                released += result.released
        finally:
            work.drop()
    return released


def _check_releasable(obj: ObjectSpec) -> None:
    if obj.treated_columns:
        raise UsageError(
            f"object '{obj.name}' has columns with pii: hash, mask or drop "
            f"({', '.join(obj.treated_columns)}): its quarantine keeps their values treated, "
            "not as delivered, so its rows cannot be validated again; correct the source and "
            f"rebuild instead (`penstock rebuild --select {obj.name}`)"
        )
