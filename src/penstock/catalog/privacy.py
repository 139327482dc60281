"""Privacy: what happens to a personal-data column before it is stored (issue 10).

```yaml
privacy:
  key: "${env:PENSTOCK_PII_KEY}"        # the key of `pii: hash`; a reference, never the key
objects:
  customers:
    columns:
      email: {type: text, pii: hash}     # HMAC-SHA256 with the key, as 64 hex digits
      phone: {type: text, pii: mask}     # '***' and, past 8 characters, the last 4
      notes: {type: text, pii: drop}     # never stored: not in the table, NULL in quarantine
      name:  {type: text, pii: keep}     # personal data, stored as read (marked in the catalog)
```

The contract checks the value as read; the warehouse table and the quarantine (its table and
its lake files) get the treated value, so personal data never rests there in clear. The stage
zone keeps the landing data as it came (it is the copy that rebuilds replay), and a malformed
record of an object with a treated column keeps its raw line only there: the quarantine
records that it was malformed and why, without the line.

Hashing is keyed, so a value cannot be found by hashing a dictionary of candidates; the same
value and key always give the same hash, so hashed keys still join and merge. Changing the
key changes every hash: `penstock rebuild` re-hashes the whole table from the stage zone.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Pii = Literal["hash", "mask", "drop", "keep"]
TREATED: frozenset[str] = frozenset({"hash", "mask", "drop"})
MIN_KEY_CHARS = 16
MASK = "***"
MASK_KEEPS_AFTER = 8  # a masked value longer than this keeps its last MASK_TAIL characters
MASK_TAIL = 4


class PrivacySettings(BaseModel):
    """`privacy:` in penstock.yml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str | None = None
