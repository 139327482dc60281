"""Schema drift: a staged batch's observed schema against the object's contract.

A batch's observed schema is its manifest's columns with the types staging saw (every CSV and
JSON value is text, `VARCHAR`; Parquet keeps its types). Compared with the declared columns
(bound as validation binds them: `from:`, names matched ignoring case) it has

- new columns: source columns no contract column reads (names starting with `_` aside);
- missing columns: contract columns the batch lacks;
- type changes: bound columns whose observed type is not the declared one, nor one that
  converts into it without loss (an INTEGER into a `bigint`, a DECIMAL(10,2) into a
  `decimal(12,2)`, any number into a `double`, a DATE into a `timestamp`...). Text never is:
  it carries no type, and the strict cast judges each value.

The object's `schema_drift:` policy (catalog/schema_drift.py) says what each does. It is
applied when the batch is validated, from the manifest and the contract alone, so a rebuild
replaying the stage zone decides exactly as the run did. A batch without rows is never judged
(an empty file has no header to miss columns from).

A schema version is one observed schema (column names and types, in any order), identified by
`fingerprint`; the engine records each with the batch it was first seen in.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from penstock.catalog import ColumnSpec, ObjectSpec
from penstock.catalog.columns import IDENTIFIER
from penstock.catalog.schema_drift import MISSING_REASON
from penstock.catalog.types import ColumnType
from penstock.errors import PenstockError, TerminalError
from penstock.lake import StagedBatch
from penstock.quality.compile import bind_columns, unbound_columns

__all__ = [
    "MISSING_REASON",
    "SchemaDiff",
    "SchemaDrifted",
    "check_drift",
    "converts",
    "ensure_bindable",
    "evolve",
    "fingerprint",
    "schema_diff",
]


class SchemaDrifted(TerminalError):
    """A batch's columns differ from its contract and the object's `schema_drift:` policy
    fails such a batch. Nothing of it loads; later batches of the object wait."""


@dataclass(frozen=True)
class SchemaDiff:
    """How an observed schema differs from a contract (see the module's docstring)."""

    new_columns: tuple[str, ...] = ()
    missing_columns: tuple[str, ...] = ()
    # contract column → (declared type, observed type)
    type_changes: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.new_columns or self.missing_columns or self.type_changes)


def fingerprint(schema: Mapping[str, str]) -> str:
    """The id of a schema version: its columns and types, whatever their order."""
    return _fingerprint(tuple(sorted(schema.items())))


@functools.lru_cache(maxsize=1024)
def _fingerprint(columns: tuple[tuple[str, str], ...]) -> str:
    # an object's batches share a few schemas: a run numbering the versions of 10,000
    # staged batches hashed the same text 10,000 times
    text = json.dumps(columns, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def schema_diff(obj: ObjectSpec, schema: Mapping[str, str]) -> SchemaDiff:
    """How `schema` (a manifest's) differs from `obj`'s contract. Columns `evolve` added to
    the contract (`obj.evolved_columns`) are never missing. Raises ContractViolation when
    two source columns match one contract column (as validation would)."""
    bindings = bind_columns(obj, schema)
    evolved = set(obj.evolved_columns)
    missing = tuple(b.name for b in bindings if b.stage_column is None and b.name not in evolved)
    changes = {
        b.name: (b.spec.type, b.stage_type)
        for b in bindings
        if b.stage_column is not None
        and b.name not in evolved
        and not converts(b.stage_type, b.spec.column_type)
    }
    return SchemaDiff(tuple(unbound_columns(bindings, schema)), missing, changes)


def ensure_bindable(obj: ObjectSpec, batch: StagedBatch) -> SchemaDiff | None:
    """The batch's drift, or None when its columns do not bind (validation says why)."""
    try:
        return schema_diff(obj, batch.manifest.schema) if batch.manifest.rows else SchemaDiff()
    except PenstockError:
        return None


def check_drift(obj: ObjectSpec, batch: StagedBatch) -> SchemaDiff:
    """The batch's drift from the contract; raises SchemaDrifted when the policy fails it."""
    m = batch.manifest
    if not m.rows:
        return SchemaDiff()
    diff = schema_diff(obj, m.schema)
    policy = obj.schema_drift
    problems: list[tuple[str, str]] = []  # (column, what)
    fixes: list[str] = []  # the policy keys that would let the batch load
    if policy.new_columns == "fail" and diff.new_columns:
        problems += [(c, f"new column '{c}' is not in the contract") for c in diff.new_columns]
        fixes.append("new_columns: ignore | evolve")
    if policy.missing_columns == "fail" and diff.missing_columns:
        problems += [(c, f"contract column '{c}' is missing") for c in diff.missing_columns]
        fixes.append("missing_columns: warn | quarantine")
    if policy.type_changes == "fail" and diff.type_changes:
        problems += [
            (c, f"column '{c}' is {observed} in the file but {declared} in the contract")
            for c, (declared, observed) in diff.type_changes.items()
        ]
        fixes.append("type_changes: coerce")
    if problems:
        raise SchemaDrifted(
            f"object '{obj.name}': {m.source_file} (batch {batch.batch_id}) drifts from its "
            f"contract: {'; '.join(what for _, what in problems)}; its schema_drift policy "
            f"fails the batch, nothing was loaded (fix the file or the contract, or set "
            f"schema_drift: {{{', '.join(fixes)}}})",
            object=obj.name,
            batch_id=batch.batch_id,
            file=m.source_file,
            column=problems[0][0],
            columns=[c for c, _ in problems],
        )
    return diff


def evolve(obj: ObjectSpec, batches: Sequence[StagedBatch]) -> ObjectSpec:
    """`obj` with the new columns of `batches` (under `new_columns: evolve`) added to its
    contract as `text`, in the order they were first seen, and named in `evolved_columns`.
    A name that cannot be a table column fails the batch that brings it."""
    if obj.schema_drift.new_columns != "evolve":
        return obj
    added: dict[str, StagedBatch] = {}
    seen: dict[tuple[tuple[str, str], ...], tuple[str, ...]] = {}  # batches share few schemas
    for batch in batches:
        if batch.manifest.rows and batch.skip is None:
            schema = tuple(batch.manifest.schema.items())
            if schema not in seen:
                seen[schema] = schema_diff(obj, batch.manifest.schema).new_columns
            for column in seen[schema]:
                added.setdefault(column, batch)
    taken = {name.lower(): name for name in obj.columns}
    for column, batch in added.items():
        problem = _name_problem(column, taken)
        if problem is not None:
            raise SchemaDrifted(
                f"object '{obj.name}': {batch.manifest.source_file} (batch {batch.batch_id}) "
                f"has new column '{column}', which schema_drift new_columns: evolve cannot add "
                f"to table {obj.table_name}: {problem}; declare it in the contract (with from: "
                f"'{column}' under a name of your choice), or set new_columns: ignore",
                object=obj.name,
                batch_id=batch.batch_id,
                file=batch.manifest.source_file,
                column=column,
            )
        taken[column.lower()] = column
    if not added:
        return obj
    text = ColumnSpec(type="text")
    return obj.model_copy(
        update={
            "columns": {**obj.columns, **dict.fromkeys(added, text)},
            "evolved_columns": (*obj.evolved_columns, *added),
        }
    )


def _name_problem(column: str, taken: Mapping[str, str]) -> str | None:
    if not IDENTIFIER.match(column):
        return "it is not a plain name (letters, digits and _, not starting with a digit)"
    if column.lower() in taken:
        return f"the contract already has a column '{taken[column.lower()]}'"
    return None


# ---- observed types ---------------------------------------------------------------------

_INTEGERS = {  # DuckDB integer types → the declared integer types that hold every value
    "TINYINT": ("integer", "bigint"),
    "SMALLINT": ("integer", "bigint"),
    "INTEGER": ("integer", "bigint"),
    "UTINYINT": ("integer", "bigint"),
    "USMALLINT": ("integer", "bigint"),
    "UINTEGER": ("bigint",),
    "BIGINT": ("bigint",),
}
# the digits an integer type may need: a decimal(p,s) holds it when p - s is at least that
_INTEGER_DIGITS = {
    "TINYINT": 3,
    "UTINYINT": 3,
    "SMALLINT": 5,
    "USMALLINT": 5,
    "INTEGER": 10,
    "UINTEGER": 10,
    "BIGINT": 19,
}
_FLOATS = ("FLOAT", "DOUBLE", "REAL", "FLOAT4", "FLOAT8")
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")
_NESTED = re.compile(r"^(STRUCT|MAP|UNION)\(|\[\d*\]$")


def converts(observed: str, declared: ColumnType) -> bool:
    """Does a column staged as DuckDB type `observed` convert into `declared` without a type
    change (see the module's docstring)?"""
    kind = observed.strip().upper()
    if kind in ("VARCHAR", '"NULL"', "NULL") or kind.startswith("VARCHAR("):
        return True  # text carries no type; an all-NULL column has none
    name = declared.name
    if name == "text":
        return bool(_NESTED.search(kind))  # nested values are stored as JSON text
    if name == "json":
        return bool(_NESTED.search(kind)) or kind == "JSON"
    if name in ("integer", "bigint"):
        return name in _INTEGERS.get(kind, ())
    if name == "double":
        numeric = kind in _INTEGERS or kind in _FLOATS or kind == "HUGEINT"
        return numeric or bool(_DECIMAL.match(kind))
    if declared.precision is not None and declared.scale is not None:  # decimal(p,s)
        digits = declared.precision - declared.scale
        if kind in _INTEGER_DIGITS:
            return _INTEGER_DIGITS[kind] <= digits
        match = _DECIMAL.match(kind)
        if match is None:
            return False
        precision, scale = int(match[1]), int(match[2])
        return scale <= declared.scale and precision - scale <= digits
    if name == "boolean":
        return kind == "BOOLEAN"
    if name == "date":
        return kind == "DATE"
    if name == "timestamp":  # an instant would lose its offset
        zoned = "TIME ZONE" in kind or kind == "TIMESTAMPTZ"
        return kind == "DATE" or (kind.startswith("TIMESTAMP") and not zoned)
    if name == "timestamptz":
        return kind == "DATE" or kind.startswith("TIMESTAMP")
    return False
