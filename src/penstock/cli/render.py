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
    from rich.progress import Progress
    from rich.table import Table

    from penstock.engine import ObjectSummary

# Off a terminal (CI logs, pipes) rich assumes 80 columns and folds tables; use more.
_WIDE = 160
console = Console() if Console().is_terminal else Console(width=_WIDE)
err_console = (
    Console(stderr=True) if Console(stderr=True).is_terminal else Console(stderr=True, width=_WIDE)
)


def counting_bar(label: str, *, shown: bool, transient: bool = False) -> Progress:
    """A bar on stderr counting done of total, after `label` (a format of the task's
    `description`) and before the task's `detail` field; drawn only when `shown` and stderr is
    a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        console=err_console,
        disable=not (shown and err_console.is_terminal),
        transient=transient,
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


def pass_rate(passed: int, total: int) -> str | None:
    """A share as a percentage that never rounds to a bound it did not reach.

    `100%` only when every row passed and `0%` only when none did; otherwise one decimal
    (`98.5%`), or as many more as it takes to stay off the bound: 1 failing row in 1,000,000
    is `99.9999%`, 1 passing row in 1,000,000 is `0.0001%`. None when there are no rows.
    Exact: computed on the integers, rounded half up.
    """
    if total <= 0:
        return None
    if passed >= total:
        return "100%"
    if passed <= 0:
        return "0%"
    decimals = 1
    while True:
        scale = 10 ** (decimals + 2)  # the share in units of 10^-decimals percent
        value = (2 * passed * scale + total) // (2 * total)
        if 0 < value < scale:
            break
        decimals += 1
    whole, fraction = divmod(value, 10**decimals)
    return f"{whole}.{fraction:0{decimals}d}%"


_MIN_ERROR_WIDTH = 12
SUMMARY_COLUMNS = (
    "object",
    "status",
    "batches",
    "rows in",
    "loaded",
    "quarantined",
    "duplicates",
    "warned",
    "DQ pass rate",
)


def summary_table(summaries: Sequence[ObjectSummary], *, width: int | None = None) -> Table:
    """The run summary: one row per selected object, with its outcome; an `error` column
    (the first error of a failed object, cut to fit `width` with …) when one failed."""
    rows = [
        (
            s.object,
            s.status,
            s.batches,
            s.rows_in,
            s.rows_loaded,
            s.rows_quarantined,
            s.rows_duplicate,
            s.rows_warned,
            pass_rate(s.rows_passed, s.rows_in),
        )
        for s in summaries
    ]
    out = table("Run summary", SUMMARY_COLUMNS, rows, text_columns=["status"])
    errors = [short_error(s.error, s.object) or "" for s in summaries]
    if not any(errors):
        return out
    from rich.measure import Measurement

    # the room the table leaves: its width without the column, less the column's border/padding
    room = (width or console.width) - Measurement.get(console, console.options, out).maximum - 3
    out = table(
        "Run summary",
        [*SUMMARY_COLUMNS, "error"],
        [(*row, error) for row, error in zip(rows, errors, strict=True)],
        text_columns=["status", "error"],
    )
    error_column = out.columns[-1]
    error_column.no_wrap, error_column.overflow = True, "ellipsis"
    error_column.max_width = max(_MIN_ERROR_WIDTH, room)
    return out


def short_error(error: str | None, object_name: str | None = None) -> str | None:
    """An error's first line without the skip hint (`penstock batches` and the lines under the
    run summary give the whole text), and without `object 'NAME': ` in a row that names it."""
    if not error:
        return error
    short = error.splitlines()[0].split("; later batches of", 1)[0]
    if object_name is not None:
        short = short.removeprefix(f"object '{object_name}': ")
    return short


def batches_table(object_name: str, batches: Sequence[Any]) -> Table:
    """`penstock batches OBJECT`: one row per staged batch, in load order, then one per
    rejected file (never staged; `extracted` is when it was read and rejected)."""
    rejected = any(b.status == "rejected" for b in batches)
    return table(
        f"Staged batches of {object_name} (in load order)"
        + (", then rejected files" if rejected else ""),
        [
            "batch",
            "status",
            "source file",
            "extracted",
            "rows",
            "error / reason" if rejected else "error / skip reason",
        ],
        [
            (
                b.batch_id,
                b.status,
                b.source_file,
                b.extracted_at.strftime("%Y-%m-%d %H:%M:%S"),
                b.rows,
                _why(b),
            )
            for b in batches
        ],
        text_columns=["status", "source file", "error / skip reason", "error / reason"],
    )


def _why(batch: Any) -> str | None:
    """A batch's error (failed), skip reason (skipped) or reason (rejected)."""
    if batch.status == "failed":
        return short_error(batch.error)
    if batch.status == "rejected":
        later = "read settings changed: the next run reads it again; " if batch.read_again else ""
        return f"{later}{batch.reason}"
    return batch.skip_reason  # type: ignore[no-any-return]
