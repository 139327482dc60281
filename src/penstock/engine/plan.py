"""The plan: the catalog as a DAG of steps, in the order a run takes them.

One node per (unit, step). A unit is a catalog entry that does work of its own: an object,
whose steps are `extract` (discover and stage new files) and `load` (validate and load the
pending batches), or a consume model (`models/*.sql`, transform/), whose one step is `build`
and whose upstream is what its SQL reads (`reads`: objects or other models). Models are in
the group `models`. `_units` is the one place that lists units, everything below it works on
any kind.

Within a unit each step depends on the one before it (`same_object`). A unit's first step
depends on the last step of every unit upstream of it:

- `depends_on: [customers]` on an object: customers is upstream (`depends_on`);
- `references: customers.id` on a column: its values are looked up in customers' table, so
  customers is upstream (`references`) as if declared in depends_on;
- `groups: {staging: {after: [raw]}}`: every object of raw is upstream of every object of
  staging (`group_after`); through groups the order is transitive (marts after staging after
  raw runs raw first).

`build_plan` names a cycle as a `ProjectError` (`dependency cycle: orders → customers →
orders`, each arrow reading "depends on"), with the reason of each arrow. The order is
topological and stable: among nodes free to go, the one declared first goes first, so a
project without dependencies runs in declaration order, each object's extract then its load.

Selection (`--select`): object names and `group:G`, comma-separated, each optionally with
dbt's graph operators: `+orders` is orders and everything upstream of it, `orders+` orders and
everything downstream, `+orders+` both. Downstream and upstream are transitive.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from itertools import pairwise
from typing import Literal

from penstock.catalog import Project
from penstock.errors import ProjectError, UsageError

UnitKind = Literal["object", "model"]
Why = Literal["same_object", "depends_on", "references", "group_after", "reads"]
OBJECT_STEPS: tuple[str, ...] = ("extract", "load")
MODEL_STEPS: tuple[str, ...] = ("build",)
MODELS_GROUP = "models"
ARROW = " → "
_GROUP_PREFIX = "group:"


@dataclass(frozen=True)
class Upstream:
    """One unit upstream of another, and why."""

    unit: str
    why: Why
    detail: str  # "orders depends_on customers", "group staging runs after raw"


@dataclass(frozen=True)
class Unit:
    """A catalog entry with steps: an object (consume models later)."""

    name: str
    kind: UnitKind
    group: str
    steps: tuple[str, ...]
    upstream: tuple[Upstream, ...]  # every unit directly upstream, with why
    index: int  # declaration order
    depends: tuple[str, ...] = ()  # the units it declares it depends on
    after: tuple[str, ...] = ()  # the groups its group runs after

    def node_id(self, step: str) -> str:
        return f"{self.name}.{step}"

    @property
    def last(self) -> str:
        """The id of its last node: what the units downstream of it wait for."""
        return self.node_id(self.steps[-1])


@dataclass(frozen=True)
class Dependency:
    """An edge of the DAG: the node `node` must finish first, for reason `why`."""

    node: str
    why: Why
    detail: str


@dataclass(frozen=True)
class Node:
    id: str  # "<unit>.<step>"
    unit: str
    kind: UnitKind
    step: str
    group: str
    dependencies: tuple[Dependency, ...]

    @property
    def depends_on(self) -> list[str]:
        """The node ids this node waits for, each once, in declaration order."""
        return list(dict.fromkeys(d.node for d in self.dependencies))

    @property
    def reason(self) -> str:
        """Why the node waits for what it waits for, in words."""
        if not self.dependencies:
            return "nothing upstream"
        return "; ".join(dict.fromkeys(d.detail for d in self.dependencies))


@dataclass
class Plan:
    """The DAG in run order: `nodes` and `units` are both topologically ordered."""

    project: Project
    nodes: dict[str, Node]
    units: dict[str, Unit]
    _up: dict[str, int] = field(default_factory=dict, repr=False)  # unit → bits of its upstream
    _down: dict[str, int] = field(default_factory=dict, repr=False)
    _bit: dict[str, int] = field(default_factory=dict, repr=False)  # unit → its bit

    def order(self) -> list[str]:
        """Every unit's name, in run order."""
        return list(self.units)

    def upstream(self, name: str) -> frozenset[str]:
        """Every unit `name` depends on, directly or not."""
        return self._names(self._closures()[0][name])

    def downstream(self, name: str) -> frozenset[str]:
        """Every unit that depends on `name`, directly or not."""
        return self._names(self._closures()[1][name])

    def depends(self, name: str, other: str) -> bool:
        """Whether `name` depends on `other`, directly or not."""
        return bool(self._closures()[0][name] & self._bit[other])

    def _names(self, bits: int) -> frozenset[str]:
        return frozenset(name for i, name in enumerate(self.units) if bits >> i & 1)

    def _closures(self) -> tuple[dict[str, int], dict[str, int]]:
        """Per unit, the units upstream and downstream of it as bits (bit i: the i-th unit in
        run order), in one pass each way; a group's members count once for all the units of
        the groups that run after it."""
        if self._up or not self.units:
            return self._up, self._down
        bit = self._bit = {name: 1 << i for i, name in enumerate(self.units)}
        group_up: dict[str, int] = {}  # a group's members and everything upstream of them
        for name, unit in self.units.items():  # in run order: upstream first
            bits = 0
            for other in unit.depends:
                bits |= self._up[other] | bit[other]
            for group in unit.after:
                bits |= group_up[group]
            self._up[name] = bits
            group_up[unit.group] = group_up.get(unit.group, 0) | bits | bit[name]
        dependents: dict[str, list[str]] = {name: [] for name in self.units}
        later: dict[str, set[str]] = {}  # group → the groups that run after it
        for unit in self.units.values():
            for other in unit.depends:
                dependents[other].append(unit.name)
            for group in unit.after:
                later.setdefault(group, set()).add(unit.group)
        group_down: dict[str, int] = {}
        for name in reversed(self.units):  # downstream first
            unit = self.units[name]
            bits = 0
            for other in dependents[name]:
                bits |= self._down[other] | bit[other]
            for group in later.get(unit.group, ()):
                bits |= group_down[group]
            self._down[name] = bits
            group_down[unit.group] = group_down.get(unit.group, 0) | bits | bit[name]
        return self._up, self._down

    def select(self, selector: str | None = None) -> list[str]:
        """The unit names `selector` picks, in run order (every unit for None or "").

        Terms are comma-separated: `orders`, `group:raw`, each with optional graph operators:
        `+orders` adds everything upstream, `orders+` everything downstream. An unknown name
        or group is a UsageError listing the known ones."""
        if selector is None or not selector.strip():
            return self.order()
        wanted: set[str] = set()
        for raw_term in selector.split(","):
            term = raw_term.strip()
            if not term:
                continue
            up, base = term.startswith("+"), term.removeprefix("+")
            down, base = base.endswith("+"), base.removesuffix("+").strip()
            if not base or "+" in base:
                raise UsageError(
                    f"cannot read selector '{term}': write NAME, group:G, +NAME (with its "
                    "upstream) or NAME+ (with its downstream)",
                    selector=term,
                )
            members = self._members(base)
            wanted.update(members)
            for name in members:
                if up:
                    wanted |= self.upstream(name)
                if down:
                    wanted |= self.downstream(name)
        return [name for name in self.units if name in wanted]

    def _members(self, base: str) -> list[str]:
        models = [n for n, u in self.units.items() if u.kind == "model"]
        if base in models:
            return [base]
        if base == f"{_GROUP_PREFIX}{MODELS_GROUP}" and models:
            objects = [o.name for o in self.project.objects_in_order() if o.group == MODELS_GROUP]
            return objects + models
        try:
            return [spec.name for spec in self.project.select(base)]
        except UsageError as exc:
            if not models or base.startswith(_GROUP_PREFIX):
                raise
            raise UsageError(f"{exc.message} (models: {', '.join(models)})", **exc.fields) from None

    def objects_of(self, names: Iterable[str]) -> list[str]:
        """The objects among the unit names `names`."""
        return [n for n in names if self.units[n].kind == "object"]

    def models_of(self, names: Iterable[str]) -> list[str]:
        """The models among the unit names `names`."""
        return [n for n in names if self.units[n].kind == "model"]

    def nodes_of(self, names: Iterable[str]) -> list[Node]:
        """The nodes of the units `names`, in run order."""
        chosen = set(names)
        return [node for node in self.nodes.values() if node.unit in chosen]


# ---- building -------------------------------------------------------------------------------


def build_plan(project: Project) -> Plan:
    """The project's DAG in run order; a ProjectError naming the cycle if there is one."""
    units = _units(project)
    _check_group_cycles(project)
    _check_unit_cycles(project, units)
    nodes = _nodes(units)
    ordered = _stable_order(nodes, units)
    by_unit: dict[str, Unit] = {}
    for node_id in ordered:
        unit = units[nodes[node_id].unit]
        by_unit.setdefault(unit.name, unit)
    return Plan(project, {n: nodes[n] for n in ordered}, by_unit)


def _units(project: Project) -> dict[str, Unit]:
    """Every unit of the project in declaration order, with its direct upstream (a group's
    upstream is one tuple, shared by its members)."""
    objects = project.objects_in_order()
    members: dict[str, list[str]] = {}
    for spec in objects:
        members.setdefault(spec.group, []).append(spec.name)
    after = {g: tuple(project.groups[g].after) if g in project.groups else () for g in members}
    by_group = {
        group: tuple(
            Upstream(other, "group_after", f"group {group} runs after {earlier}")
            for earlier in earlier_groups
            for other in members[earlier]
        )
        for group, earlier_groups in after.items()
    }
    units: dict[str, Unit] = {}
    for index, spec in enumerate(objects):
        declared = tuple(
            Upstream(other, "depends_on", f"{spec.name} depends_on {other}")
            for other in spec.depends_on
        )
        referenced = sorted(
            {
                c.references.partition(".")[0]
                for c in spec.columns.values()
                if c.references and c.references.partition(".")[0] not in spec.depends_on
            }
            - {spec.name}
        )
        declared += tuple(
            Upstream(other, "references", f"{spec.name} references {other}") for other in referenced
        )
        units[spec.name] = Unit(
            name=spec.name,
            kind="object",
            group=spec.group,
            steps=OBJECT_STEPS,
            upstream=declared + by_group[spec.group],
            index=index,
            depends=(*spec.depends_on, *referenced),
            after=after[spec.group],
        )
    from penstock.transform.files import model_files

    if not model_files(project.root):
        return units  # no models: sqlglot is not loaded
    from penstock.transform.model_set import load_models

    for index, model in enumerate(load_models(project).models.values(), start=len(units)):
        reads = tuple(
            Upstream(r.unit, "reads", f"{model.name} reads {r.unit}") for r in model.reads
        )
        units[model.name] = Unit(
            name=model.name,
            kind="model",
            group=MODELS_GROUP,
            steps=MODEL_STEPS,
            upstream=reads,
            index=index,
            depends=model.upstream,
        )
    return units


def _members(units: Mapping[str, Unit]) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for unit in units.values():
        members.setdefault(unit.group, []).append(unit.name)
    return members


def _barrier(group: str) -> str:
    """The graphs' stand-in for "every unit of `group` done" (not a unit name: it holds ':'),
    so that a group after another costs an edge per unit, not one per pair of units."""
    return f"{_GROUP_PREFIX}{group}"


def _nodes(units: dict[str, Unit]) -> dict[str, Node]:
    last = {name: unit.last for name, unit in units.items()}
    by_group: dict[str, tuple[Dependency, ...]] = {}  # shared by the units of a group
    nodes: dict[str, Node] = {}
    for unit in units.values():
        for position, step in enumerate(unit.steps):
            if position == 0:
                declared = unit.upstream[: len(unit.depends)]
                if unit.group not in by_group:
                    by_group[unit.group] = tuple(
                        Dependency(last[up.unit], up.why, up.detail)
                        for up in unit.upstream[len(unit.depends) :]
                    )
                deps = (
                    tuple(Dependency(last[up.unit], up.why, up.detail) for up in declared)
                    + by_group[unit.group]
                )
            else:
                before = unit.node_id(unit.steps[position - 1])
                deps = (Dependency(before, "same_object", f"same object: after {before}"),)
            node_id = unit.node_id(step)
            nodes[node_id] = Node(node_id, unit.name, unit.kind, step, unit.group, deps)
    return nodes


def _stable_order(nodes: dict[str, Node], units: dict[str, Unit]) -> list[str]:
    """A topological order that, among the nodes ready at each point, takes the one declared
    first (its unit's declaration index, then its step's position)."""
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for group, names in _members(units).items():
        sorter.add(_barrier(group), *(units[n].last for n in names))
    rank: dict[str, tuple[int, int]] = {}
    for node in nodes.values():
        unit = units[node.unit]
        position = unit.steps.index(node.step)
        rank[node.id] = (unit.index, position)
        if position == 0:
            needs = [units[d].last for d in unit.depends]
            sorter.add(node.id, *needs, *(_barrier(g) for g in unit.after))
        else:
            sorter.add(node.id, *node.depends_on)
    sorter.prepare()  # cycles were named before; this cannot raise
    ready: list[tuple[tuple[int, int], str]] = []
    order: list[str] = []
    while sorter.is_active():
        for node_id in sorter.get_ready():
            heapq.heappush(ready, (rank.get(node_id, (-1, 0)), node_id))  # barriers at once
        _, node_id = heapq.heappop(ready)
        if node_id in nodes:
            order.append(node_id)
        sorter.done(node_id)
    return order


def _cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle of `graph` (node → the nodes it depends on) as [a, b, …, a], where each node
    depends on the next; None when there is none."""
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for node, needs in graph.items():
        sorter.add(node, *needs)
    try:
        sorter.prepare()
    except CycleError as exc:
        found: list[str] = list(exc.args[1])
        # graphlib lists each node before the ones depending on it: turn it around
        return list(reversed(found))
    return None


def _rotated(cycle: list[str], first: Sequence[str]) -> list[str]:
    """The cycle [a, b, c, a] starting at its node that comes first in `first`, without the
    group barriers it passes through."""
    ring = [node for node in cycle[:-1] if node in first]
    start = min(range(len(ring)), key=lambda i: first.index(ring[i]))
    ring = ring[start:] + ring[:start]
    return [*ring, ring[0]]


def _check_group_cycles(project: Project) -> None:
    """Groups running after each other in a circle: named by group, with their objects."""
    groups = project.group_names()
    graph = {g: list(project.groups[g].after) if g in project.groups else [] for g in groups}
    cycle = _cycle(graph)
    if cycle is None:
        return
    cycle = _rotated(cycle, groups)
    members = {g: [o.name for o in project.objects_in_order() if o.group == g] for g in cycle[:-1]}
    arrows = ", ".join(f"{a} runs after {b}" for a, b in pairwise(cycle))
    objects = "; ".join(f"group {g}: {', '.join(names)}" for g, names in members.items())
    file, line = project.origin(f"groups.{cycle[0]}") or (None, None)
    raise ProjectError(
        f"dependency cycle between groups: {ARROW.join(cycle)} ({arrows}); their objects: "
        f"{objects}",
        file=file,
        line=line,
        key_path=f"groups.{cycle[0]}.after",
        cycle=cycle,
    )


def _check_unit_cycles(project: Project, units: dict[str, Unit]) -> None:
    graph: dict[str, list[str]] = {
        name: [*unit.depends, *(_barrier(g) for g in unit.after)] for name, unit in units.items()
    }
    graph |= {_barrier(group): names for group, names in _members(units).items()}
    cycle = _cycle(graph)
    if cycle is None:
        return
    cycle = _rotated(cycle, list(units))
    why = []
    for a, b in pairwise(cycle):
        details = dict.fromkeys(up.detail for up in units[a].upstream if up.unit == b)
        why.append(" and ".join(d if d.startswith(f"{a} ") else f"{a}: {d}" for d in details))
    file, line = project.origin(f"objects.{cycle[0]}") or (None, None)
    raise ProjectError(
        f"dependency cycle: {ARROW.join(cycle)} ({'; '.join(why)})",
        file=file,
        line=line,
        key_path=f"objects.{cycle[0]}",
        cycle=cycle,
    )
