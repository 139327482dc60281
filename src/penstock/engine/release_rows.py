"""The rows of a quarantine release (engine/quarantine_release.py says what a release is):
picked from the quarantine, corrected, validated again by the contract's row rules and made
ready for `Warehouse.release_rows`, as temp tables of the warehouse's DuckDB connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from penstock.catalog import ObjectSpec
from penstock.catalog.schema_drift import MISSING_REASON
from penstock.errors import UsageError, first_line
from penstock.lake import Lake, StagedBatch
from penstock.lake.read import NOW, ORDINAL, SEQ
from penstock.lake.stage import extraction_order
from penstock.quality.compile import (
    FAILED_COLUMN,
    REASONS_COLUMN,
    ColumnBinding,
    compile_validation,
    raw_alias,
)
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
from penstock.warehouse.quarantine import QuarantineSelection
from penstock.warehouse.quarantine_files import drop_rows_from_files

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
    # rows of earlier, recorded releases released again first (a release killed before its
    # commit, or recorded rows a stricter contract held back until now)
    replayed: int = 0

    @property
    def released(self) -> int:
        return sum(c.loaded + c.duplicate for c in self.batches.values())

    @property
    def loaded(self) -> int:
        return sum(c.loaded for c in self.batches.values())

    @property
    def failing(self) -> int:
        return self.examined - self.released


@dataclass
class PreparedRelease:
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


def prepare(
    warehouse: Warehouse,
    lake: Lake,
    obj: ObjectSpec,
    where: str | None,
    sets: Mapping[str, str],
    result: ReleaseResult,
) -> PreparedRelease | None:
    """Select, correct and re-validate the rows; count into `result`. None: nothing selected."""
    conn = warehouse.conn
    prefix = f"__penstock_release_{uuid.uuid4().hex[:12]}"
    names = {
        w: f"{prefix}_{w}"
        for w in ("held", "batches", "checked", "load", "released", "failing", "stored")
    }
    work: PreparedRelease | None = None
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
        work = PreparedRelease(warehouse, lake, obj, load, tables)
        return work
    finally:
        if work is None:
            for table in tables:
                conn.execute(f"DROP TABLE IF EXISTS {ident(table)}")
            conn.execute(f"DROP VIEW IF EXISTS {ident(names['held'] + '_rows')}")


def _select(warehouse: Warehouse, obj: ObjectSpec, where: str | None, into: str) -> bool:
    """The held-back, non-malformed quarantine rows `where` picks, as a temp table `into`
    (every contract column as text); False when the object has no quarantine rows at all."""
    superseded = where is not None and "_superseded" in where
    page = warehouse.quarantine_page(obj, QuarantineSelection(limit=None, superseded=superseded))
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
    _keep_missing_columns(conn, obj, names)
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


def _keep_missing_columns(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, names: Mapping[str, str]
) -> None:
    """A row held back because its file lacked a contract column (`schema:missing:<column>`,
    under `schema_drift: {missing_columns: quarantine}`) still lacks it: while the policy and
    the column stay, so does the reason (its text in the quarantine is NULL, not a value)."""
    if obj.schema_drift.missing_columns != "quarantine":
        return
    kept = [f"{MISSING_REASON}{c}" for c in obj.columns if c not in obj.evolved_columns]
    if not kept:
        return
    listed = f"[{', '.join(literal(r) for r in kept)}]::VARCHAR[]"
    checked = ident(names["checked"])
    conn.execute(
        f"UPDATE {checked} SET {FAILED_COLUMN} = true, {REASONS_COLUMN} = list_concat("
        f"{REASONS_COLUMN}, list_intersect(h._reasons, {listed})) FROM {ident(names['held'])} h "
        f"WHERE h._batch_id = {checked}._batch_id AND h._row_number = {checked}._row_number "
        f"AND list_has_any(h._reasons, {listed})"
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
        # a stored row of the same batch stays: the load kept it from that delivery, and the
        # table does not say which of the two records came later
        later = "t.pos >= b.pos"
        if ob:
            o = ident(ob[0])
            later = f"(t.{o} > l.{o} OR (t.{o} = l.{o} AND t.pos >= b.pos))"
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
    join = f"LEFT JOIN {pairs} r ON r.batch_id = q._batch_id AND r.row_number = q._row_number"
    drop_rows_from_files(conn, lake.quarantine_files(object_name), "r.batch_id IS NOT NULL", join)
