"""Check expressions: a single scalar boolean SQL expression over the object's own columns.

A check's text is pasted into the validation SQL, so it is vetted first: sqlglot (DuckDB
dialect) parses it and it must be one expression, with no comment, no `;`, no statement,
no subquery, table, placeholder, aggregate or window, and every column it names must be one
of the object's columns (unqualified). DuckDB then binds it over a row of the declared types
(nothing runs) and it must be BOOLEAN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import duckdb

from penstock.catalog import expression_cache
from penstock.catalog.scratch import scratch_connection

if TYPE_CHECKING:
    from sqlglot import exp


@lru_cache(maxsize=1)
def _forbidden() -> tuple[tuple[type[exp.Expr], str], ...]:
    from sqlglot import exp

    return (
        (exp.Query, "a subquery"),
        (exp.Subquery, "a subquery"),
        (exp.Exists, "a subquery"),
        (exp.Table, "a table"),
        (exp.AggFunc, "an aggregate"),
        (exp.Window, "a window function"),
        (exp.Star, "*"),
        (exp.Placeholder, "a parameter"),
        (exp.Parameter, "a parameter"),
    )


def _structure_problem(text: str, columns: Mapping[str, str]) -> str | None:
    # sqlglot loads here: a project without check expressions never needs it
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError
    from sqlglot.tokenizer_core import TokenType

    try:
        tokens = sqlglot.tokenize(text, read="duckdb")
    except TokenError as exc:
        return f"not a SQL expression: {exc}"
    if any(token.comments for token in tokens):
        return "must not hold a comment (-- or /* */)"
    if any(token.token_type == TokenType.SEMICOLON for token in tokens):
        return "must be a single expression (no ;)"
    try:
        trees = sqlglot.parse(text, read="duckdb")
    except ParseError as exc:
        errors = exc.errors
        detail = errors[0].get("description") if errors else None
        return f"not a SQL expression: {detail or str(exc).splitlines()[0]}"
    if len(trees) != 1 or trees[0] is None:
        return "must be a single expression"
    tree = trees[0]
    if not isinstance(tree, exp.Condition):
        return f"must be an expression, not a statement: {tree.sql(dialect='duckdb')}"
    lower = {name.lower(): name for name in columns}
    for node in tree.walk():
        for kind, what in _forbidden():
            if isinstance(node, kind):
                sql = node.sql(dialect="duckdb")
                return f"must be a scalar expression over the row, not {what}: {sql}"
        if isinstance(node, exp.Column):
            if node.table:
                sql = node.sql(dialect="duckdb")
                return f"column '{sql}' is qualified: name the object's columns alone"
            if node.name.lower() not in lower:
                known = ", ".join(columns)
                return f"unknown column '{node.name}' (the object's columns: {known})"
    return None


@lru_cache(maxsize=512)
def _type_problem(text: str, columns: tuple[tuple[str, str], ...]) -> str | None:
    row = ", ".join(
        'CAST(NULL AS {}) AS "{}"'.format(duckdb_type, name.replace('"', '""'))
        for name, duckdb_type in columns
    )
    with scratch_connection() as connection:
        try:
            described = connection.execute(
                f"DESCRIBE SELECT ({text}) AS _check FROM (SELECT {row}) AS _row"
            ).fetchall()
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            for prefix in ("Binder Error: ", "Parser Error: ", "Catalog Error: "):
                message = message.removeprefix(prefix)
            return f"does not bind in DuckDB: {message}"
    result_type = str(described[0][1])
    if result_type != "BOOLEAN":
        return f"must be a boolean expression (true when the row passes), not {result_type}"
    return None


def scalar_problem(text: str, columns: Sequence[str]) -> str | None:
    """Why `text` is not one scalar SQL expression over `columns` (structure only: no
    statement, `;`, comment, subquery, table, aggregate or window; only these columns), or
    None: for SQL a command takes from its user (`quarantine release --where/--set`)."""
    return _structure_problem(text, dict.fromkeys(columns, "VARCHAR"))


def expression_problem(text: str, columns: Mapping[str, str]) -> str | None:
    """Why `text` is not a valid check over `columns` (name → DuckDB type), or None. An
    expression the project's cache knows as valid is not vetted again (expression_cache)."""
    cache = expression_cache.current()
    if cache is not None and cache.is_valid(text, columns):
        return None
    problem = _structure_problem(text, columns)
    if problem is None:
        problem = _type_problem(text, tuple(columns.items()))
    if problem is None and cache is not None:
        cache.add_valid(text, columns)
    return problem
