"""The plain-text table behind `quarantine` and `query`: one line per row whatever the
values hold, never wider than asked while the always-shown columns allow it, columns left out
in the order the caller ranked them, wide characters aligned, cut values marked with "…"."""

from __future__ import annotations

from rich.cells import cell_len

from penstock.cli.text_table import Column, fit, render


def body(lines: list[str]) -> list[list[str]]:
    return [[c.strip() for c in line.strip("│").split("│")] for line in lines if line[0] == "│"]


def test_natural_widths_when_they_fit() -> None:
    table = render([Column("id", right=True), Column("name")], [("1", "ann"), ("22", "bo")], 40)
    assert table.lines == [
        "┏━━━━┳━━━━━━┓",
        "┃ id ┃ name ┃",
        "┡━━━━╇━━━━━━┩",
        "│  1 │ ann  │",
        "│ 22 │ bo   │",
        "└────┴──────┘",
    ]
    assert table.dropped == ()


def test_control_characters_never_break_a_row() -> None:
    table = render([Column("v")], [("a\nb\tc\x1bd\r",)], 80)
    assert body(table.lines) == [["a\\nb\\tc\\x1bd\\r"]]
    assert table.text.count("\n") == 5  # borders, header, the row, bottom


def test_shrinking_cuts_the_widest_values_first_and_keeps_a_paths_tail() -> None:
    columns = [
        Column("id"),
        Column("file", min_width=8, keep_tail=True),
        Column("text", min_width=8),
    ]
    rows = [("1", "landing/orders/drop_001.csv", "short"), ("2", "a.csv", "x" * 40)]
    table = render(columns, rows, 40)
    assert all(cell_len(line) <= 40 for line in table.lines)
    cells = body(table.lines)
    assert cells[0][1].startswith("…") and cells[0][1].endswith("drop_001.csv")
    assert cells[1][2].endswith("…") and cells[1][2].startswith("xxx")
    assert cells[1][:2] == ["2", "a.csv"]  # short values are untouched


def test_columns_are_left_out_by_rank_then_from_the_end() -> None:
    columns = [
        Column("id"),
        Column("a", min_width=10, drop_rank=2),
        Column("b", min_width=10, drop_rank=0),
        Column("c", min_width=10, drop_rank=2),
        Column("d", min_width=10, drop_rank=1),
    ]
    row = ("1", "a" * 10, "b" * 10, "c" * 10, "d" * 10)
    table = render(columns, [row], 44)
    assert table.dropped == ("a", "c")  # rank 2 first, the last of them first
    header = [c.strip() for c in table.lines[1].strip("┃").split("┃")]
    assert header == ["id", "b", "d"]
    assert all(cell_len(line) <= 44 for line in table.lines)


def test_a_short_row_spans_the_remaining_columns() -> None:
    columns = [Column("row"), Column("x", drop_rank=0), Column("y", drop_rank=0)]
    table = render(columns, [("1", "10", "20"), ("2", "raw: " + "z" * 100)], 30)
    first, second = [line for line in table.lines if line[0] == "│"]
    # the raw line takes the room up to the width: the table widens to it, no further
    assert len(first) == len(second) == 30
    assert second.count("│") == 3 and second.endswith("z… │")
    assert body([first]) == [["1", "10", "20"]]


def test_wide_characters_are_measured_in_cells() -> None:
    table = render([Column("name"), Column("n")], [("東京都", "1"), ("ab", "2")], 40)
    lines = [line for line in table.lines if line[0] == "│"]
    assert {cell_len(line) for line in table.lines} == {cell_len(lines[0])}
    assert fit("東京都", 5) == "東京…"
    assert cell_len(fit("東京都", 4)) == 4  # "東…" plus one space of padding


def test_a_narrow_terminal_still_gets_lines_within_its_width() -> None:
    columns = [
        Column("batch"),
        Column("file", min_width=30, keep_tail=True),
        Column("reasons", min_width=20),
        Column("amount", min_width=12, drop_rank=0),
    ]
    row = ("f6f82f36e2", "landing/orders/drop_001.csv", "type:amount, pattern:country", "x" * 20)
    table = render(columns, [row], 60)
    assert all(cell_len(line) <= 60 for line in table.lines)
    assert body(table.lines)[0][0] == "f6f82f36e2"  # a column without a minimum is never cut
