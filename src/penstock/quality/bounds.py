"""SQL literals for a column's bounds (`min`, `max`) and allowed values (`in`), in its type.

Temporal values compare in the column's type, offsets included:
  date         `now` is the extraction date in UTC
  timestamp    a naive value as written; one with an offset is converted to the column's
               `timezone` (the catalog refuses it when none is declared); `now` is the
               extraction time as wall-clock time in the column's `timezone`, else in UTC
  timestamptz  an instant: a value with an offset as written, a naive one is wall-clock
               time in the column's `timezone` (UTC when none); `now` is the extraction instant
`now` is the batch's extraction time from its manifest, so a run and a rebuild agree.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from penstock.catalog import ColumnSpec
from penstock.sql import literal

Now = datetime | str
"""The batch's extraction time: a datetime, or SQL yielding it as a TIMESTAMPTZ (a column,
when one statement validates the rows of several batches)."""


def _instant(value: Now) -> str:
    """A TIMESTAMPTZ literal (a naive datetime is taken as UTC), or the SQL given."""
    if isinstance(value, str):
        return value
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return f"TIMESTAMPTZ '{aware.astimezone(UTC).isoformat(sep=' ')}'"


def _in_zone(instant_sql: str, zone: str | None) -> str:
    """A TIMESTAMPTZ as wall-clock TIMESTAMP in `zone` (UTC when None)."""
    return f"timezone({literal(zone or 'UTC')}, {instant_sql})"


def value_literal(spec: ColumnSpec, value: object, now: Now) -> str:
    """`value` (a bound or an allowed value as the catalog holds it) as SQL in the column's
    type; `now` is the batch's extraction time."""
    column_type = spec.column_type
    zone = spec.timezone
    if column_type.family == "date" and isinstance(value, str):
        if value == "now":
            return _in_zone(_instant(now), None) + "::DATE"
        return literal(date.fromisoformat(value))
    if column_type.family != "timestamp" or not isinstance(value, str):
        return literal(value)
    if value == "now":
        instant = _instant(now)
    else:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            naive = f"TIMESTAMP '{parsed.isoformat(sep=' ')}'"
            if not column_type.with_zone:
                return naive
            return f"timezone({literal(zone or 'UTC')}, {naive})"
        instant = _instant(parsed)
    return instant if column_type.with_zone else _in_zone(instant, zone)
