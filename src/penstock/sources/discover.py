"""`penstock discover SOURCE [TABLE...]`: a database's catalog as ready-to-use object YAML.

Each table becomes an object: its columns with the contract type that reads them exactly
(sources/db_types.py), `required: true` from NOT NULL, `key:` from the primary key, and a
suggested `cursor:` (a timestamp dating each row's last change, such as `updated_at`) when
the table has a key. A column whose name is not a penstock column name gets a snake_case
name and `from:` its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from penstock.catalog import Project
from penstock.catalog.database import DatabaseSource
from penstock.errors import UsageError
from penstock.sources.db_driver import quote_text
from penstock.sources.db_types import CatalogColumn, contract_type, suggest_cursor

_PG_COLUMNS = """
SELECT c.table_schema::text, c.table_name::text, c.column_name::text, c.udt_name::text, '',
       c.numeric_precision::int, c.numeric_scale::int, c.is_nullable::text
FROM information_schema.columns c
JOIN information_schema.tables t
  ON t.table_schema = c.table_schema AND t.table_name = c.table_name
WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema')
  AND c.table_schema NOT LIKE 'pg_toast%'
ORDER BY c.table_schema, c.table_name, c.ordinal_position
"""
_MY_COLUMNS = """
SELECT c.table_schema, c.table_name, c.column_name, lower(c.data_type), lower(c.column_type),
       c.numeric_precision, c.numeric_scale, c.is_nullable
FROM information_schema.columns c
WHERE c.table_schema = DATABASE()
ORDER BY c.table_schema, c.table_name, c.ordinal_position
"""
_KEYS = """
SELECT {schema}, {table}, {column}
FROM information_schema.table_constraints tc
JOIN information_schema.key_column_usage k
  ON k.constraint_name = tc.constraint_name AND k.table_schema = tc.table_schema
 AND k.table_name = tc.table_name
WHERE tc.constraint_type = 'PRIMARY KEY' AND {where}
ORDER BY k.table_schema, k.table_name, k.ordinal_position
"""
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class DiscoveredColumn:
    name: str  # the contract's name
    source_name: str  # the database's
    db_type: str
    type: str
    required: bool


@dataclass
class DiscoveredTable:
    object: str
    table: str  # as `table:` reads it (schema.table outside PostgreSQL's public schema)
    columns: list[DiscoveredColumn] = field(default_factory=list)
    key: list[str] = field(default_factory=list)
    cursor: str | None = None

    def to_dict(self, source: str) -> dict[str, Any]:
        return {
            "object": self.object,
            "source": source,
            "table": self.table,
            "key": self.key,
            "cursor": self.cursor,
            "columns": [c.__dict__ for c in self.columns],
        }


def snake(name: str) -> str:
    text = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text) if text else "column"
    return text if text[:1].isalpha() else f"c_{text}"


def discover_tables(
    project: Project, source: str, tables: Sequence[str] = ()
) -> list[DiscoveredTable]:
    from penstock.sources.database import DatabaseSourceReader

    spec = project.sources.get(source)
    if not isinstance(spec, DatabaseSource):
        databases = [n for n, s in project.sources.items() if isinstance(s, DatabaseSource)]
        raise UsageError(
            f"'{source}' is not a database source of this project "
            f"(database sources: {', '.join(databases) or 'none'})"
        )
    reader = DatabaseSourceReader(project, source, spec)
    conn, _ = reader.connect_serving()
    try:
        from penstock.sources.db_driver import source_error

        try:
            rows = conn.rows(_PG_COLUMNS if spec.kind == "postgres" else _MY_COLUMNS)
            where = (
                "k.table_schema NOT IN ('pg_catalog', 'information_schema')"
                if spec.kind == "postgres"
                else "k.table_schema = DATABASE()"
            )
            text = reader.dialect.text
            keys = conn.rows(
                _KEYS.format(
                    schema=text("k.table_schema"),
                    table=text("k.table_name"),
                    column=text("k.column_name"),
                    where=where,
                )
            )
        except Exception as exc:
            raise source_error(source, f"cannot read the catalog of {reader.display}", exc) from exc
        if spec.kind == "mysql":
            rows = _mariadb_json(conn, rows)
    finally:
        conn.close()
    return _tables(spec.kind, rows, keys, tables, source)


def _mariadb_json(conn: Any, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """MariaDB's JSON is LONGTEXT with a `json_valid(col)` check: report such columns as json
    (MySQL reports json itself, and has no table_name in its check constraints)."""
    try:
        checks = conn.rows(
            "SELECT table_name, check_clause FROM information_schema.check_constraints "
            "WHERE constraint_schema = DATABASE()"
        )
    except Exception:
        return rows
    valid = {
        (str(table), match.group(1))
        for table, clause in checks
        if (match := re.fullmatch(r"json_valid\(`(.+)`\)", str(clause).strip()))
    }
    return [
        (*r[:3], "json", "json", *r[5:]) if (str(r[1]), str(r[2])) in valid else r for r in rows
    ]


def _tables(
    kind: str,
    rows: list[tuple[Any, ...]],
    keys: list[tuple[Any, ...]],
    wanted: Sequence[str],
    source: str,
) -> list[DiscoveredTable]:
    found: dict[tuple[str, str], list[CatalogColumn]] = {}
    for schema, table, name, data_type, column_type, precision, scale, nullable in rows:
        found.setdefault((str(schema), str(table)), []).append(
            CatalogColumn(
                str(name),
                str(data_type).lower(),
                str(column_type or "").lower(),
                None if precision is None else int(precision),
                None if scale is None else int(scale),
                str(nullable).upper() == "YES",
            )
        )
    primary: dict[tuple[str, str], list[str]] = {}
    for schema, table, name in keys:
        primary.setdefault((str(schema), str(table)), []).append(str(name))
    selected = _select(kind, list(found), wanted, source)
    names = [t for _, t in selected]
    out = []
    for schema, table in selected:
        shown = table if kind == "mysql" or schema == "public" else f"{schema}.{table}"
        obj = snake(table) if names.count(table) == 1 else snake(f"{schema}_{table}")
        out.append(
            _table(kind, obj, shown, found[(schema, table)], primary.get((schema, table), []))
        )
    return out


def _select(
    kind: str, available: list[tuple[str, str]], wanted: Sequence[str], source: str
) -> list[tuple[str, str]]:
    if not wanted:
        return sorted(available)
    chosen: list[tuple[str, str]] = []
    for name in wanted:
        schema, _, table = name.rpartition(".")
        matches = [
            (s, t)
            for s, t in available
            if t == table and (schema == s or (not schema and (kind == "mysql" or s == "public")))
        ] or [(s, t) for s, t in available if t == table and not schema]
        if len(matches) != 1:
            what = "no table" if not matches else "more than one table"
            raise UsageError(f"source '{source}' has {what} named '{name}'")
        chosen.append(matches[0])
    return chosen


def _table(
    kind: str, obj: str, table: str, columns: list[CatalogColumn], key: list[str]
) -> DiscoveredTable:
    found = DiscoveredTable(obj, table)
    renamed: dict[str, str] = {}
    for column in columns:
        name = column.name if _NAME.match(column.name) else snake(column.name)
        renamed[column.name] = name
        found.columns.append(
            DiscoveredColumn(
                name,
                column.name,
                column.column_type or column.data_type,
                contract_type(kind, column),
                not column.nullable,
            )
        )
    found.key = [renamed[k] for k in key]
    if found.key:
        found.cursor = suggest_cursor([(c.name, c.type, not c.required) for c in found.columns])
    return found


def to_yaml(tables: Sequence[DiscoveredTable], source: str) -> str:
    """The objects as penstock.yml's `objects:` (or an included objects file)."""
    lines = ["objects:"]
    for table in tables:
        lines += [f"  {table.object}:", f"    source: {source}", f"    table: {table.table}"]
        if table.key:
            lines.append(f"    key: [{', '.join(table.key)}]")
        else:
            lines.append("    # no primary key: each full read replaces the table (key: to merge)")
        if table.cursor is not None:
            lines.append(f"    cursor: {table.cursor}    # suggested: incremental by this column")
        lines.append("    columns:")
        for c in table.columns:
            spec = [f"type: {_scalar(c.type)}"]
            if c.required and c.name not in table.key:
                spec.append("required: true")
            if c.name != c.source_name:
                spec.append(f"from: {quote_text(c.source_name)}")
            lines.append(f"      {c.name}: {{{', '.join(spec)}}}    # {c.db_type}")
    return "\n".join(lines) + "\n"


def _scalar(text: str) -> str:
    return f'"{text}"' if "(" in text else text
