"""The plan drawn: a Mermaid `flowchart` or a Graphviz DOT `digraph` of its nodes.

Nodes are the selected units' steps, grouped by their dependency group (a Mermaid subgraph, a
DOT cluster); an edge runs from the node that goes first to the one that waits for it, labelled
with why when it crosses objects (`depends_on`, `group_after`). Edges from units not selected
are left out: the drawing is of what the selection would run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from penstock.engine.plan import Node, Plan


def _edges(nodes: Sequence[Node]) -> list[tuple[str, str, str | None]]:
    """(from, to, label) for each edge between `nodes`, each once."""
    ids = {node.id for node in nodes}
    edges: dict[tuple[str, str], str | None] = {}
    for node in nodes:
        for dep in node.dependencies:
            if dep.node not in ids:
                continue
            label = None if dep.why == "same_object" else dep.why
            key = (dep.node, node.id)
            if key in edges and edges[key] != label:
                edges[key] = "depends_on, group_after"
            else:
                edges[key] = label
    return [(a, b, label) for (a, b), label in edges.items()]


def _by_group(nodes: Sequence[Node]) -> dict[str, list[Node]]:
    groups: dict[str, list[Node]] = {}
    for node in nodes:
        groups.setdefault(node.group, []).append(node)
    return groups


def to_mermaid(plan: Plan, names: Sequence[str]) -> str:
    """A Mermaid flowchart (left to right) of the steps of the units `names`."""
    nodes = plan.nodes_of(names)
    ids = {node.id: f"n{index}" for index, node in enumerate(nodes)}
    lines = ["flowchart LR"]
    for index, (group, members) in enumerate(_by_group(nodes).items()):
        lines.append(f'  subgraph g{index}["group {group}"]')
        lines += [f'    {ids[n.id]}["{n.id}"]' for n in members]
        lines.append("  end")
    for a, b, label in _edges(nodes):
        arrow = f"-->|{label}|" if label else "-->"
        lines.append(f"  {ids[a]} {arrow} {ids[b]}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    """A DOT double-quoted ID (JSON string escaping is a subset DOT reads the same way)."""
    return json.dumps(text)


def to_dot(plan: Plan, names: Sequence[str]) -> str:
    """A Graphviz digraph (left to right) of the steps of the units `names`."""
    nodes = plan.nodes_of(names)
    lines = [
        f"digraph {_quote(plan.project.name)} {{",
        "  rankdir=LR;",
        "  node [shape=box];",
    ]
    for group, members in _by_group(nodes).items():
        lines.append(f"  subgraph {_quote('cluster_' + group)} {{")
        lines.append(f"    label={_quote('group ' + group)};")
        lines += [f"    {_quote(n.id)};" for n in members]
        lines.append("  }")
    for a, b, label in _edges(nodes):
        attributes = f" [label={_quote(label)}]" if label else ""
        lines.append(f"  {_quote(a)} -> {_quote(b)}{attributes};")
    lines.append("}")
    return "\n".join(lines) + "\n"
