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
batch loaded, or with a greater `order_by`, in place (the released row is counted stale);
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from penstock.catalog import ObjectSpec, Project
from penstock.catalog.expressions import scalar_problem
from penstock.defaults import DEFAULT_WAIT_SECONDS
from penstock.engine.quarantine_view import object_spec
from penstock.engine.results import RunResult
from penstock.engine.session import Session
from penstock.errors import UsageError, first_line
from penstock.lake import Lake, StagedBatch
from penstock.lake.atomic import atomic_target
from penstock.lake.manifest import PARQUET
from penstock.lake.read import NOW, ORDINAL, SEQ
from penstock.lake.releases import ReleaseRecord, add_release, read_releases
from penstock.lake.stage import extraction_order
from penstock.quality.compile import ColumnBinding, compile_validation, raw_alias
from penstock.quality.privacy_sql import load_columns
from penstock.quality.set_rules import all_reasons_sql, apply_references, apply_unique
from penstock.quality.validate import (
    BatchValidation,
    ChunkValidation,
    accepted_condition,
    version_columns,
)
from penstock.sql import ident, idents, literal
from penstock.warehouse.base import ReleaseCounts, ReleaseLoad
from penstock.warehouse.quarantine import FIELDS, QuarantineSelection

if TYPE_CHECKING:
    from penstock.warehouse import Warehouse


@dataclass
class ReleaseResult:
    """What a release did (or, with `dry_run`, would do), per batch and in all."""

    object: str
    dry_run: bool
    examined: int = 0  # quarantined rows selected and re-validated
    batches: dict[str, ReleaseCounts] = field(default_factory=dict)
    still_failing: dict[str, int] = field(default_factory=dict)  # reason -> rows

    @property
    def released(self) -> int:
        return sum(c.loaded + c.duplicate for c in self.batches.values())

    @property
    def loaded(self) -> int:
        return sum(c.loaded for c in self.batches.values())

    @property
    def failing(self) -> int:
        return self.examined - self.released


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
        if not dry_run:  # a release killed before its commit: its rows go first
            replay_releases(session.warehouse, session.lake, obj, None)
        result = ReleaseResult(obj.name, dry_run)
        work = _prepare(session.warehouse, session.lake, obj, where, corrections, result)
        if work is None:
            return result
        try:
            if dry_run or not result.released:
                return result
            add_release(
                session.lake.root,
                ReleaseRecord(
                    obj.name, datetime.now(UTC), where, corrections, work.released_rows()
                ),
            )
            work.apply()
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
        work = _prepare(warehouse, lake, obj, picked, record.sets, result)
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


@dataclass
class _Work:
    """A prepared release: the temp tables of the warehouse's DuckDB `conn` and what to load."""

    warehouse: Warehouse
    lake: Lake
    obj: ObjectSpec
    load: ReleaseLoad
    tables: list[str]

    def released_rows(self) -> dict[str, tuple[int, ...]]:
        rows = self.warehouse.conn.execute(
            f"SELECT batch_id, list(row_number ORDER BY row_number) "
            f"FROM {ident(self.load.released)} GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        return {str(b): tuple(int(n) for n in r) for b, r in rows}

    def apply(self) -> None:
        target = self.obj
        if self.obj.load == "replace":
            # only the rows of the snapshot batch are left to load: they join its rows
            target = self.obj.model_copy(update={"load": "append"})
        self.warehouse.release_rows(target, self.load)
        _drop_lake_rows(self.lake, self.warehouse.conn, self.obj.name, self.load.released)

    def drop(self) -> None:
        for table in self.tables:
            self.warehouse.conn.execute(f"DROP TABLE IF EXISTS {ident(table)}")
        self.warehouse.conn.execute(f"DROP VIEW IF EXISTS {ident(self.tables[0] + '_rows')}")


def _prepare(
    warehouse: Warehouse,
    lake: Lake,
    obj: ObjectSpec,
    where: str | None,
    sets: Mapping[str, str],
    result: ReleaseResult,
) -> _Work | None:
    """Select, correct and re-validate the rows; count into `result`. None: nothing selected."""
    conn = warehouse.conn
    prefix = f"__penstock_release_{uuid.uuid4().hex[:12]}"
    names = {
        w: f"{prefix}_{w}"
        for w in ("held", "batches", "checked", "load", "released", "failing", "stored")
    }
    work: _Work | None = None
    tables = list(names.values())
    try:
        if not _select(warehouse, obj, where, names["held"]):
            return None
        found = conn.execute(
            f"SELECT _batch_id, count(*) FROM {ident(names['held'])} GROUP BY ALL"
        ).fetchall()
        result.examined = sum(int(n) for _, n in found)
        if not result.examined:
            return None
        batches, loaded_at, positions = _batches(warehouse, lake, obj, [str(b) for b, _ in found])
        _batch_table(conn, names["batches"], batches, positions)
        _revalidate(conn, obj, names, sets)
        result.still_failing = {
            str(r): int(n)
            for r, n in conn.execute(
                f"SELECT r, count(*) FROM (SELECT unnest(reasons) AS r "
                f"FROM {ident(names['failing'])}) GROUP BY ALL ORDER BY 2 DESC, 1"
            ).fetchall()
        }
        if sets:  # a row that still fails keeps its values as delivered, and their reasons
            conn.execute(
                f"UPDATE {ident(names['failing'])} f SET reasons = h._reasons "
                f"FROM {ident(names['held'])} h "
                f"WHERE h._batch_id = f.batch_id AND h._row_number = f.row_number"
            )
        stale = _leave_out_stale(warehouse, obj, names, positions)
        result.batches = _counts(conn, names, batches, stale)
        chunk = ChunkValidation(
            batches,
            [
                BatchValidation(names["load"], "", rows_in=b.manifest.rows_in, rows_loaded=n)
                for b, n in zip(
                    batches, _rows_by_seq(conn, names["load"], len(batches)), strict=True
                )
            ],
            names["load"],
            "",
            [],
        )
        load = ReleaseLoad(chunk, loaded_at, names["released"], names["failing"], result.batches)
        work = _Work(warehouse, lake, obj, load, tables)
        return work
    finally:
        if work is None:
            for table in tables:
                conn.execute(f"DROP TABLE IF EXISTS {ident(table)}")
            conn.execute(f"DROP VIEW IF EXISTS {ident(names['held'] + '_rows')}")


def _select(warehouse: Warehouse, obj: ObjectSpec, where: str | None, into: str) -> bool:
    """The held-back, non-malformed quarantine rows `where` picks, as a temp table `into`
    (every contract column as text); False when the object has no quarantine rows at all."""
    page = warehouse.quarantine_page(obj, QuarantineSelection(limit=None))
    if not page.rows:
        return False
    types: dict[str, pa.DataType] = {
        "_batch_id": pa.string(),
        "_source_file": pa.string(),
        "_row_number": pa.int64(),
        "_loaded": pa.bool_(),
        "_superseded": pa.bool_(),
        "_reasons": pa.list_(pa.string()),
        "_raw_line": pa.string(),
        "_error": pa.string(),
        "_quarantined_at": pa.timestamp("us"),
    }
    columns = list(zip(*page.rows, strict=True))
    arrays = {
        name: pa.array(
            [_naive(v) for v in values] if name == "_quarantined_at" else list(values),
            type=types.get(name, pa.string()),
        )
        for name, values in zip(page.fields, columns, strict=True)
    }
    rows = pa.table(arrays)
    conn = warehouse.conn
    view = f"{into}_rows"
    conn.register(view, rows)
    try:
        condition = f"({where})" if where else "true"
        conn.execute(
            f"CREATE TEMP TABLE {ident(into)} AS SELECT * FROM {ident(view)} "
            f"WHERE NOT coalesce(_loaded, false) AND _raw_line IS NULL AND {condition}"
        )
    except duckdb.Error as exc:
        raise UsageError(f"--where {where!r}: {first_line(exc)}") from exc
    finally:
        conn.unregister(view)
    return True


def _naive(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _batches(
    warehouse: Warehouse, lake: Lake, obj: ObjectSpec, batch_ids: Sequence[str]
) -> tuple[list[StagedBatch], list[datetime], dict[str, int]]:
    """The staged batches `batch_ids` in load order, each one's ledger load time, and the
    place in load order of every batch of the object (ledger load time, then extraction)."""
    staged = {b.batch_id: b for b in lake.batches(obj.name)}
    ledger = {
        str(r["batch_id"]): r["loaded_at"] for r in warehouse.ledger() if r["object"] == obj.name
    }

    def order(batch_id: str) -> tuple[datetime, tuple[datetime, str, str]]:
        at = ledger.get(batch_id, datetime.max.replace(tzinfo=UTC))
        found = staged.get(batch_id)
        return (at, extraction_order(found) if found else (at, "", batch_id))

    positions = {b: i for i, b in enumerate(sorted(ledger, key=order), 1)}
    missing = [b for b in batch_ids if b not in staged or b not in ledger]
    if missing:
        raise UsageError(
            f"object '{obj.name}': batch {missing[0]} of its quarantine is not in the stage "
            "zone or not in the ledger; its rows cannot be released"
        )
    ordered = sorted(batch_ids, key=lambda b: positions[b])
    return [staged[b] for b in ordered], [ledger[b] for b in ordered], positions


def _batch_table(
    conn: duckdb.DuckDBPyConnection,
    name: str,
    batches: Sequence[StagedBatch],
    positions: Mapping[str, int],
) -> None:
    """seq (the batch's place among those released), batch_id, pos (its place among all the
    object's batches) and now (its extraction time), of each batch with rows to release."""
    values = ", ".join(
        f"({seq}, {literal(b.batch_id)}, {positions[b.batch_id]}, "
        f"TIMESTAMPTZ {literal(b.manifest.extracted_at.isoformat(sep=' '))})"
        for seq, b in enumerate(batches, 1)
    )
    conn.execute(
        f"CREATE TEMP TABLE {ident(name)} AS SELECT seq::INTEGER AS seq, batch_id, "
        f"pos::BIGINT AS pos, now FROM (VALUES {values}) v(seq, batch_id, pos, now)"
    )


def _revalidate(
    conn: duckdb.DuckDBPyConnection,
    obj: ObjectSpec,
    names: Mapping[str, str],
    sets: Mapping[str, str],
) -> None:
    """The rows through the contract's row rules: `checked`; then the rows that load
    (`load`: one per batch and key, as a load keeps), those that leave the quarantine
    (`released`) and those that stay, with their reasons (`failing`)."""
    held, checked = ident(names["held"]), ident(names["checked"])
    values = ", ".join(
        f"CAST(({sets[c]}) AS VARCHAR) AS {ident(c)}" if c in sets else f"h.{ident(c)}"
        for c in obj.columns
    )
    rows = (
        f"SELECT {values}, b.seq AS {SEQ}, b.now AS {NOW}, h._row_number, h._batch_id "
        f"FROM {held} h JOIN {ident(names['batches'])} b ON b.batch_id = h._batch_id "
        f"ORDER BY b.seq, h._row_number"
    )
    bindings = [
        ColumnBinding(name, spec, raw_alias(i), name, "VARCHAR")
        for i, (name, spec) in enumerate(obj.columns.items())
    ]
    sql = compile_validation(
        obj, bindings, rows, NOW, passthrough=[SEQ, "_row_number", "_batch_id"]
    )
    try:
        conn.execute(f"CREATE TEMP TABLE {checked} AS {sql}")
    except duckdb.Error as exc:
        shown = ", ".join(f"{c}={e}" for c, e in sets.items())
        raise UsageError(
            f"object '{obj.name}': the release does not validate"
            + (f" (--set {shown})" if sets else "")
            + f": {first_line(exc)}"
        ) from exc
    apply_references(conn, obj, names["checked"], obj.reference_tables)
    apply_unique(conn, obj, names["checked"], SEQ)
    accepted = accepted_condition(obj, [])
    versions = version_columns(obj)
    winner = "true"
    if versions:
        order = (
            f"{ident(obj.order_by)} DESC NULLS LAST, "
            if obj.order_by and obj.order_by not in versions
            else ""
        )
        winner = (
            f"row_number() OVER (PARTITION BY {SEQ}, {idents(versions)} "
            f"ORDER BY {order}_row_number DESC) = 1"
        )
    conn.execute(
        f"CREATE TEMP TABLE {ident(names['released'])} AS SELECT _batch_id AS batch_id, "
        f"_row_number::BIGINT AS row_number, {SEQ} AS seq, {winner} AS loads "
        f"FROM {checked} WHERE {accepted}"
    )
    conn.execute(
        f"CREATE TEMP TABLE {ident(names['load'])} AS SELECT {load_columns(obj, 'c.')}, "
        f"c.{SEQ}, c._row_number AS {ORDINAL} FROM {checked} c "
        f"SEMI JOIN {ident(names['released'])} r ON r.seq = c.{SEQ} "
        f"AND r.row_number = c._row_number AND r.loads"
    )
    conn.execute(
        f"CREATE TEMP TABLE {ident(names['failing'])} AS SELECT _batch_id AS batch_id, "
        f"_row_number::BIGINT AS row_number, ({all_reasons_sql(obj)})::VARCHAR[] AS reasons "
        f"FROM {checked} WHERE NOT coalesce(({accepted}), false)"
    )


def _leave_out_stale(
    warehouse: Warehouse, obj: ObjectSpec, names: Mapping[str, str], positions: Mapping[str, int]
) -> dict[int, int]:
    """Take out of `load` the rows a load of their own batch would not have left in the table
    (counted stale, by seq): merge, a stored row of the key from a later batch or with a greater
    `order_by`; replace, every row of a batch that is not the table's snapshot."""
    load, batches, stored = ident(names["load"]), ident(names["batches"]), names["stored"]
    conn = warehouse.conn
    if obj.load == "merge" and obj.key:
        ob = [obj.order_by] if obj.order_by and obj.order_by not in obj.key else []
        if not warehouse.stored_versions(obj, [*obj.key, *ob], stored):
            return {}
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE {ident(stored + '_at')} AS SELECT t.*, p.pos "
            f"FROM {ident(stored)} t JOIN (SELECT * FROM (VALUES {_values(positions)}) "
            f"v(batch_id, pos)) p ON p.batch_id = t._batch_id"
        )
        same = " AND ".join(f"t.{ident(k)} = l.{ident(k)}" for k in obj.key)
        later = "t.pos > b.pos"
        if ob:
            o = ident(ob[0])
            later = f"(t.{o} > l.{o} OR (t.{o} = l.{o} AND t.pos > b.pos))"
        losing = f"EXISTS (SELECT 1 FROM {ident(stored + '_at')} t WHERE {same} AND {later})"
    elif obj.load == "replace":
        if not warehouse.stored_versions(obj, [], stored):
            return {}
        losing = f"b.batch_id NOT IN (SELECT _batch_id FROM {ident(stored)})"
    else:
        return {}
    rows = conn.execute(
        f"SELECT l.{SEQ}, count(*) FROM {load} l JOIN {batches} b ON b.seq = l.{SEQ} "
        f"WHERE {losing} GROUP BY ALL"
    ).fetchall()
    if rows:
        conn.execute(
            f"DELETE FROM {load} WHERE rowid IN (SELECT l.rowid FROM {load} l "
            f"JOIN {batches} b ON b.seq = l.{SEQ} WHERE {losing})"
        )
    conn.execute(f"DROP TABLE IF EXISTS {ident(stored + '_at')}")
    return {int(s): int(n) for s, n in rows}


def _values(positions: Mapping[str, int]) -> str:
    """VALUES rows (batch_id, pos) of the object's loaded batches."""
    return ", ".join(f"({literal(b)}, {p})" for b, p in positions.items()) or "(NULL, 0)"


def _counts(
    conn: duckdb.DuckDBPyConnection,
    names: Mapping[str, str],
    batches: Sequence[StagedBatch],
    stale: Mapping[int, int],
) -> dict[str, ReleaseCounts]:
    found = {
        int(seq): (int(loads), int(dups))
        for seq, loads, dups in conn.execute(
            f"SELECT seq, count(*) FILTER (loads), count(*) FILTER (NOT loads) "
            f"FROM {ident(names['released'])} GROUP BY ALL"
        ).fetchall()
    }
    out = {}
    for seq, batch in enumerate(batches, 1):
        loads, dups = found.get(seq, (0, 0))
        if loads or dups:
            out[batch.batch_id] = ReleaseCounts(loads, dups, stale.get(seq, 0))
    return out


def _rows_by_seq(conn: duckdb.DuckDBPyConnection, load: str, n: int) -> list[int]:
    found = dict(conn.execute(f"SELECT {SEQ}, count(*) FROM {ident(load)} GROUP BY ALL").fetchall())
    return [int(found.get(seq, 0)) for seq in range(1, n + 1)]


def _drop_lake_rows(
    lake: Lake, conn: duckdb.DuckDBPyConnection, object_name: str, released: str
) -> None:
    """Remove the released rows from the object's quarantine files in the lake."""
    pairs = f"(SELECT batch_id, row_number FROM {ident(released)})"
    for path in lake.quarantine_files(object_name):
        source = f"read_parquet({literal(str(path))})"
        counted = conn.execute(
            f"SELECT count(*) FILTER (r.batch_id IS NOT NULL), count(*) FILTER "
            f"(r.batch_id IS NULL) FROM {source} q LEFT JOIN {pairs} r "
            f"ON r.batch_id = q._batch_id AND r.row_number = q._row_number"
        ).fetchone()
        held, left = counted if counted is not None else (0, 0)
        if not held:
            continue
        if not left:
            path.unlink()
            continue
        with atomic_target(path) as tmp:
            conn.execute(
                f"COPY (SELECT q.* FROM {source} q ANTI JOIN {pairs} r "
                f"ON r.batch_id = q._batch_id AND r.row_number = q._row_number) "
                f"TO {literal(str(tmp))} ({PARQUET})"
            )
