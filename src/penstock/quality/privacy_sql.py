"""The SQL that stores personal-data columns as `pii:` says (catalog/privacy.py).

`hash` is HMAC-SHA256 of the value's text, keyed by `privacy.key`, as 64 hex digits; the same
as Python's `hmac.new(key, text.encode(), hashlib.sha256).hexdigest()`, so a data engineer
can hash a value to look it up. The HMAC's two padded keys live in a temp table of the
connection (`KEY_TABLE`), filled through parameters: the key never appears in SQL text,
so no error message or log can quote it. A value's text is the typed value cast to text (as
the warehouse shows it) when it has one, else the text as read: a quarantined row that was
only held back (its values typed) hashes as the loaded rows do, so their keys still match.

`mask` keeps `***` and, for a text longer than 8 characters, its last 4 (`***4242`).
"""

from __future__ import annotations

import hashlib

import duckdb

from penstock.catalog import ObjectSpec
from penstock.catalog.privacy import MASK, MASK_KEEPS_AFTER, MASK_TAIL
from penstock.sql import ident, literal

KEY_TABLE = "_penstock_pii_key"
_BLOCK = 64  # SHA-256's block size in bytes


def install_key(conn: duckdb.DuckDBPyConnection, key: str | None) -> None:
    """Make `KEY_TABLE` hold the padded keys of `key` in this connection (a no-op without a
    key: nothing hashes)."""
    if key is None:
        return
    raw = key.encode()
    if len(raw) > _BLOCK:
        raw = hashlib.sha256(raw).digest()
    padded = raw.ljust(_BLOCK, b"\0")
    inner = bytes(b ^ 0x36 for b in padded)
    outer = bytes(b ^ 0x5C for b in padded)
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {KEY_TABLE} AS SELECT ?::BLOB AS inner_pad, "
        "?::BLOB AS outer_pad",
        [inner, outer],
    )


def hash_sql(text: str) -> str:
    """HMAC-SHA256 of the VARCHAR expression `text` (NULL stays NULL)."""
    inner = f"(SELECT inner_pad FROM {KEY_TABLE})"
    outer = f"(SELECT outer_pad FROM {KEY_TABLE})"
    return (
        f"CASE WHEN ({text}) IS NULL THEN NULL "
        f"ELSE sha256({outer} || unhex(sha256({inner} || encode({text})))) END"
    )


def mask_sql(text: str) -> str:
    """`***`, plus the last characters of a long value (NULL stays NULL)."""
    return (
        f"CASE WHEN ({text}) IS NULL THEN NULL "
        f"WHEN length({text}) > {MASK_KEEPS_AFTER} "
        f"THEN {literal(MASK)} || right({text}, {MASK_TAIL}) ELSE {literal(MASK)} END"
    )


def stored_sql(obj: ObjectSpec, column: str, typed: str, raw: str | None = None) -> str | None:
    """The stored value of `column`, from its typed expression (and, in quarantine, its raw
    text as read), or None when the column is not stored (`pii: drop`)."""
    treatment = obj.columns[column].pii
    if treatment == "drop":
        return None
    if treatment not in ("hash", "mask"):
        return typed
    text = f"CAST({typed} AS VARCHAR)"
    if raw is not None:
        text = f"coalesce({text}, {raw})"
    return hash_sql(text) if treatment == "hash" else mask_sql(text)


def load_columns(obj: ObjectSpec, alias: str) -> str:
    """The select list of the rows to load: every stored column, treated, under its name."""
    parts = []
    for column in obj.stored_columns:
        typed = f"{alias}{ident(column)}"
        expression = stored_sql(obj, column, typed)
        parts.append(typed if expression == typed else f"{expression} AS {ident(column)}")
    return ", ".join(parts)


def quarantine_columns(obj: ObjectSpec, alias: str, raw_values: list[str]) -> str:
    """The quarantine's text columns: raw values as read (`raw_values`: SQL, one per contract
    column), treated; a dropped column NULL."""
    parts = []
    for column, raw in zip(obj.columns, raw_values, strict=True):
        treatment = obj.columns[column].pii
        if treatment == "drop":
            parts.append(f"NULL::VARCHAR AS {ident(column)}")
        elif treatment in ("hash", "mask"):
            expression = stored_sql(obj, column, f"{alias}{ident(column)}", raw)
            parts.append(f"{expression} AS {ident(column)}")
        else:
            parts.append(f"{raw} AS {ident(column)}")
    return ", ".join(parts)
