"""Time travel over SCD2 objects (issue 12, part 4).

An SCD2 table holds every version of each key: `_valid_from` (the version's start, the
object's `order_by` value), `_valid_to` (the next version's start; NULL for the current one)
and `_is_current`. So the version of a key valid at T is the row with
`_valid_from <= T AND (_valid_to IS NULL OR _valid_to > T)`: exactly one per key that existed
at T.

- `as_of_sql`: `penstock query --as-of T "SELECT …"` rewrites every read of an SCD2 object's
  table into a read of the versions valid at T (parsed and written back by sqlglot in the
  warehouse's dialect; a CTE of the same name is not a table read and is left alone). Other
  tables are read as they are now, and said so.
- `history_sql`: `penstock history OBJECT KEY…` lists every version of one key with its
  validity and the batch (and landing file) that brought it.

Times are the table's: `_valid_from` is stored as a UTC timestamp without a zone when
`order_by` is a timestamptz column, as written when it is a plain timestamp. `--as-of` takes a
date or a timestamp; one with an offset is converted to UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from penstock.catalog import ObjectSpec, Project
from penstock.errors import UsageError
from penstock.instants import parse_instant
from penstock.sql import ident, literal

VALID = "_valid_from <= {t} AND (_valid_to IS NULL OR _valid_to > {t})"


def parse_as_of(text: str) -> datetime:
    """A date (its midnight) or a timestamp; with an offset, in UTC without it."""
    at = parse_instant(text, "--as-of")
    return at if at.tzinfo is None else at.astimezone(UTC).replace(tzinfo=None)


def dialect_of(project: Project) -> str:
    """sqlglot's name for the warehouse's SQL dialect."""
    scheme = project.warehouse.split(":", 1)[0].lower()
    return "postgres" if scheme.startswith("postgres") else "duckdb"


@dataclass(frozen=True)
class AsOf:
    sql: str  # the statement, reading SCD2 tables as of the time
    rewritten: tuple[str, ...]  # the SCD2 objects whose reads were rewritten
    current: tuple[str, ...]  # the other objects it reads, as they are now


def as_of_sql(sql: str, project: Project, at: datetime) -> AsOf:
    """`sql` with every read of an SCD2 object's table limited to its versions valid at `at`."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    dialect = dialect_of(project)
    try:
        statements = sqlglot.parse(sql, read=dialect)
    except ParseError as exc:
        raise UsageError(
            f"--as-of: cannot read the statement: {str(exc).splitlines()[0]}"
        ) from None
    if len(statements) != 1 or statements[0] is None:
        raise UsageError("--as-of: give one statement")
    tree = statements[0]
    by_table = {o.table_name.lower(): o for o in project.objects.values()}
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    when = f"TIMESTAMP {literal(at.isoformat(sep=' '))}"
    rewritten: list[str] = []
    current: list[str] = []
    for table in list(tree.find_all(exp.Table)):
        name = table.name.lower()
        schema = table.db.lower() if table.db else ""
        obj = by_table.get(name)
        if obj is None or (name in ctes and not schema) or schema not in ("", "main", "public"):
            continue
        if obj.load != "scd2":
            current.append(obj.name)
            continue
        alias = table.alias_or_name
        versions = sqlglot.parse_one(
            f"SELECT * FROM {ident(obj.table_name)} WHERE {VALID.format(t=when)}", read="duckdb"
        )
        if table.db:
            versions.find(exp.Table).set("db", exp.to_identifier(table.db))  # type: ignore[union-attr]
        table.replace(
            exp.Subquery(this=versions, alias=exp.TableAlias(this=exp.to_identifier(alias)))
        )
        rewritten.append(obj.name)
    return AsOf(
        tree.sql(dialect=dialect),
        tuple(dict.fromkeys(rewritten)),
        tuple(dict.fromkeys(current)),
    )


def scd2_object(project: Project, name: str) -> ObjectSpec:
    obj = project.objects.get(name)
    if obj is None:
        known = ", ".join(sorted(project.objects)) or "none"
        raise UsageError(f"no object named '{name}' (objects: {known})", object=name)
    if obj.load != "scd2":
        raise UsageError(
            f"object '{name}' loads with {obj.load}: only an scd2 object keeps versions "
            "(its current rows: penstock query)",
            object=name,
        )
    return obj


def ledger_table(project: Project) -> str:
    """The warehouse's ledger table as a query names it (PostgreSQL with `?schema=S` keeps it
    in `S_penstock`)."""
    if dialect_of(project) == "postgres":
        from penstock.warehouse.postgres_tables import Schemas
        from penstock.warehouse.postgres_url import parse_postgres_url

        return Schemas.of(parse_postgres_url(project.warehouse).schema).loads
    return "penstock.loads"


def history_sql(obj: ObjectSpec, key: tuple[str, ...], ledger: str = "penstock.loads") -> str:
    """Every version of the key `key` (its values as text, in the object's key order), oldest
    first, with its validity, batch and the landing file the batch came from."""
    if len(key) != len(obj.key):
        raise UsageError(
            f"object '{obj.name}' is keyed by {', '.join(obj.key)}: give {len(obj.key)} "
            f"value(s), got {len(key)}",
            object=obj.name,
        )
    where = " AND ".join(
        f"CAST(h.{ident(column)} AS VARCHAR) = {literal(value)}"
        for column, value in zip(obj.key, key, strict=True)
    )
    shown = [
        f"h.{ident(c)}"
        for c, spec in obj.columns.items()
        if spec.pii != "drop" and c not in obj.key
    ]
    return (
        "SELECT h._valid_from, h._valid_to, h._is_current, l.source_file, "
        f"{''.join(f'{c}, ' for c in shown)}h._batch_id "
        f"FROM {ident(obj.table_name)} h "
        f"LEFT JOIN {ledger} l "
        f"ON l.batch_id = h._batch_id AND l.object = {literal(obj.name)} "
        f"WHERE {where} ORDER BY h._valid_from"
    )
