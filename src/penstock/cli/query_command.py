"""`penstock query "SELECT …"`: look at the warehouse without leaving penstock.

The statement runs over a read-only connection (`penstock.warehouse.query`); a statement that
writes is refused before it runs. Rows print as a table cut to the terminal width, or JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer
from rich.markup import escape

from penstock.cli.render import console, print_json
from penstock.cli.shared import JsonOpt, ProjectOpt, WaitOpt, app, example, load, waiting
from penstock.defaults import DEFAULT_WAIT_SECONDS


class Tabular(Protocol):
    """A statement's result, as `penstock query` and `penstock sql` print it."""

    @property
    def columns(self) -> tuple[str, ...]: ...
    @property
    def types(self) -> tuple[str, ...]: ...
    @property
    def rows(self) -> Sequence[tuple[Any, ...]]: ...
    @property
    def truncated(self) -> bool: ...


EXAMPLES = example(
    'penstock query "FROM orders LIMIT 5"',
    'penstock query "SELECT status, count(*) AS n FROM orders GROUP BY ALL" --json',
    'penstock query --as-of 2026-01-31 "SELECT city, count(*) FROM customers GROUP BY ALL"',
)
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
_UNSIGNED = tuple(f"U{t}" for t in _NUMERIC[:5])
# a column narrows to this before columns are left out for the terminal's width
MIN_WIDTH = 12


@app.command(epilog=EXAMPLES)
def query(
    sql: Annotated[str, typer.Argument(metavar="SQL", help="One statement that reads.")],
    project: ProjectOpt = Path(),
    limit: Annotated[int, typer.Option(help="How many rows at most (0: all).", min=0)] = 100,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="TIME",
            help="Read the scd2 objects' tables as they were at this date or time (their "
            "versions valid then); other tables are read as they are now.",
        ),
    ] = None,
    wait: WaitOpt = DEFAULT_WAIT_SECONDS,
    as_json: JsonOpt = False,
) -> None:
    """Run one read-only SQL statement against the warehouse.

    Object tables, quarantine.* and penstock.loads can be read. The connection is read-only: a
    statement that writes is refused. While a run holds the warehouse, the query waits for it
    (up to --wait seconds)."""
    from penstock.warehouse.query import run_query

    proj = load(project)
    if as_of is not None:
        from penstock.cli.render import err_console
        from penstock.warehouse.time_travel import as_of_sql, parse_as_of

        travel = as_of_sql(sql, proj, parse_as_of(as_of))
        if not travel.rewritten:
            err_console.print(
                "[yellow]note:[/] --as-of: the statement reads no scd2 object's table; "
                "it runs as written"
            )
        elif travel.current and not as_json:
            err_console.print(
                f"[yellow]note:[/] --as-of applies to {', '.join(travel.rewritten)}; "
                f"{', '.join(travel.current)} (not scd2) read as they are now"
            )
        sql = travel.sql
    result = run_query(proj, sql, limit=limit or None, wait=wait, on_wait=waiting)
    print_result(result, limit, as_json)


@app.command(
    epilog=example("penstock history customers 42", "penstock history prices EUR 2026 --json")
)
def history(
    object_name: Annotated[str, typer.Argument(metavar="OBJECT", help="An scd2 object.")],
    key: Annotated[
        list[str], typer.Argument(metavar="KEY...", help="The key's value(s), in key order.")
    ],
    project: ProjectOpt = Path(),
    wait: WaitOpt = DEFAULT_WAIT_SECONDS,
    as_json: JsonOpt = False,
) -> None:
    """Every version of one key of an scd2 object: its validity, values, batch and file.

    Oldest first; the current version has no _valid_to."""
    from penstock.warehouse.query import run_query
    from penstock.warehouse.time_travel import history_sql, ledger_table, scd2_object

    proj = load(project)
    obj = scd2_object(proj, object_name)
    sql = history_sql(obj, tuple(key), ledger_table(proj))
    result = run_query(proj, sql, limit=None, wait=wait, on_wait=waiting)
    if not result.rows and not as_json:
        console.print(f"{escape(obj.name)}: no version of key {escape(', '.join(key))}")
        return
    print_result(result, 0, as_json)


def print_result(result: Tabular, limit: int, as_json: bool) -> None:
    """A result as a table cut to the terminal's width, or as JSON (`{"columns": [{"name",
    "type"}], "rows": [{…}], "row_count", "truncated"}`)."""
    if as_json:
        print_json(
            {
                "columns": [
                    {"name": n, "type": t}
                    for n, t in zip(result.columns, result.types, strict=True)
                ],
                "rows": [dict(zip(result.columns, row, strict=True)) for row in result.rows],
                "row_count": len(result.rows),
                "truncated": result.truncated,
            }
        )
        return
    _print_table(result, limit)


def _print_table(result: Tabular, limit: int) -> None:
    from penstock.cli.text_table import Column, render

    if not result.columns:
        console.print("(the statement returned no result)", highlight=False)
        return
    columns = [
        Column(name, right=_is_number(kind), min_width=MIN_WIDTH, drop_rank=0)
        for name, kind in zip(result.columns, result.types, strict=True)
    ]
    rows = [tuple(_text(v) for v in row) for row in result.rows]
    out = render(columns, rows, console.width)
    console.file.write(out.text)
    count = len(result.rows)
    footer = f"{count:,} row{'' if count == 1 else 's'}"
    if result.truncated:
        footer += f" shown, the query returns more: --limit N for more (now {limit}), 0 for all"
    console.print(escape(footer), highlight=False)
    if out.dropped:
        console.print(
            escape(
                f"not shown for the width: {', '.join(out.dropped)} (--json shows every column)"
            ),
            highlight=False,
        )


def _is_number(kind: str) -> bool:
    return kind.upper().startswith(_NUMERIC + _UNSIGNED)


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, list | tuple | dict):
        from penstock.observe.jsonable import to_jsonable

        return json.dumps(to_jsonable(value), ensure_ascii=False)
    return str(value)
