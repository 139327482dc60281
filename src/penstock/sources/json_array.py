"""Reading a file that holds one JSON array, element by element: streamed and vectorised.

`format: json` (`*.json`, `*.json.gz`, `*.json.zst`, `*.json.bz2`) is one top-level array whose
elements are the records: element N is record N. The file is read in blocks; the elements of
each block are found without parsing them, in numpy, the way simdjson's first stage does: a
quote preceded by an odd run of backslashes is escaped; the other quotes toggle "inside a
string"; outside strings, `[`/`{` open and `]`/`}` close a level, and a comma at the array's
own level ends an element. Each element is then handed on as its JSON text (DuckDB judges it,
as it judges a JSON Lines line), so an element that is not a JSON object, or not valid JSON, is
a malformed record with its element number; the rest of the file still loads. An element
holding bytes that are not UTF-8 is an `encoding` record, its bytes escaped (as for JSON Lines,
and with the same limit on how many a file may hold). Memory stays a few blocks, whatever the
file's size (a single element larger than a block is held whole).

A file that ends before its array closes (cut short) keeps its complete elements; what follows
the last of them, if anything, is one more record (`cut_record`: malformed unless it happens to
be a whole object), and the file gets a warning.

A file that is not one array fails whole, naming the file and line (`SourceError`, unreadable):
one that does not start with `[` (after whitespace and a UTF-8 byte order mark), one with
anything but whitespace after its array, and one whose array does not close because a string
runs past the end of its line (a JSON string cannot hold a line break: a stray quote). The
splitter cannot resynchronise after a stray quote the way JSON Lines do (where the damage ends
with the line): in an array written on one line, a stray quote makes the rest of the file the
one malformed record the file "ends in"; two stray quotes may leave the array closed, the
elements between them then split wrongly and quarantined as malformed.

Why not DuckDB's `read_json(format = 'array')`: it streams in bounded memory, but DuckDB 2.0
refuses some valid arrays ("Malformed JSON ... unexpected character") when an element straddles
one of its internal buffer boundaries (reproduced on a valid 500 MB file), and stops the whole
file at the first bad element instead of quarantining it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from penstock.catalog import ObjectSpec
from penstock.errors import SourceError
from penstock.sources.damage import (
    cut_inside_character,
    encoding_problem,
    escaped,
)
from penstock.sources.json_path import PathError, PathWalker, walk_in, walk_out
from penstock.sources.lines import LINES_SCHEMA, RecordStream

BLOCK_BYTES = 8 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
_TRIMMED = " \t\r\n"
# what each byte is to the splitter: nothing, an opener, a closer, a comma, a quote, a backslash
_NOTHING, _OPEN, _CLOSE, _COMMA, _QUOTE, _BACKSLASH = range(6)
_KIND = np.zeros(256, dtype=np.int8)
_KIND[[ord("["), ord("{")]] = _OPEN
_KIND[[ord("]"), ord("}")]] = _CLOSE
_KIND[ord(",")] = _COMMA
_KIND[ord('"')] = _QUOTE
_KIND[ord("\\")] = _BACKSLASH
_TABLE = bytes(_KIND.astype(np.uint8))  # for bytes.translate: the fastest lookup here


_STRING_EVENTS = re.compile(rb'\\.|"|\n', re.DOTALL)


def _string_crossing_a_line(data: bytes, start: int) -> int | None:
    """The position of the first line feed inside a string in `data[start:]` (which starts
    outside any string), or None."""
    inside = False
    for match in _STRING_EVENTS.finditer(data, start):
        token = match.group()
        if token == b'"':
            inside = not inside
        elif token == b"\n" and inside:
            return match.start()
    return None


def split_elements(data: bytes) -> tuple[np.ndarray, int]:
    """Where the elements of an array end in `data`, which starts at an element separator
    (`[` or `,`, outside any string, at the array's level): the positions of the later
    separators at that level, and the position of the `]` that closes the array (-1 if not in
    `data`).

    One table lookup (`bytes.translate`) classifies every byte; the rest works on the
    positions that matter (quotes, backslashes, brackets, commas)."""
    kind = np.frombuffer(data.translate(_TABLE), dtype=np.int8)
    where = np.flatnonzero(kind[1:]) + 1  # the separator at 0 is not looked at again
    kinds = kind[where]
    slashes = where[kinds == _BACKSLASH]
    if len(slashes):
        # a quote right after an odd run of backslashes is escaped: it is not a quote
        breaks = np.flatnonzero(np.diff(slashes) != 1)
        starts = np.concatenate(([slashes[0]], slashes[breaks + 1]))
        ends = np.concatenate((slashes[breaks], [slashes[-1]]))
        escaped = ends[((ends - starts) & 1) == 0] + 1
        keep = (kinds != _BACKSLASH) & ~((kinds == _QUOTE) & np.isin(where, escaped))
        where, kinds = where[keep], kinds[keep]
    quote = kinds == _QUOTE
    outside = ((np.cumsum(quote) & 1) == 0) & ~quote
    where, kinds = where[outside], kinds[outside]
    depth = 1 + np.cumsum((kinds == _OPEN).astype(np.int64) - (kinds == _CLOSE))
    closed = np.flatnonzero(depth == 0)
    end = int(where[closed[0]]) if len(closed) else -1
    separators = where[(kinds == _COMMA) & (depth == 1)]
    if end >= 0:
        separators = separators[separators < end]
    return separators, end


class ArrayReader(RecordStream):
    """The elements of the JSON array in `path` (shown as `display_name`), numbered.

    `reader()` is handed to DuckDB as an Arrow stream of (`_row_number`, `line`, `_error`)
    where `line` is the element's JSON text; a SourceError raised while DuckDB pulls it is kept
    in `error` for the caller to raise instead.
    """

    cut_note = "the file ends inside this element, before the array closes: cut short?"

    def __init__(self, path: Path, display_name: str, obj: ObjectSpec) -> None:
        super().__init__(path, display_name, "JSON array", obj, "elements")
        self._elements = 0
        self._records = obj.records  # the keys leading to the array (json_path.py), or None

    def _fail(self, message: str, line: int) -> SourceError:
        """The file is not one JSON array: it cannot be read at all."""
        return SourceError(
            f"{self.display_name}:{line}: {message}",
            file=self.display_name,
            line=line,
            object=self.object_name,
            unreadable=True,  # the file is not one JSON array
        )

    def _batches(self) -> Iterator[pa.RecordBatch]:
        with pa.input_stream(str(self.path), compression=self.compression) as stream:
            carry, line = self._opening(stream)
            if self._records is not None:
                carry, line = self._walk(walk_in, PathWalker(stream, carry, line, BLOCK_BYTES))
            more = True
            while True:
                separators, end = split_elements(carry)
                if end < 0 and more:
                    if len(separators):
                        last = int(separators[-1])
                        yield from self._emit(carry, [0, *separators.tolist()], line)
                        line += carry.count(b"\n", 0, last)
                        carry = carry[last:]
                    block = stream.read(BLOCK_BYTES)
                    more = bool(block)
                    carry += block
                    continue
                if end < 0:
                    yield from self._cut_short(carry, separators.tolist(), line)
                    self.encoding.finish(self._elements)
                    return
                bounds = [0, *separators.tolist(), end]
                empty = carry[:1] == b"[" and not carry[1:end].strip(_WHITESPACE)
                if empty:  # `[]`, not an array of one empty element
                    bounds = []
                yield from self._emit(carry, bounds, line)
                line += carry.count(b"\n", 0, end)
                if self._records is not None:
                    self._walk(walk_out, PathWalker(stream, carry[end + 1 :], line, BLOCK_BYTES))
                else:
                    self._trailing(stream, carry[end + 1 :], line)
                self.encoding.finish(self._elements)
                return

    def _cut_short(self, data: bytes, separators: list[int], line: int) -> Iterator[pa.RecordBatch]:
        """The end of a file whose array never closes: the elements in `data` (from a
        separator to the end), the last of them running to the end of the file, unless it is
        only whitespace. A string in it that runs past its line is a stray quote, not a cut:
        the file cannot be split."""
        last = separators[-1] if separators else 0
        crossing = _string_crossing_a_line(data, last + 1)
        if crossing is not None:
            raise self._fail(
                f"the JSON array is not closed: a string in element "
                f"{self._elements + len(separators) + 1} runs past the end of its line (a "
                f"stray quote?), and the elements after it cannot be told apart",
                line + data.count(b"\n", 0, crossing),
            )
        bounds = [0, *separators]
        if data[last + 1 :].strip(_WHITESPACE):
            bounds.append(len(data))
        yield from self._emit(data, bounds, line, last=True)
        if len(bounds) > len(separators) + 1:
            self.cut_record = self._elements
            where = f"in element {self._elements}"
        elif self._elements:
            where = f"after element {self._elements}"
        else:
            where = "before its first element"
        self.warnings.append(
            f"{self.display_name}: the JSON array is not closed: the file ends {where}, "
            f"before its closing ']' (it may be cut short)"
        )

    def _walk(
        self, walk: Callable[[PathWalker, str], None], walker: PathWalker
    ) -> tuple[bytes, int]:
        """`walk` the JSON around the records' array (json_path.py): (what is left, its line)."""
        assert self._records is not None
        try:
            walk(walker, self._records)
        except PathError as exc:
            raise self._fail(str(exc), exc.line) from exc
        return walker.rest(), walker.line

    def _opening(self, stream: pa.NativeFile) -> tuple[bytes, int]:
        """Read up to the array's opening `[` (with `records:`, the object around it): (the
        bytes from it on, its line)."""
        data = b""
        line = 1
        first = True
        while True:
            block = stream.read(BLOCK_BYTES)
            data += block
            if first:  # a mark split across the first reads is still a mark
                if len(data) < len(_BOM) and block:
                    continue
                data = data.removeprefix(_BOM)
                first = False
            start = len(data) - len(data.lstrip(_WHITESPACE))
            if start < len(data) or not block:
                break
            line += data.count(b"\n")
            data = b""
        line += data.count(b"\n", 0, start)
        data = data[start:]
        if not data:
            raise self._fail("no JSON array: the file holds only whitespace", line)
        if self._records is not None:
            return data, line
        if data[:1] != b"[":
            hint = (
                " (a file of one JSON object per line is format: jsonl; one object holding the "
                "records under a key, such as GeoJSON's features, is records: that key)"
                if data[:1] == b"{"
                else ""
            )
            shown = data.split(b"\n", 1)[0][:20].decode("utf-8", "replace").rstrip()
            raise self._fail(f"not a JSON array: it starts with {shown!r}{hint}", line)
        return data, line

    def _trailing(self, stream: pa.NativeFile, rest: bytes, line: int) -> None:
        """Only whitespace may follow the array."""
        while True:
            extra = rest.lstrip(_WHITESPACE)
            if extra:
                line += rest.count(b"\n", 0, len(rest) - len(extra))
                shown = extra.split(b"\n", 1)[0][:20].decode("utf-8", "replace").rstrip()
                raise self._fail(f"content after the JSON array closed: {shown!r}", line)
            line += rest.count(b"\n")
            rest = stream.read(BLOCK_BYTES)
            if not rest:
                return

    def _emit(
        self, data: bytes, bounds: list[int], line: int, *, last: bool = False
    ) -> Iterator[pa.RecordBatch]:
        """The elements between consecutive `bounds` (each starts at its separator); `last`:
        the last of them runs to the end of the file."""
        count = len(bounds) - 1
        if count <= 0:
            return
        offsets = np.asarray(bounds, dtype=np.int64)
        raw = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        )
        try:
            text = raw.cast(pa.large_string())
        except pa.ArrowInvalid:
            elements, errors = self._damaged(data, bounds, line, last=last)
        else:
            elements = pc.utf8_trim(pc.utf8_slice_codeunits(text, 1), _TRIMMED)
            errors = pa.nulls(count, pa.large_string())
        numbers = np.arange(self._elements + 1, self._elements + 1 + count, dtype=np.int64)
        self._elements += count
        yield pa.RecordBatch.from_arrays([pa.array(numbers), elements, errors], schema=LINES_SCHEMA)

    def _damaged(
        self, data: bytes, bounds: list[int], line: int, *, last: bool
    ) -> tuple[pa.Array, pa.Array]:
        """The elements between `bounds`, some holding bytes that are not UTF-8, as text (those
        bytes escaped) and why each is not text (None: it is). One Python step per element:
        only blocks holding such an element come here."""
        texts: list[str] = []
        problems: list[str | None] = []
        bad, first = 0, 0
        for index, (start, end) in enumerate(itertools.pairwise(bounds)):
            raw = data[start + 1 : end]
            try:
                texts.append(raw.decode("utf-8").strip(_TRIMMED))
                problems.append(None)
                continue
            except UnicodeDecodeError as exc:
                texts.append(escaped(raw).strip(_TRIMMED))
                where = start + 1 + exc.start
            if last and index == len(bounds) - 2 and cut_inside_character(raw):
                problems.append(None)  # cut off inside a character: the file is cut short
                continue
            problems.append(encoding_problem(raw.strip(_WHITESPACE)))
            bad += 1
            first = first or line + data.count(b"\n", 0, where)
        self.encoding.add(bad, first)
        return pa.array(texts, pa.large_string()), pa.array(problems, pa.large_string())
