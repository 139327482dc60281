"""Tables of many rows as plain text in rich's look: one line per row, cut to a width.

rich's Table measures, wraps and styles every cell: 10,000 rows of 10 columns take about 9 s.
This lays out strings the caller already formatted in one pass (10,000 rows in a fraction of
a second), for the commands that print rows of data (`quarantine`, `query`):
- a cell never wraps: a value wider than its column is cut with "…" (from the left in a
  column that keeps the tail, such as a file path); `--json` keeps values whole;
- control characters show as escapes (`\\n`, `\\t`, `\\x1b`), so a row is always one line;
- when the columns do not fit the width, the widest shrinkable columns narrow first, then
  droppable columns are left out, highest `drop_rank` first (the caller names them);
- a row with fewer cells than columns ends with a cell spanning the remaining columns (a
  malformed record's raw line in place of its values).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from rich.cells import cell_len, get_character_cell_size

ELLIPSIS = "…"
LAST_RESORT_WIDTH = 5
_ESCAPES: dict[int, str] = {
    **{i: f"\\x{i:02x}" for i in (*range(32), *range(0x7F, 0xA0))},
    9: "\\t",
    10: "\\n",
    13: "\\r",
}


@dataclass(frozen=True)
class Column:
    name: str
    right: bool = False  # right-aligned (numbers)
    min_width: int | None = None  # shrinks down to this; None: never narrower than its content
    keep_tail: bool = False  # cut from the left: "…orders/drop_001.csv"
    drop_rank: int | None = None  # None: always shown; else left out when too wide, highest first


@dataclass(frozen=True)
class TextTable:
    lines: list[str]
    dropped: tuple[str, ...]  # columns left out for the width, in column order

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def clean(value: str) -> str:
    """The value on one line: control characters as escapes."""
    return value.translate(_ESCAPES)


def display_width(value: str) -> int:
    return len(value) if value.isascii() else cell_len(value)


def fit(value: str, width: int, *, right: bool = False, keep_tail: bool = False) -> str:
    """`value` padded to exactly `width` cells, or cut with "…"."""
    size = display_width(value)
    if size <= width:
        pad = " " * (width - size)
        return pad + value if right else value + pad
    if width <= 1:
        return ELLIPSIS[:width]
    if value.isascii():
        return ELLIPSIS + value[-(width - 1) :] if keep_tail else value[: width - 1] + ELLIPSIS
    chars = reversed(value) if keep_tail else iter(value)
    kept: list[str] = []
    used = 0
    for ch in chars:
        cells = get_character_cell_size(ch)
        if used + cells > width - 1:
            break
        kept.append(ch)
        used += cells
    pad = " " * (width - 1 - used)
    if keep_tail:
        return ELLIPSIS + "".join(reversed(kept)) + pad
    return "".join(kept) + ELLIPSIS + pad


def render(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> TextTable:
    """The table (borders included) in at most `width` cells per line when the always-shown
    columns allow it."""
    count = len(columns)
    cells = [[clean(c) for c in row] for row in rows]
    natural = []
    for j, column in enumerate(columns):
        values = [row[j] for row in cells if len(row) == count or j < len(row) - 1]
        natural.append(max([display_width(column.name), *map(display_width, values)]))
    visible = list(range(count))
    widths = _shrink(columns, natural, visible, width)
    while widths is None:
        droppable = [j for j in visible if columns[j].drop_rank is not None]
        if len(droppable) <= 1:
            # a narrow terminal: shrinkable columns go below their minimum, down to a few cells
            # (past that, lines are longer than the width and the terminal wraps them)
            narrow = [
                replace(c, min_width=min(c.min_width, LAST_RESORT_WIDTH))
                if c.min_width is not None
                else c
                for c in columns
            ]
            widths = _shrink(narrow, natural, visible, width) or {
                j: _floor(narrow[j], natural[j]) for j in visible
            }
            break
        # the highest rank goes first; among equals, the last column
        visible.remove(max(droppable, key=lambda j: (columns[j].drop_rank or 0, j)))
        widths = _shrink(columns, natural, visible, width)
    _widen_for_spans(cells, count, visible, widths, width)
    dropped = tuple(columns[j].name for j in range(count) if j not in visible)
    return TextTable(_lines(columns, cells, visible, widths), dropped)


def _widen_for_spans(
    cells: Sequence[Sequence[str]],
    count: int,
    visible: Sequence[int],
    widths: dict[int, int],
    width: int,
) -> None:
    """Give a spanning cell (a raw line) the room left up to `width`: the last column widens."""
    room = width - _total([widths[j] for j in visible])
    if room <= 0 or not visible:
        return
    need = 0
    for row in cells:
        if len(row) < count:
            spanned = [widths[j] for j in visible if j >= len(row) - 1]
            if spanned:
                region = sum(spanned) + 3 * (len(spanned) - 1)
                need = max(need, display_width(row[-1]) - region)
    if need > 0:
        widths[visible[-1]] += min(need, room)


def _floor(column: Column, natural: int) -> int:
    return natural if column.min_width is None else min(natural, column.min_width)


def _total(widths: Sequence[int]) -> int:
    return sum(widths) + 3 * len(widths) + 1


def _shrink(
    columns: Sequence[Column], natural: Sequence[int], visible: Sequence[int], width: int
) -> dict[int, int] | None:
    """Widths for the visible columns within `width`: shrinkable columns wider than a cap are
    cut to it (the widest first); None when even their minimum widths do not fit."""
    if _total([natural[j] for j in visible]) <= width:
        return {j: natural[j] for j in visible}

    def capped(cap: int) -> dict[int, int]:
        return {
            j: natural[j]
            if columns[j].min_width is None
            else min(natural[j], max(cap, _floor(columns[j], natural[j])))
            for j in visible
        }

    if _total(list(capped(0).values())) > width:
        return None
    low, high = 0, max(natural[j] for j in visible)  # capped(low) fits, capped(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if _total(list(capped(middle).values())) <= width:
            low = middle
        else:
            high = middle
    return capped(low)


def _lines(
    columns: Sequence[Column],
    cells: Sequence[Sequence[str]],
    visible: Sequence[int],
    widths: dict[int, int],
) -> list[str]:
    count = len(columns)
    ws = [widths[j] for j in visible]
    lines = [
        "┏" + "┳".join("━" * (w + 2) for w in ws) + "┓",
        "┃" + "┃".join(f" {fit(columns[j].name, widths[j])} " for j in visible) + "┃",
        "┡" + "╇".join("━" * (w + 2) for w in ws) + "┩",
    ]
    specs = [(j, widths[j], columns[j].right, columns[j].keep_tail) for j in visible]
    for row in cells:
        if len(row) == count:
            parts = [f" {fit(row[j], w, right=r, keep_tail=t)} " for j, w, r, t in specs]
        else:
            start = len(row) - 1
            parts = [
                f" {fit(row[j], w, right=r, keep_tail=t)} " for j, w, r, t in specs if j < start
            ]
            spanned = [w for j, w, _, _ in specs if j >= start]
            if spanned:
                parts.append(f" {fit(row[start], sum(spanned) + 3 * (len(spanned) - 1))} ")
        lines.append("│" + "│".join(parts) + "│")
    lines.append("└" + "┴".join("─" * (w + 2) for w in ws) + "┘")
    return lines
