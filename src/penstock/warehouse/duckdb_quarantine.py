"""The quarantine read as one DuckDB query: filters, `superseded`, the count and the limit
all run in SQL, so reading 50 rows of a million costs one scan, not a million Python rows.

Semantics (superseded, reason values): `penstock.warehouse.quarantine`.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from penstock.catalog import ObjectSpec
from penstock.catalog.dialect import column_dialect
from penstock.quality.casts import strict_cast_sql
from penstock.sql import ident, idents, literal
from penstock.warehouse.base import QUARANTINE_SCHEMA
from penstock.warehouse.duckdb_tables import (
    LEDGER,
    existing_columns,
    object_table,
    quarantine_table,
)
from penstock.warehouse.quarantine import (
    FIELDS,
    QuarantinePage,
    QuarantineSelection,
    reason_value,
)

# aliases for the typed key of a quarantine row (contract columns never start with "_")
_KEY = "__key_{}"


def read_quarantine(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, selection: QuarantineSelection
) -> QuarantinePage:
    columns = tuple(selection.columns if selection.columns is not None else obj.columns)
    fields = (*FIELDS, *columns)
    stored = existing_columns(conn, QUARANTINE_SCHEMA, obj.name)
    if not stored:
        return QuarantinePage(fields, [], 0, 0)
    superseded, later, keyed = (
        _superseded_sql(conn, obj, stored) if selection.superseded else ("false", "", False)
    )
    keys = [_KEY.format(i) for i in range(len(obj.key))] if keyed else []
    typed_keys = "".join(
        f", {_typed_key(obj, name)} AS {ident(alias)}"
        for name, alias in zip(obj.key if keyed else [], keys, strict=True)
    )
    loaded = "coalesce(q._loaded, false)" if "_loaded" in stored else "false"
    values = "".join(
        f", q.{ident(c)}" if c in stored else f", NULL::VARCHAR AS {ident(c)}" for c in columns
    )
    hidden = "WHERE NOT _superseded " if selection.hide_superseded else ""
    limit = f" LIMIT {int(selection.limit)}" if selection.limit is not None else ""
    sql = f"""
        WITH base AS (
            SELECT q.*, l.source_file AS _source_file, l.loaded_at AS _quarantined_at
            FROM (SELECT *{typed_keys} FROM {quarantine_table(obj)}) q
            LEFT JOIN {LEDGER} l ON l.batch_id = q._batch_id
            WHERE {_where(selection)}
        ){later}
        SELECT q._batch_id, q._source_file, q._row_number, {loaded} AS _loaded,
               {superseded} AS _superseded, q._reasons, q._raw_line, q._error,
               q._quarantined_at{values}
        FROM base q{_later_join(keys)}
    """
    outer = (
        f"SELECT *, count(*) OVER () AS __total, "
        f"count(*) FILTER (WHERE _superseded) OVER () AS __superseded FROM ({sql}) "
        f"{hidden}ORDER BY _quarantined_at NULLS LAST, _batch_id, _row_number{limit}"
    )
    rows = conn.execute(outer).fetchall()
    if not rows:
        return QuarantinePage(fields, [], 0, 0)
    total, superseded_count = int(rows[0][-2]), int(rows[0][-1])
    if selection.hide_superseded:
        # the counts ran before the superseded rows were left out
        total, superseded_count = total - superseded_count, 0
    return QuarantinePage(fields, [r[:-2] for r in rows], total, superseded_count)


def reason_counts(conn: duckdb.DuckDBPyConnection, obj: ObjectSpec) -> list[tuple[str, int]]:
    """How many quarantine rows carry each reason, most frequent first."""
    if not existing_columns(conn, QUARANTINE_SCHEMA, obj.name):
        return []
    rows = conn.execute(
        f"SELECT reason, count(*) AS n FROM (SELECT unnest(_reasons) AS reason "
        f"FROM {quarantine_table(obj)}) GROUP BY reason ORDER BY n DESC, reason"
    ).fetchall()
    return [(str(r), int(n)) for r, n in rows]


def _where(selection: QuarantineSelection) -> str:
    conditions = ["true"]
    if selection.reasons:
        tests = []
        for value in selection.reasons:
            text, is_kind = reason_value(value)
            test = f"__reason = {literal(text)}"
            if is_kind:
                test += f" OR starts_with(__reason, {literal(text + ':')})"
            tests.append(test)
        conditions.append(
            f"len(list_filter(q._reasons, lambda __reason: {' OR '.join(tests)})) > 0"
        )
    if selection.batch_ids is not None:
        ids = ", ".join(literal(b) for b in selection.batch_ids) or "NULL"
        conditions.append(f"q._batch_id IN ({ids})")
    if selection.file:
        pattern = literal(selection.file)
        conditions.append(
            f"(l.source_file = {pattern} OR l.source_file GLOB {pattern} "
            f"OR l.source_file GLOB '*/' || {pattern})"
        )
    return " AND ".join(conditions)


def _superseded_sql(
    conn: duckdb.DuckDBPyConnection, obj: ObjectSpec, stored: Mapping[str, str]
) -> tuple[str, str, bool]:
    """The `_superseded` expression over `q` (a base row), the CTE it needs, and whether
    it compares keys (then base rows carry their typed key)."""
    table = existing_columns(conn, "main", obj.table_name)
    if not table or "_batch_id" not in table:
        return "false", "", False
    if obj.load == "replace":
        # the table is one snapshot: every row of an earlier batch is superseded by it
        snapshot = (
            f",\n        snapshot AS (SELECT max(tl.loaded_at) AS __at FROM "
            f"(SELECT DISTINCT _batch_id FROM {object_table(obj)}) t "
            f"JOIN {LEDGER} tl ON tl.batch_id = t._batch_id)"
        )
        return (
            "coalesce(q._quarantined_at < (SELECT __at FROM snapshot), false)",
            snapshot,
            False,
        )
    if not obj.key or any(k not in table or k not in stored for k in obj.key):
        return "false", "", False
    keys = [_KEY.format(i) for i in range(len(obj.key))]
    key_cols = ", ".join(f"t.{ident(k)} AS {ident(a)}" for k, a in zip(obj.key, keys, strict=True))
    semi = " AND ".join(f"t.{ident(k)} = b.{ident(a)}" for k, a in zip(obj.key, keys, strict=True))
    # the latest load of each quarantined key: a semi join keeps the table scan to those keys
    later = (
        f",\n        later AS (SELECT {key_cols}, max(tl.loaded_at) AS __last "
        f"FROM {object_table(obj)} t "
        f"SEMI JOIN (SELECT DISTINCT {idents(keys)} FROM base) b ON {semi} "
        f"JOIN {LEDGER} tl ON tl.batch_id = t._batch_id GROUP BY ALL)"
    )
    return "coalesce(lt.__last > q._quarantined_at, false)", later, True


def _later_join(keys: list[str]) -> str:
    if not keys:
        return ""
    on = " AND ".join(f"lt.{ident(a)} = q.{ident(a)}" for a in keys)
    return f" LEFT JOIN later lt ON {on}"


def _typed_key(obj: ObjectSpec, name: str) -> str:
    """A key column's raw quarantined text cast as validation casts it (the object's dialect);
    a hashed key is stored hashed in both tables (quality/privacy_sql.py), so it compares as is."""
    spec = obj.columns[name]
    if spec.pii == "hash":
        return ident(name)
    return strict_cast_sql(name, spec, "VARCHAR", True, column_dialect(obj, spec))
