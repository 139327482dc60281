"""Project settings of push alerts and service levels: `alerts:` rules and an object's `sla:`.

```yaml
alerts:
  - name: ops
    on: [run_failed, check_failed, source_down, sla_missed]   # which events
    objects: [orders]                  # which objects (default: every object)
    severity: error                    # info | warning | error | critical
    to:                                # apprise URLs: Slack, Teams, e-mail, webhooks …
      - "json://hooks.example.com/penstock"
      - "mailto://${env:SMTP_USER}:${env:SMTP_PASSWORD}@smtp.example.com?to=ops@example.com"
    throttle: 1h                       # at most one alert per key in this window
    recovery: true                     # a notice when the condition clears
objects:
  orders:
    sla: {freshness: 2h, success_rate: 99%, window: 7d}
    columns:
      status: {type: text, show_in_alerts: true}   # values shown in alert samples
```

Durations (`throttle`, `freshness`, `window`) are a number and a unit: `s`, `m`, `h`, `d`, `w`
(`90m`, `2h`, `1.5d`). Destinations are checked by apprise when a run or `penstock alerts
test` starts (apprise is an extra: `pip install 'penstock[alerts]'`); they may hold
`${env:…}` references, and penstock never prints a destination (it names them `ops[0]
(json)`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from penstock.catalog.columns import IDENTIFIER, IDENTIFIER_RULE

AlertEvent = Literal[
    "run_failed", "check_failed", "anomaly", "schema_drift", "sla_missed", "source_down"
]
ALERT_EVENTS: tuple[str, ...] = get_args(AlertEvent)
Severity = Literal["info", "warning", "error", "critical"]

_PERIOD = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d|w)\s*$")
_PERIOD_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PERCENT = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*%\s*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def period_seconds(value: str) -> float:
    """Seconds in a period such as `30s`, `90m`, `2h`, `1.5d` or `2w`."""
    match = _PERIOD.match(value)
    if match is None:
        raise ValueError(f"expected a duration such as 30m, 2h, 1d or 2w, got '{value}'")
    return float(match["amount"]) * _PERIOD_UNITS[match["unit"]]


def percent_ratio(value: str | float | int) -> float:
    """A share as a ratio: `99%`, `99.5%`, or a number between 0 and 1 (`0.99`)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a percentage such as 99%, got {value!r}")
    if isinstance(value, int | float):
        ratio = float(value)
    else:
        match = _PERCENT.match(value)
        if match is None:
            raise ValueError(f"expected a percentage such as 99% or 99.5%, got '{value}'")
        ratio = float(match["number"]) / 100
    if not 0 < ratio <= 1:
        raise ValueError(f"must be more than 0% and at most 100%, got {value!r}")
    return ratio


class Model(BaseModel):
    """Unknown keys are errors, instances are immutable (as every project model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _period(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = f"{value:g}"
        raise ValueError(f"give the unit: '{number}m', '{number}h' or '{number}d'")
    if isinstance(value, str):
        period_seconds(value)
    return value


class AlertRule(Model):
    """One `alerts:` rule: which events of which objects go to which destinations, how
    often at most (per key: an event kind and an object, a source or an SLO)."""

    name: Annotated[str, Field(min_length=1)]
    on: Annotated[list[AlertEvent], Field(min_length=1)]
    objects: list[str] | None = None
    severity: Severity = "error"
    to: Annotated[list[str], Field(min_length=1)]
    throttle: str = "1h"
    recovery: StrictBool = True

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError(f"alert name '{value}' {IDENTIFIER_RULE}")
        return value

    @field_validator("on", "objects", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("to", mode="before")
    @classmethod
    def _check_to(cls, value: Any) -> Any:
        items = [value] if isinstance(value, str) else value
        if isinstance(items, list):
            for item in items:
                # never echo the URL: it may hold a token or a password
                if isinstance(item, str) and not _SCHEME.match(item.strip()):
                    raise ValueError(
                        "each destination is an apprise URL such as json://host/path, "
                        "mailto://user:pass@host, slack://… or msteams://…"
                    )
        return items

    @field_validator("throttle", mode="before")
    @classmethod
    def _check_throttle(cls, value: Any) -> Any:
        if value == 0 and not isinstance(value, bool):
            return "0s"
        return _period(value)

    @property
    def throttle_seconds(self) -> float:
        return period_seconds(self.throttle)

    def wants(self, event: str, object_name: str | None) -> bool:
        """Does this rule alert on `event` of `object_name` (None: of no one object)?"""
        if event not in self.on:
            return False
        if self.objects is None:
            return True
        return object_name is not None and object_name in self.objects

    def destination_label(self, index: int) -> str:
        """How a destination is named in output, logs and the store: never its URL."""
        scheme = self.to[index].strip().split("://", 1)[0].lower()
        return f"{self.name}[{index}] ({scheme})"


class SlaSpec(Model):
    """An object's service levels: `freshness` (the longest time since its last batch
    loaded) and `success_rate` (the share of its runs that did not fail, over `window`)."""

    freshness: str | None = None
    success_rate: str | float | None = None
    window: str = "7d"

    @field_validator("freshness", "window", mode="before")
    @classmethod
    def _check_period(cls, value: Any) -> Any:
        return None if value is None else _period(value)

    @field_validator("success_rate", mode="before")
    @classmethod
    def _check_rate(cls, value: Any) -> Any:
        if value is not None:
            percent_ratio(value)
        return value

    @property
    def freshness_seconds(self) -> float | None:
        return None if self.freshness is None else period_seconds(self.freshness)

    @property
    def success_ratio(self) -> float | None:
        return None if self.success_rate is None else percent_ratio(self.success_rate)

    @property
    def window_seconds(self) -> float:
        return period_seconds(self.window)


def check_alert_rules(
    rules: list[AlertRule], objects: set[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems across rules: a name used twice, an object the project does not have."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if rule.name in seen:
            problems.append(((index, "name"), f"duplicate alert name '{rule.name}'"))
        seen.add(rule.name)
        for position, name in enumerate(rule.objects or []):
            if name not in objects:
                known = ", ".join(sorted(objects)) or "none"
                problems.append(
                    ((index, "objects", position), f"unknown object '{name}' (objects: {known})")
                )
    return problems
