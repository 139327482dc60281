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
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from io import BytesIO, FileIO
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from penstock.catalog import CsvOptions
from penstock.errors import SourceError
from penstock.sources.compression import BLOCK_BYTES, compression_of, described

if TYPE_CHECKING:
    from typing_extensions import Buffer

# the smallest block `_blocks` reads a file in (a file growing meanwhile is read on in these)
SMALL_BLOCK_BYTES = 64 * 1024

ESCAPE_ERRORS = "penstock-escape-bytes"
INVALID_BYTES = re.compile("[\udc00-\udcff]")
_BOM = b"\xef\xbb\xbf"
# latin-1 as DuckDB reads it: its C1 control bytes 0x80-0x9F are not text (they are what a
# Windows-1252 file holds for € ’ “ ” – —: read as latin-1, those would load as controls)
_LATIN_1 = "penstock-latin-1"
_LATIN_1_TABLE = "".join(chr(b) if not 0x80 <= b <= 0x9F else "\ufffe" for b in range(256))
_CODECS = {
    "utf-8": "utf-8",
    "utf-16": "utf-16",
    "latin-1": _LATIN_1,
    "windows-1252": "cp1252",  # its five undefined bytes are not text either
}


class _Latin1Decoder(codecs.IncrementalDecoder):
    def decode(self, data: Buffer, final: bool = False) -> str:
        return codecs.charmap_decode(bytes(data), self.errors, _LATIN_1_TABLE)[0]


def _find_codec(name: str) -> codecs.CodecInfo | None:
    if name.replace("_", "-") != _LATIN_1:  # Python hands the name over with underscores
        return None
    return codecs.CodecInfo(
        name=_LATIN_1,
        encode=codecs.latin_1_encode,
        decode=lambda data, errors="strict": codecs.charmap_decode(data, errors, _LATIN_1_TABLE),
        incrementaldecoder=_Latin1Decoder,
    )


codecs.register(_find_codec)


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
    """The lines of `path` decoded from `encoding`, plain or compressed, streamed in blocks
    (from `content`, the plain file's bytes, when they are in memory).

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
        content: bytes | None = None,
    ) -> None:
        self.path = path
        self.content = content  # the file's bytes, when in memory already: no file opened
        self.encoding = encoding
        self.display_name = display_name
        self.object_name = object_name
        self.block_bytes = block_bytes
        self.had_bom = False
        self.separator = "\n"

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._lines()
        except Exception as exc:
            if not isinstance(exc, OSError) and not _is_arrow_error(exc):
                raise
            raise stream_error(self.path, self.display_name, self.object_name, exc) from exc

    def _lines(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(_CODECS[self.encoding])(ESCAPE_ERRORS)
        carry = ""
        head = b""  # the first bytes, until a UTF-8 mark split across reads is decided
        first = True
        opened = open_stream(self.path) if self.content is None else BytesIO(self.content)
        with opened as stream:
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


def open_stream(path: Path) -> BinaryIO:
    """`path`'s bytes, decompressed when its name says it is compressed (pyarrow streams
    those; a plain file is opened as it is, pyarrow not even imported)."""
    compression = compression_of(path)
    if compression is None:
        return path.open("rb")
    import pyarrow as pa

    return cast(BinaryIO, pa.input_stream(str(path), compression=compression))


def _is_arrow_error(exc: Exception) -> bool:
    """A pyarrow error (only a compressed stream can raise one: pyarrow is loaded then)."""
    arrow = sys.modules.get("pyarrow")
    return arrow is not None and isinstance(exc, arrow.ArrowException)


def transcode(source: Path, target: Path, encoding: str, errors: str = "surrogateescape") -> None:
    """Write `source`'s text (in `encoding`; decompressed when its name says so) to `target` as
    UTF-8, streamed. With `surrogateescape`, bytes the encoding leaves undefined are written as
    they are, so that they stay invalid bytes a read names and quarantines (each file line
    keeps its number); with `replace` they become U+FFFD (discover's sample). A damaged stream
    raises the stream's own error (`staged_copy` names the file)."""
    decoder = codecs.getincrementaldecoder(_CODECS[encoding])(errors)
    with open_stream(source) as stream, target.open("wb") as out:
        while block := stream.read(BLOCK_BYTES):
            out.write(decoder.decode(block).encode("utf-8", errors))
        out.write(decoder.decode(b"", True).encode("utf-8", errors))


def decompress(path: Path, target: Path) -> None:
    """Write the decompressed bytes of `path` to `target`, streamed."""
    with open_stream(path) as stream, target.open("wb") as out:
        while block := stream.read(BLOCK_BYTES):
            out.write(block)


def staged_copy(
    path: Path, target: Path, encoding: str | None, display_name: str, object_name: str
) -> None:
    """`path` written to `target` as DuckDB reads it, in one pass: decompressed, and as UTF-8
    when `encoding` (DuckDB reads none such) is given. A damaged or cut-short stream raises
    SourceError, unreadable, naming the file."""
    try:
        if encoding is None:
            decompress(path, target)
        else:
            transcode(path, target, encoding)
    except Exception as exc:
        if not isinstance(exc, OSError) and not _is_arrow_error(exc):
            raise
        target.unlink(missing_ok=True)
        raise stream_error(path, display_name, object_name, exc) from exc


@dataclass
class ByteScan:
    """What a read of a file's bytes found: `trouble`, what DuckDB's reader would take wrongly
    (None: nothing); `breaks`, its line breaks (None when not counted: UTF-16)."""

    trouble: str | None = None
    breaks: int | None = 0
    last: bytes = b""  # the file's last byte

    def data_lines(self, data_line: int, new_line: str) -> int | None:
        """Physical lines from line `data_line` to the end of the file."""
        if self.breaks is None:
            return None
        ends_with_break = self.last == new_line[-1:].encode()
        return self.breaks + (0 if ends_with_break or not self.last else 1) - (data_line - 1)


def scan_bytes(
    path: Path, csv: CsvOptions, new_line: str, content: bytes | None = None
) -> ByteScan:
    """Read the whole of a plain (not compressed) file, block by block, for a NUL character (a
    NUL byte; in UTF-16 a NUL code unit) and, with a comment prefix, a comment after a field of
    spaces (DuckDB drops such a record whole); and count its line breaks. `content`: the
    file's bytes when they are in memory already (a small copy just written): no file is
    opened.

    Plain reads into one reused buffer, not a memory map: every page of a mapped file read
    through counts in the process's resident set (a 2 GB file peaked at 2.4 GB RSS)."""
    utf16 = csv.encoding == "utf-16"
    scan = ByteScan(breaks=None if utf16 else 0)
    if utf16 and csv.comment is not None:
        scan.trouble = "comments in a UTF-16 file"
    if content is not None:
        if content:
            length = _block_length(len(content))
            blocks = (content[at : at + length] for at in range(0, len(content), length))
            _scan_blocks(blocks, csv, new_line, utf16, scan)
            scan.last = content[-1:]
        return scan
    if not path.stat().st_size:
        return scan
    with path.open("rb", buffering=0) as file:
        _scan_blocks(_blocks(file), csv, new_line, utf16, scan)
        file.seek(-1, 2)
        scan.last = file.read(1)
    return scan


def _scan_blocks(
    blocks: Iterable[bytes | bytearray], csv: CsvOptions, new_line: str, utf16: bool, scan: ByteScan
) -> None:
    if utf16:
        if scan.trouble is None and _utf16_nul(blocks):
            scan.trouble = "a NUL character"
    else:
        _scan_octets(blocks, csv, new_line[-1].encode(), scan)


def _block_length(size: int) -> int:
    """The block a file of `size` bytes is read in (see `_blocks`)."""
    return min(BLOCK_BYTES, max(size + 1, SMALL_BLOCK_BYTES))


def _blocks(file: FileIO) -> Iterator[bytearray]:
    """The file's bytes in blocks of `BLOCK_BYTES` (the last one shorter): one buffer, which
    the next block overwrites. The buffer is no larger than the file needs (one byte more
    than its size, at least `SMALL_BLOCK_BYTES`, at most `BLOCK_BYTES`): a 16 MB buffer
    zeroed for each of a thousand 10 kB files held the GIL ~0.4 s of their run."""
    length = _block_length(os.fstat(file.fileno()).st_size)
    buffer = bytearray(length)
    while size := file.readinto(buffer):
        yield buffer if size == length else buffer[:size]


def _scan_octets(
    blocks: Iterable[bytes | bytearray], csv: CsvOptions, line_break: bytes, scan: ByteScan
) -> None:
    """Line breaks and NUL bytes, block by block (bytes' own count and search are faster
    than numpy's here); and, with a comment prefix, a comment after a field of spaces,
    searched line-wise: the part of a block after its last line break is searched again with
    the next block, so a match across two blocks is found."""
    breaks = 0
    comment: re.Pattern[bytes] | None = None
    if csv.comment is not None:
        spaces = re.escape((csv.delimiter + " ").encode(csv.encoding)) + b" *"
        comment = re.compile(spaces + re.escape(csv.comment.encode(csv.encoding)))
    carried = b""
    for block in blocks:
        breaks += block.count(line_break)
        if scan.trouble is None and b"\0" in block:
            scan.trouble = "a NUL character"
        if comment is not None and scan.trouble is None:
            text = carried + block
            if comment.search(text):
                scan.trouble = "a comment after a field of spaces (DuckDB would drop its record)"
            carried = text[text.rfind(line_break) + 1 :]
    scan.breaks = breaks


def _utf16_nul(blocks: Iterable[bytes | bytearray]) -> bool:
    """Any NUL code unit in the file (a last odd byte left out), block by block; a code unit
    split by a block's end is completed with the next block."""
    import numpy as np  # UTF-16 files only

    odd = b""
    for block in blocks:
        data = odd + block if odd else block
        cut = len(data) - len(data) % 2
        if not np.frombuffer(memoryview(data)[:cut], dtype=np.uint16).all():
            return True
        odd = bytes(data[cut:])
    return False
