"""Options that any row rule may carry: how severe a failure is and how many are tolerated.

A column rule written as a mapping carries its options beside its `value:`:

```yaml
email:    {type: text, pattern: {value: "^[^@ ]+@[^@ ]+$", severity: warn}}
country:  {type: text, in: {value: [NO, SE, DK], max_failure_rate: 0.5%}}
name:     {type: text, length: {min: 1, max: 80, severity: warn}}   # length: its own keys
checks:
  - {name: updated_after_order, expression: "updated_at >= order_ts", severity: warn}
```

- `severity: error` (the default): a failing row is held back in quarantine. `warn`: it loads
  all the same and is recorded in quarantine as loaded (as `on_invalid: warn` does for every
  rule), with the reason.
- `max_failure_rate`: when more than this share of a batch's records fails the rule, the whole
  batch fails (`failure_rate:<reason>`, like a failed row count: every record is held back);
  at or below it, failing rows are treated as their severity says.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, model_validator

Severity = Literal["error", "warn"]
OPTION_KEYS = ("severity", "max_failure_rate")
# the column rules that take options (`type` does not: a value that does not cast cannot load)
RULES = ("required", "min", "max", "between", "in", "pattern", "length", "references", "unique")
_PERCENT = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?)\s*%\s*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def failure_rate(value: Any) -> float:
    """'0.5%' as 0.005; only a percentage is accepted (0.5 could mean either)."""
    if isinstance(value, str):
        match = _PERCENT.match(value)
        if match is not None:
            ratio = float(match["number"]) / 100
            if ratio < 1:
                return ratio
            raise ValueError(f"must be less than 100%, got {value!r}")
    raise ValueError(f"expected a percentage such as 0.5% or 2%, got {value!r}")


def _optional_rate(value: Any) -> Any:
    return None if value is None else failure_rate(value)


# `max_failure_rate:` as written ('0.5%') → a share (0.005), None when not given
FailureRate = Annotated[float | None, BeforeValidator(_optional_rate)]


class RuleOptions(_Model):
    """The options of one rule (see the module docstring)."""

    severity: Severity = "error"
    max_failure_rate: FailureRate = None


class LengthBounds(_Model):
    """`length:` of a text value in characters: `length: 2` (exactly) or `{min:, max:}`."""

    min: Annotated[StrictInt, Field(ge=0)] | None = None
    max: Annotated[StrictInt, Field(ge=0)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _exact(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"min": value, "max": value}
        return value

    @model_validator(mode="after")
    def _check(self) -> LengthBounds:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both (or one number: the exact length)")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"max ({self.max}) is less than min ({self.min})")
        return self


def split_rule_options(data: Any) -> Any:
    """Move the options written inside a column's rules into `rule_options` (by rule name), and
    leave each rule its plain value, so every rule's own validation is unchanged."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    options: dict[str, Any] = {}
    for rule in RULES:
        value = data.get(rule)
        if not isinstance(value, dict) or not any(k in value for k in OPTION_KEYS):
            continue
        value = dict(value)
        options[rule] = {k: value.pop(k) for k in OPTION_KEYS if k in value}
        if rule != "length":
            if set(value) != {"value"}:
                raise ValueError(
                    f"{rule}: with severity or max_failure_rate, write the rule's value as "
                    f"value: (e.g. {rule}: {{value: ..., severity: warn}})"
                )
            value = value["value"]
        data[rule] = value
    if options:
        data["rule_options"] = options
    return data
