"""The way to a JSON file's records when they are not the whole file: `records: data` (or a
dotted path, `records: response.items`) names the keys of nested objects whose value is the
array of records, as in an API's response saved to a file (`{"data": [...], "meta": {...}}`)
or a GeoJSON file (`records: features`).

`PathWalker` walks the bytes around that array, streamed: the opening objects up to the
array's `[` (other keys' values are skipped, whatever they hold) and, once the array has
closed, the rest of those objects up to their closing braces. Only what lies outside the array
goes through this Python walk, byte by byte; the array itself is split by json_array.py's
vectorised splitter. Anything that does not fit (no such key, a value that is not an object or
not an array, content after the last brace) is a `PathError` naming the line.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

_SPACE = b" \t\r\n"
_ENDS_SCALAR = b",}] \t\r\n"


class PathError(Exception):
    """The file's JSON does not lead to an array at the path (`line`: where it went wrong)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class PathWalker:
    """A streamed file's bytes from a position on (`data` read so far, then `stream`, read
    `block` bytes at a time), with the line the position is on."""

    def __init__(self, stream: pa.NativeFile, data: bytes, line: int, block: int) -> None:
        self.stream = stream
        self.block = block  # bytes a read asks for
        self.data = data
        self.pos = 0
        self.line = line

    def rest(self) -> bytes:
        """The bytes read but not walked."""
        return self.data[self.pos :]

    def _more(self) -> bool:
        block = self.stream.read(self.block)
        if not block:
            return False
        self.data = self.data[self.pos :] + block
        self.pos = 0
        return True

    def _advance(self, end: int) -> None:
        self.line += self.data.count(b"\n", self.pos, end)
        self.pos = end

    def peek(self) -> bytes:
        """The next byte that is not whitespace (b"" at the end of the file)."""
        while True:
            size = len(self.data)
            start = self.pos
            while start < size and self.data[start] in _SPACE:
                start += 1
            self._advance(start)
            if start < size:
                return self.data[start : start + 1]
            if not self._more():
                return b""

    def take(self) -> bytes:
        found = self.peek()
        self.pos += len(found)
        return found

    def key(self) -> str:
        """The string starting at the next byte (a key), decoded, walked past."""
        if self.peek() != b'"':
            raise PathError(f"a key is not a JSON string: {_shown(self.rest())}", self.line)
        end = self._string_end()
        raw = self.data[self.pos : end + 1]
        try:
            text: str = json.loads(raw)
        except ValueError as exc:
            raise PathError(f"a key that is not a JSON string: {_shown(raw)}", self.line) from exc
        self._advance(end + 1)
        return text

    def skip_value(self) -> None:
        """Walk past one JSON value of any kind (memory: a block, whatever its size)."""
        first = self.peek()
        if first == b'"':
            self._skip_string()
        elif first in (b"{", b"["):
            self._skip_nested()
        elif first:
            end: int | None = self.pos
            while end is not None:
                while end < len(self.data) and self.data[end] not in _ENDS_SCALAR:
                    end += 1
                if end < len(self.data):
                    self._advance(end)
                    return
                end = self._refill(end)

    def _refill(self, end: int) -> int | None:
        """Walk to the end of the bytes read and read a block: where `end` (a scan's place,
        perhaps past them) is then; None at the end of the file."""
        over = end - len(self.data)
        self._advance(len(self.data))
        if not self._more():
            return None
        return self.pos + over

    def _skip_string(self) -> None:
        self._advance(self._string_end() + 1)

    def _string_end(self) -> int:
        """Where the string starting at the position (its opening quote) closes. A JSON string
        holds no line break, so it is held whole while it is looked through."""
        end = self.pos + 1
        while True:
            while end < len(self.data):
                byte = self.data[end]
                if byte == 0x22:
                    return end
                if byte == 0x0A:
                    self._advance(end)
                    raise PathError("a string runs past the end of its line", self.line)
                end += 2 if byte == 0x5C else 1  # a backslash escapes the next byte
            block = self.stream.read(self.block)
            if not block:
                raise PathError("the file ends inside a string", self.line)
            self.data += block

    def _skip_nested(self) -> None:
        depth, inside = 0, False
        end: int | None = self.pos
        while end is not None:
            while end < len(self.data):
                byte = self.data[end]
                if inside:
                    if byte == 0x5C:
                        end += 1
                    elif byte == 0x22:
                        inside = False
                elif byte == 0x22:
                    inside = True
                elif byte in b"{[":
                    depth += 1
                elif byte in b"}]":
                    depth -= 1
                    if depth == 0:
                        self._advance(end + 1)
                        return
                end += 1
            end = self._refill(end)
        raise PathError("the file ends inside a value", self.line)


def walk_in(walker: PathWalker, path: str) -> None:
    """Walk from the top of the file to the `[` of the array at `path`, left as the next byte."""
    parts = path.split(".")
    for depth, part in enumerate(parts):
        where = "the file" if depth == 0 else f"'{'.'.join(parts[:depth])}'"
        if walker.take() != b"{":
            raise PathError(
                f"records: {path} names keys of JSON objects, and {where} is not an object",
                walker.line,
            )
        seen: list[str] = []
        while True:
            mark = walker.peek()
            if mark == b"}" or not mark:
                keys = ", ".join(seen[:8]) + (", ..." if len(seen) > 8 else "")
                raise PathError(
                    f"records: {path}: {where} has no key '{part}'"
                    + (f" (its keys: {keys})" if seen else ""),
                    walker.line,
                )
            if seen:
                if walker.take() != b",":
                    raise PathError(f"{where} is not valid JSON here", walker.line)
                walker.peek()
            name = walker.key()
            if walker.take() != b":":
                raise PathError(f"{where} is not valid JSON here", walker.line)
            if name == part:
                break
            seen.append(name)
            walker.skip_value()
    if walker.peek() != b"[":
        raise PathError(f"records: {path}: its value is not an array of records", walker.line)


def walk_out(walker: PathWalker, path: str) -> None:
    """Walk from just after the array's `]` to the end of the file: the rest of each object
    around it, then nothing but whitespace."""
    for _ in path.split("."):
        while True:
            mark = walker.take()
            if mark == b"}":
                break
            if mark != b",":
                raise PathError(
                    f"not valid JSON after the records' array: {_shown(mark)}", walker.line
                )
            walker.peek()
            walker.key()
            if walker.take() != b":":
                raise PathError("not valid JSON after the records' array", walker.line)
            walker.skip_value()
    extra = walker.peek()
    if extra:
        raise PathError(
            f"content after the JSON object closed: {_shown(walker.rest())}", walker.line
        )


def _shown(raw: bytes) -> str:
    return repr(raw.split(b"\n", 1)[0][:20].decode("utf-8", "replace").rstrip())


def at_path(body: Any, path: str) -> tuple[bool, Any]:
    """(found, value) at a dotted path of parsed JSON objects (a REST page's `records:`, a
    discovered file's)."""
    value = body
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value
