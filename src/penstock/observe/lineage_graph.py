"""`penstock lineage OBJECT`: the lineage the store recorded (observe/lineage.py), as a graph
of datasets joined by the jobs that read one and wrote the other.

The graph starts at the object's table. `upstream` walks back through the jobs that wrote it
(the load from the stage zone, the stage from the landing files), `downstream` forward through
the jobs that read it; both by default. A job on the path brings its other outputs along (the
quarantine a load wrote beside the table). Landing files and staged batches of one directory
are one node (`landing/orders/ (12 files)`), so the graph stays readable after a thousand
files; `--json` lists every dataset of a node. An edge the path already makes through the
stage zone (a landing file read again by the load) is left out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from penstock.errors import UsageError
from penstock.observe.schema import lineage

Direction = Literal["upstream", "downstream", "both"]
_GROUPED = ("landing", "stage")
_UNIT = {"landing": "file", "stage": "batch"}


@dataclass
class Node:
    id: str
    role: str
    namespace: str
    label: str
    datasets: list[str] = field(default_factory=list)


@dataclass
class Edge:
    source: str
    target: str
    job: str
    steps: int
    last_at: datetime | None


@dataclass
class LineageGraph:
    object: str
    direction: Direction
    nodes: list[Node]
    edges: list[Edge]
    columns: dict[str, list[dict[str, str]]]  # the table's columns -> where they come from

    def as_dict(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "direction": self.direction,
            "nodes": [vars(n) for n in self.nodes],
            "edges": [
                {
                    "from": e.source,
                    "to": e.target,
                    "job": e.job,
                    "steps": e.steps,
                    "last_at": e.last_at,
                }
                for e in self.edges
            ],
            "columns": self.columns,
        }


def read_graph(
    engine: sa.Engine, project: str, object_name: str, root: Path, direction: Direction
) -> LineageGraph:
    """The lineage graph of `object_name` (see the module docstring)."""
    c = lineage.c
    query = sa.select(
        c.step_id, c.job, c.object, c.direction, c.namespace, c.name, c.role, c.at
    ).where(c.project == project)
    steps: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            step = steps.setdefault(
                row.step_id,
                {"job": row.job, "object": row.object, "in": set(), "out": set(), "at": row.at},
            )
            step["in" if row.direction == "input" else "out"].add(
                (row.namespace, row.name, row.role)
            )
        targets = {
            (ns, name, role)
            for s in steps.values()
            if s["object"] == object_name
            for ns, name, role in s["out"]
            if role == "table"
        }
        columns = _columns(conn, project, object_name)
    if not targets:
        raise UsageError(
            f"no lineage recorded for object '{object_name}': it has not loaded a batch since "
            f"lineage was recorded (or its records are older than the lineage retention)",
            object=object_name,
        )
    # dataset edges: every input of a step to every output of it
    edges: dict[tuple[Any, Any, str], list[datetime]] = defaultdict(list)
    for s in steps.values():
        for i in s["in"]:
            for o in s["out"]:
                edges[(i, o, s["job"])].append(s["at"])
    chosen = set()
    if direction in ("upstream", "both"):
        chosen |= _walk(edges, targets, backward=True)
    if direction in ("downstream", "both"):
        chosen |= _walk(edges, targets, backward=False)
    return _collapse(object_name, direction, {k: edges[k] for k in chosen}, root, columns)


def _walk(edges: Any, start: set[Any], *, backward: bool) -> set[Any]:
    seen, frontier, chosen = set(start), set(start), set()
    jobs = set()
    while frontier:
        found = {k for k in edges if (k[1] if backward else k[0]) in frontier and k not in chosen}
        chosen |= found
        jobs |= {k[2] for k in found}
        nxt = {k[0] if backward else k[1] for k in found} - seen
        seen |= nxt
        frontier = nxt
    if backward:  # a job on the path brings its other outputs (the quarantine beside a table)
        chosen |= {k for k in edges if k[2] in jobs and k[0] in seen}
    return chosen


def _collapse(
    object_name: str,
    direction: Direction,
    edges: dict[tuple[Any, Any, str], list[datetime]],
    root: Path,
    columns: dict[str, list[dict[str, str]]],
) -> LineageGraph:
    nodes: dict[str, Node] = {}

    def node_of(dataset: tuple[str, str, str]) -> str:
        namespace, name, role = dataset
        if role in _GROUPED and namespace == "file":
            key = f"{role}:{Path(name).parent}"
        else:
            key = f"{role}:{namespace}/{name}"
        node = nodes.get(key)
        if node is None:
            node = nodes[key] = Node(
                id=f"n{len(nodes) + 1}", role=role, namespace=namespace, label=""
            )
        if name not in node.datasets:
            node.datasets.append(name)
        return key

    merged: dict[tuple[str, str, str], list[datetime]] = defaultdict(list)
    for (i, o, job), ats in sorted(edges.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
        merged[(node_of(i), node_of(o), job)].extend(ats)
    for key, node in nodes.items():
        node.label = _label(node, key, root)
        node.datasets.sort()
    # an edge the path already makes through another node (landing -> stage -> table) goes
    pairs = {(a, b) for a, b, _ in merged}
    kept = {
        k: v
        for k, v in merged.items()
        if not any((k[0], mid) in pairs and (mid, k[1]) in pairs for mid in nodes)
    }
    return LineageGraph(
        object=object_name,
        direction=direction,
        nodes=sorted(nodes.values(), key=lambda n: int(n.id[1:])),
        edges=[
            Edge(nodes[a].id, nodes[b].id, job, len(ats), max(ats) if ats else None)
            for (a, b, job), ats in sorted(kept.items(), key=lambda kv: (kv[0][2], kv[0][0]))
        ],
        columns=columns,
    )


def _label(node: Node, key: str, root: Path) -> str:
    if node.role in _GROUPED and node.namespace == "file":
        directory = _relative(Path(key.split(":", 1)[1]), root)
        n = len(node.datasets)
        if n == 1:
            return _relative(Path(node.datasets[0]), root)
        return f"{directory}/ ({n} {_UNIT[node.role]}{'es' if node.role == 'stage' else 's'})"
    return node.datasets[0] if node.datasets else key


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.resolve()))
    except ValueError:
        return str(path)


def latest_column_lineage(
    conn: sa.Connection, project: str, unit: str
) -> dict[str, list[list[str]]] | None:
    """The column lineage (output column → [namespace, dataset, field, transformation] of
    each input) of the latest load or build of `unit`'s table; None when none was recorded."""
    c = lineage.c
    row = conn.execute(
        sa.select(c.column_lineage)
        .where(
            c.project == project,
            c.object == unit,
            c.role == "table",
            c.direction == "output",
            c.column_lineage.is_not(None),
        )
        .order_by(c.at.desc(), c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    value: dict[str, list[list[str]]] = row.column_lineage or {}
    return value


def _columns(
    conn: sa.Connection, project: str, object_name: str
) -> dict[str, list[dict[str, str]]]:
    """Where each column of the object's table came from, as its latest load recorded it."""
    found = latest_column_lineage(conn, project, object_name) or {}
    return {
        name: [{"dataset": ds, "field": fld, "transformation": sub} for _ns, ds, fld, sub in inputs]
        for name, inputs in found.items()
    }


def mermaid(graph: LineageGraph) -> str:
    lines = ["flowchart LR"]
    for n in graph.nodes:
        text = n.label.replace('"', "#quot;")
        shape = f'[("{text}")]' if n.role in ("table", "quarantine") else f'["{text}"]'
        lines.append(f"    {n.id}{shape}")
    for e in graph.edges:
        lines.append(f'    {e.source} -->|"{e.job}"| {e.target}')
    return "\n".join(lines)


def dot(graph: LineageGraph) -> str:
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"digraph {quoted('lineage of ' + graph.object)} {{", "    rankdir=LR;"]
    for n in graph.nodes:
        shape = "cylinder" if n.role in ("table", "quarantine") else "folder"
        lines.append(f"    {n.id} [label={quoted(n.label)}, shape={shape}];")
    for e in graph.edges:
        lines.append(f"    {e.source} -> {e.target} [label={quoted(e.job)}];")
    lines.append("}")
    return "\n".join(lines)
