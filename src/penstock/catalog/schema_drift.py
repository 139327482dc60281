"""`schema_drift:` on an object: what a batch whose columns differ from the contract does.

```yaml
objects:
  orders:
    schema_drift: {new_columns: evolve, missing_columns: quarantine, type_changes: fail}
```

Each staged batch's observed schema (its manifest's columns and their types) is compared with
the object's declared columns when the batch is validated (quality/drift.py), so a run and a
rebuild decide alike:

- `new_columns`, a source column no contract column reads: `ignore` (the default, as before
  this key existed) loads without it and keeps it in the stage zone; `evolve` adds it to the
  warehouse table and the quarantine as `text` (VARCHAR: the contract gives it no type; declare
  it to type and check it); `fail` fails the batch, naming the file and the column.
- `missing_columns`, a contract column the file lacks: `warn` (the default, as before) reads it
  as empty with a warning (a `required` column then fails every row as `required:<column>`);
  `quarantine` holds every row of the batch back with the reason `schema:missing:<column>`;
  `fail` fails the batch.
- `type_changes`, a column whose observed type is not the declared one (typed sources, such
  as Parquet; CSV and JSON values arrive as text, which is never a type change): `coerce` (the
  default, as before) lets the strict cast decide per row (`type:<column>` for a value that
  does not convert exactly); `fail` fails the batch.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

NewColumns = Literal["ignore", "evolve", "fail"]
MissingColumns = Literal["warn", "quarantine", "fail"]
TypeChanges = Literal["coerce", "fail"]

MISSING_REASON = "schema:missing:"


class SchemaDriftPolicy(BaseModel):
    """What each kind of drift from the contract does (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    new_columns: NewColumns = "ignore"
    missing_columns: MissingColumns = "warn"
    type_changes: TypeChanges = "coerce"
