"""A batch's skip decision, kept beside it in the lake: `skipped.json` in its directory.

The marker is what run and rebuild honour (a rebuild from an empty warehouse too): a skipped
batch is never loaded, and the later batches of its object go on. It is written atomically;
the metadata store keeps the same decision for audit (who, when, why).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from penstock.errors import TerminalError

SKIP_NAME = "skipped.json"


@dataclass(frozen=True, kw_only=True)
class SkipMarker:
    reason: str
    by: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "by": self.by, "at": self.at.isoformat()}

    @classmethod
    def read(cls, path: Path) -> SkipMarker | None:
        """The marker at `path`, or None if there is none."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise TerminalError(f"{path}: unreadable skip marker: {exc}", file=str(path)) from exc
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise TerminalError(f"{path}: unreadable skip marker: {exc}", file=str(path)) from exc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SkipMarker:
        return cls(
            reason=str(data["reason"]), by=str(data["by"]), at=datetime.fromisoformat(data["at"])
        )
