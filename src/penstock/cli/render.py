"""Rendering for the CLI: rich tables for people, JSON for machines.

Importing this module loads rich's console only (typer's --help loads it anyway): tables and
the engine's modules load in the functions that use them, to keep the CLI's start-up fast.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from rich.table import Table

    from penstock.engine import ObjectSummary

# Off a terminal (CI logs, pipes) rich assumes 80 columns and folds tables; use more.
_WIDE = 160
console = Console() if Console().is_terminal else Console(width=_WIDE)
err_console = (
    Console(stderr=True) if Console(stderr=True).is_terminal else Console(stderr=True, width=_WIDE)
)


def print_json(payload: Any) -> None:
    """JSON on stdout, nothing else: safe to pipe."""
    from penstock.observe.jsonable import to_jsonable

    print(json.dumps(to_jsonable(payload), indent=2, sort_keys=False, default=str))


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1%}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    text_columns: Sequence[str] = (),
) -> Table:
    """A table; the first column and `text_columns` are left-aligned, the others right."""
    from rich.table import Table

    out = Table(title=title, title_justify="left", header_style="bold")
    for index, name in enumerate(columns):
        left = index == 0 or name in text_columns
        out.add_column(name, justify="left" if left else "right", overflow="fold")
    for row in rows:
        out.add_row(*(_fmt(v) for v in row))
    return out


def summary_table(summaries: Sequence[ObjectSummary]) -> Table:
    return table(
        "Run summary",
        [
            "object",
            "batches",
            "rows in",
            "loaded",
            "quarantined",
            "duplicates",
            "warned",
            "DQ pass rate",
        ],
        [
            (
                s.object,
                s.batches,
                s.rows_in,
                s.rows_loaded,
                s.rows_quarantined,
                s.rows_duplicate,
                s.rows_warned,
                s.dq_pass_rate,
            )
            for s in summaries
        ],
    )


def batches_table(object_name: str, batches: Sequence[Any]) -> Table:
    """`penstock batches OBJECT`: one row per staged batch, in load order."""
    return table(
        f"Staged batches of {object_name} (in load order)",
        ["batch", "status", "source file", "extracted", "rows", "error / skip reason"],
        [
            (
                b.batch_id,
                b.status,
                b.source_file,
                b.extracted_at.strftime("%Y-%m-%d %H:%M:%S"),
                b.rows,
                _short_error(b.error) if b.status == "failed" else b.skip_reason,
            )
            for b in batches
        ],
        text_columns=["status", "source file", "error / skip reason"],
    )


def _short_error(error: str | None) -> str | None:
    """The error without the skip hint (printed once below the table)."""
    return error.split("; later batches of", 1)[0] if error else error
