"""Which columns of a model's inputs feed each of its output columns (sqlglot's lineage).

The query is qualified against the schemas of what it reads (objects' tables as declared,
upstream models as their own analysis found them), so `*` expands and every column is tied to
its table; then each output column is traced through CTEs and subqueries down to the columns
of the tables it reads. How a column is made is the OpenLineage subtype: `IDENTITY` (a
column as it is, through any number of CTEs), `AGGREGATION` (an aggregate on the way, such as
`sum(amount)`) or `TRANSFORMATION` (any other expression: CASE, arithmetic, a cast).

Columns read only to filter, join or group (`WHERE`, `ON`, `GROUP BY`) are not listed: they
decide which rows, not what a value is. An output made of no column (`count(*)`, a constant)
lists nothing. Best effort: a query sqlglot cannot qualify has no column lineage (the model
still runs; `Analysis.problem` says why).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node, lineage
from sqlglot.optimizer.qualify import qualify

IDENTITY = "IDENTITY"
TRANSFORMATION = "TRANSFORMATION"
AGGREGATION = "AGGREGATION"


@dataclass(frozen=True, order=True)
class SourceColumn:
    """A column of a table a model reads (`table` is the name as the schema knows it)."""

    table: str
    column: str


@dataclass
class Analysis:
    """A model's output columns and where each comes from."""

    columns: tuple[str, ...] = ()
    lineage: dict[str, tuple[tuple[SourceColumn, ...], str]] = field(default_factory=dict)
    problem: str | None = None  # why it is not known, when it is not


def analyse(query: exp.Expr, dialect: str, schema: Mapping[str, Mapping[str, str]]) -> Analysis:
    """The output columns of `query` and their lineage; `schema`: table → column → type."""
    try:
        qualified = qualify(
            query.copy(),
            schema={t: dict(c) for t, c in schema.items()},
            dialect=dialect,
            validate_qualify_columns=True,
            identify=False,
        )
    except SqlglotError as exc:
        return Analysis(problem=str(exc).splitlines()[0])
    if not isinstance(qualified, exp.Query):
        return Analysis(problem="not a query")
    columns = tuple(qualified.named_selects)
    out: dict[str, tuple[tuple[SourceColumn, ...], str]] = {}
    for column in columns:
        try:
            node = lineage(column, qualified, schema={}, dialect=dialect)
        except SqlglotError:
            continue
        out[column] = (_sources(node), _subtype(node))
    return Analysis(columns=columns, lineage=out)


def _sources(node: Node) -> tuple[SourceColumn, ...]:
    found: set[SourceColumn] = set()
    for n in node.walk():
        if n.downstream or not isinstance(n.source, exp.Table):
            continue
        column = n.expression.name if isinstance(n.expression, exp.Column) else n.name
        column = column.rsplit(".", 1)[-1].strip('"')
        if column and column != "*":
            found.add(SourceColumn(n.source.name, column))
    return tuple(sorted(found))


def _subtype(node: Node) -> str:
    subtype = IDENTITY
    for n in node.walk():
        if not n.downstream and isinstance(n.source, exp.Table):
            continue  # a table's column itself
        inner = n.expression.this if isinstance(n.expression, exp.Alias) else n.expression
        if inner.find(exp.AggFunc) is not None:
            return AGGREGATION
        if not isinstance(inner, exp.Column):
            subtype = TRANSFORMATION
    return subtype
