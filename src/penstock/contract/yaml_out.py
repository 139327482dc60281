"""Write penstock object YAML the way people write it: each column and check on one line
(`order_id: {type: bigint, required: true}`), the rest in block style."""

from __future__ import annotations

from typing import Any

import yaml


class _Flow(dict[str, Any]):
    """A mapping written on one line."""


class _FlowList(list[Any]):
    """A list written on one line."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _flow_mapping(dumper: yaml.SafeDumper, data: _Flow) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)


def _flow_sequence(dumper: yaml.SafeDumper, data: _FlowList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(_Flow, _flow_mapping)
_Dumper.add_representer(_FlowList, _flow_sequence)


def object_file(name: str, spec: dict[str, Any], comments: list[str]) -> str:
    """An object file (`objects: {name: spec}`) headed by `comments`, one per line."""
    styled: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "columns":
            styled[key] = {column: _Flow(_flow_values(c)) for column, c in value.items()}
        elif key == "checks":
            styled[key] = [_Flow(_flow_values(check)) for check in value]
        elif isinstance(value, list):
            styled[key] = _FlowList(value)
        else:
            styled[key] = value
    body = yaml.dump(
        {"objects": {name: styled}},
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    header = "".join(f"# {line}\n" if line else "#\n" for line in comments)
    return header + body


def _flow_values(mapping: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _Flow(value) if isinstance(value, dict) else value for key, value in mapping.items()
    }
