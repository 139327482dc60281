"""A CSV file as lines of text, for the passes penstock makes itself (the header, the NUL scan
and the record-by-record recovery of a damaged file); DuckDB reads the data itself.

- Decoding never fails: a byte sequence that is not valid in the declared encoding becomes one
  lone surrogate per byte (U+DC00 + the byte, as Python's `surrogateescape` does for UTF-8), so
  a line holding invalid bytes is found with `INVALID_BYTES` and shown with `escaped` (each
  invalid byte as `\\xNN`, Python's `backslashreplace`). Valid text never decodes to a lone
  surrogate, so the two cannot be confused.
- Lines end at LF; a CR before it stays at the end of the line (the caller decides whether it
  ends a record or belongs to a quoted value). A file with CRs and no LF in its first block is
  split at CR (the old Mac convention DuckDB also reads).
- A byte order mark is not text: UTF-8's is dropped (and reported), UTF-16's decides the byte
  order.
"""

from __future__ import annotations

import codecs
import mmap
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from penstock.errors import SourceError
from penstock.sources.lines import BLOCK_BYTES, compression_of, described

ESCAPE_ERRORS = "penstock-escape-bytes"
INVALID_BYTES = re.compile("[\udc00-\udcff]")
_BOM = b"\xef\xbb\xbf"
_CODECS = {"utf-8": "utf-8", "utf-16": "utf-16", "latin-1": "latin-1"}


def _escape_bytes(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(chr(0xDC00 + b) for b in bad), error.end


codecs.register_error(ESCAPE_ERRORS, _escape_bytes)


def escaped(text: str) -> str:
    """`text` with each invalid byte (a lone surrogate from decoding) written as `\\xNN`."""
    return INVALID_BYTES.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


class TextLines:
    """The lines of `path` decoded from `encoding`, plain or compressed, streamed in blocks.

    Iterating yields each line without its LF (a CR before the LF stays). `had_bom` and
    `separator` are known once the first line has been yielded. A damaged compressed stream or
    a read error raises SourceError (`unreadable` for the former).
    """

    def __init__(
        self,
        path: Path,
        encoding: str,
        display_name: str,
        object_name: str,
        *,
        block_bytes: int = BLOCK_BYTES,
    ) -> None:
        self.path = path
        self.encoding = encoding
        self.display_name = display_name
        self.object_name = object_name
        self.block_bytes = block_bytes
        self.had_bom = False
        self.separator = "\n"

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._lines()
        except (OSError, pa.ArrowException) as exc:
            raise stream_error(self.path, self.display_name, self.object_name, exc) from exc

    def _lines(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(_CODECS[self.encoding])(ESCAPE_ERRORS)
        carry = ""
        head = b""  # the first bytes, until a UTF-8 mark split across reads is decided
        first = True
        with pa.input_stream(str(self.path), compression=compression_of(self.path)) as stream:
            while True:
                raw = stream.read(self.block_bytes)
                if first and self.encoding == "utf-8":
                    head += raw
                    if len(head) < len(_BOM) and raw:
                        continue
                    self.had_bom = head.startswith(_BOM)
                    raw = head.removeprefix(_BOM)
                if first and self.encoding == "utf-16":
                    self.had_bom = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
                text = decoder.decode(raw, not raw)
                if first:
                    if "\n" not in text and "\r" in text:
                        self.separator = "\r"
                    first = False
                if not text and raw:
                    continue
                parts = (carry + text).split(self.separator)
                carry = parts.pop()
                yield from parts
                if not raw:
                    break
        if carry:
            yield carry


def stream_error(path: Path, display_name: str, object_name: str, exc: Exception) -> SourceError:
    """A read error as SourceError: `unreadable` when a compressed stream does not decompress."""
    compression = compression_of(path)
    return SourceError(
        f"{display_name}: cannot read as {described(compression, 'CSV')}: {exc}",
        file=display_name,
        object=object_name,
        unreadable=compression is not None and not isinstance(exc, PermissionError),
    )


def first_trouble(
    path: Path,
    encoding: str,
    delimiter: str,
    comment: str | None,
    display_name: str,
    object_name: str,
) -> str | None:
    """What in the file's bytes DuckDB's reader would take wrongly, or None: a NUL character
    (a NUL byte; in UTF-16 a NUL code unit), or (with a comment prefix) a comment after a field
    of spaces, which DuckDB drops with its whole record. Reads the whole file: memory-mapped
    when plain, decompressed in blocks otherwise (so a damaged compressed stream raises
    SourceError, unreadable)."""
    if comment is not None and encoding == "utf-16":
        return "comments in a UTF-16 file"
    dropped = None
    if comment is not None:
        spaces = re.escape((delimiter + " ").encode(encoding)) + b" *"
        dropped = re.compile(spaces + re.escape(comment.encode(encoding)))

    def trouble(data: bytes | mmap.mmap) -> str | None:
        if encoding == "utf-16":
            return "a NUL character" if _utf16_nul(memoryview(data)) else None
        if data.find(b"\0") >= 0:
            return "a NUL character"
        if dropped is not None and dropped.search(data):
            return "a comment after a field of spaces (DuckDB would drop its record)"
        return None

    try:
        if compression_of(path) is None:
            if path.stat().st_size == 0:
                return None
            with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as m:
                if encoding != "utf-16":
                    return trouble(m)
                with memoryview(m) as view:
                    return "a NUL character" if _utf16_nul(view) else None
        found: str | None = None
        carry = b""
        with pa.input_stream(str(path), compression=compression_of(path)) as stream:
            while block := stream.read(BLOCK_BYTES):
                if found is not None:
                    continue  # read on: the whole stream must decompress
                data = carry + block
                # whole lines (UTF-16: whole code units) now, the rest with the next block
                cut = len(data) - len(data) % 2 if encoding == "utf-16" else data.rfind(b"\n") + 1
                found = trouble(data[:cut])
                carry = data[cut:]
        return found or (trouble(carry) if carry else None)
    except (OSError, pa.ArrowException) as exc:
        raise stream_error(path, display_name, object_name, exc) from exc


def _utf16_nul(data: memoryview) -> bool:
    """Any NUL code unit in `data` (its length made even), in blocks so that no array outlives
    the call (the view may be of a memory map that is closed next)."""
    end = len(data) - len(data) % 2
    for start in range(0, end, BLOCK_BYTES):
        with data[start : min(end, start + BLOCK_BYTES)] as part:
            if not np.frombuffer(part, dtype=np.uint16).all():
                return True
    return False
