"""Reading an object's quarantine: which rows to return and what each carries (any engine).

A quarantine row is a record that broke the contract: its raw values as text, its reasons,
its batch and record number, and whether it was loaded anyway (`on_invalid: warn`). Reading
it adds the batch's source file and load time from the ledger, and `_superseded`.

**Superseded.** A quarantined row is superseded when the object table holds its key from a
batch loaded after the row's batch (load order is the ledger's `loaded_at`, which a rebuild
keeps), i.e. a later delivery of that key loaded successfully:
- `merge`: the table's row for the key came from a later batch. A later delivery identical to
  the stored row is `unchanged` and keeps its earlier batch, so it supersedes nothing.
- `scd2`: any version of the key came from a later batch.
- `append` with a `key`: a row with the key came from a later batch; without a key no row is
  ever superseded (nothing identifies "the same" record).
- `replace`: the table holds a later snapshot than the row's batch, key or no key (the whole
  snapshot was replaced). A snapshot that loaded nothing keeps the previous table, so its own
  rows are not superseded.
The key is read from the raw text with the strict casts validation uses; a row whose key is
missing or not of its type (and a malformed record) matches no key. A row whose later
delivery failed again is not superseded: the new failure is its own quarantine row.

**Reasons.** `--reason` values match a row when any of its reasons matches any value: a full
name (`type:amount`) matches itself; a kind (`type`, or `type:`) matches every reason of that
kind; `malformed` matches malformed records, `encoding` records with invalid bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# the kinds of reasons validation writes (DESIGN.md: stable names)
REASON_KINDS = (
    "required",
    "type",
    "min",
    "max",
    "in",
    "pattern",
    "check",
    "malformed",
    "encoding",
)

# what every returned row starts with, before the contract columns
FIELDS = (
    "_batch_id",
    "_source_file",
    "_row_number",
    "_loaded",
    "_superseded",
    "_reasons",
    "_raw_line",
    "_error",
    "_quarantined_at",
)


@dataclass(frozen=True)
class QuarantineSelection:
    """Which quarantine rows to read; every filter narrows (they combine with AND)."""

    reasons: tuple[str, ...] = ()  # names or kinds, any of them (see the module docstring)
    batch_ids: tuple[str, ...] | None = None  # None: every batch
    file: str | None = None  # a path or glob over the source file (or its trailing part)
    hide_superseded: bool = False
    columns: tuple[str, ...] | None = None  # contract columns to return; None: all of them
    limit: int | None = 50  # None: every matching row
    # False: `_superseded` is not worked out (always false), which spares a join with the
    # object table (a release reads every row and needs it only when --where names it)
    superseded: bool = True


@dataclass(frozen=True)
class QuarantinePage:
    """The selected rows (oldest batch first, then record number) and what matched."""

    fields: tuple[str, ...]  # FIELDS, then the contract columns returned
    rows: list[tuple[Any, ...]]
    total: int  # rows matching the selection, before the limit
    superseded: int  # of those, how many are superseded


def reason_value(value: str) -> tuple[str, bool]:
    """A `--reason` value as (text, is_kind): `type:amount` → exact, `type` / `type:` → kind."""
    text = value.strip()
    if text.endswith(":"):
        return text[:-1], True
    if ":" not in text:
        return text, True
    return text, False


def reason_kind(value: str) -> str:
    return reason_value(value)[0].split(":", 1)[0]


def page_row_dicts(page: QuarantinePage) -> list[dict[str, Any]]:
    """The page's rows as dicts keyed by field name (for JSON)."""
    return [dict(zip(page.fields, row, strict=True)) for row in page.rows]
