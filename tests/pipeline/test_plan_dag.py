"""The plan (engine/plan.py): the catalog as a DAG of (object, step) nodes, its stable
topological order, cycles named in order, and the dbt-style selection operators."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from penstock.catalog import load_project
from penstock.engine.plan import Plan, build_plan
from penstock.errors import ProjectError, UsageError

from helpers import write_project


def project_with(tmp_path: Path, objects: dict[str, str], groups: str = "") -> Path:
    """A project whose objects are `name: extra keys` (flow style), each reading its own glob."""
    lines = [
        "name: dag",
        "sources:",
        "  landing: {kind: files, path: ./landing, settle: 0s}",
    ]
    if groups:
        lines += ["groups:", textwrap.indent(textwrap.dedent(groups).strip(), "  ")]
    lines.append("objects:")
    for name, extra in objects.items():
        keys = f'source: landing, files: "{name}/*.csv", columns: {{id: {{type: bigint}}}}'
        lines.append(f"  {name}: {{{keys}{', ' + extra if extra else ''}}}")
    return write_project(tmp_path, "\n".join(lines) + "\n")


def plan_of(tmp_path: Path, objects: dict[str, str], groups: str = "") -> Plan:
    return build_plan(load_project(project_with(tmp_path, objects, groups)))


def cycle_error(tmp_path: Path, objects: dict[str, str], groups: str = "") -> ProjectError:
    with pytest.raises(ProjectError) as caught:
        plan_of(tmp_path, objects, groups)
    assert caught.value.exit_code == 2
    return caught.value


def test_no_dependencies_keeps_declaration_order_extract_then_load(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, {"b": "", "a": "", "c": ""})
    assert list(plan.nodes) == [
        "b.extract",
        "b.load",
        "a.extract",
        "a.load",
        "c.extract",
        "c.load",
    ]
    assert plan.order() == ["b", "a", "c"]
    load = plan.nodes["a.load"]
    assert (load.unit, load.step) == ("a", "load")
    assert load.depends_on == ["a.extract"]
    assert [d.why for d in load.dependencies] == ["same_object"]
    assert plan.nodes["a.extract"].depends_on == []
    assert plan.nodes["a.extract"].reason == "nothing upstream"


def test_depends_on_moves_the_dependency_first_and_nothing_else(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, {"a": "", "orders": "depends_on: customers", "customers": "", "z": ""})
    # customers comes forward just enough; independent objects keep their places
    assert plan.order() == ["a", "customers", "orders", "z"]
    extract = plan.nodes["orders.extract"]
    assert extract.depends_on == ["customers.load"]
    assert [(d.why, d.detail) for d in extract.dependencies] == [
        ("depends_on", "orders depends_on customers")
    ]
    nodes = list(plan.nodes)
    for node in plan.nodes.values():  # every node after everything it depends on
        assert all(nodes.index(dep) < nodes.index(node.id) for dep in node.depends_on)


def test_group_after_orders_whole_groups_transitively(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        {
            "report": "group: marts",
            "orders": "group: staging",
            "events": "group: raw",
            "customers": "group: raw",
            "loose": "",
        },
        groups="""
        marts: {after: [staging]}
        staging: {after: raw}
        """,
    )
    assert plan.order() == ["events", "customers", "orders", "report", "loose"]
    extract = plan.nodes["orders.extract"]
    assert extract.depends_on == ["events.load", "customers.load"]
    assert {d.why for d in extract.dependencies} == {"group_after"}
    assert extract.reason == "group staging runs after raw"
    assert plan.nodes["report.extract"].depends_on == ["orders.load"]
    # transitive through groups: marts waits for raw through staging
    assert plan.upstream("report") == {"orders", "events", "customers"}
    assert plan.downstream("events") == {"orders", "report"}
    assert plan.upstream("loose") == frozenset() == plan.downstream("loose")


def test_depends_on_and_group_after_together(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        {
            "orders": "group: staging, depends_on: [customers, events]",
            "customers": "",
            "events": "group: raw",
        },
        groups="staging: {after: [raw]}",
    )
    extract = plan.nodes["orders.extract"]
    # events is upstream twice (declared and by group): one dependency id, both reasons
    assert extract.depends_on == ["customers.load", "events.load"]
    assert (
        extract.reason
        == "orders depends_on customers; orders depends_on events; group staging runs after raw"
    )
    assert plan.order() == ["customers", "events", "orders"]


def test_object_cycle_is_named_in_order(tmp_path: Path) -> None:
    error = cycle_error(
        tmp_path,
        {"x": "", "orders": "depends_on: customers", "customers": "depends_on: orders"},
    )
    assert "dependency cycle: orders → customers → orders" in error.message
    assert "orders depends_on customers; customers depends_on orders" in error.message
    assert error.fields["cycle"] == ["orders", "customers", "orders"]
    assert error.message.startswith("penstock.yml:")  # where the first object is written


def test_longer_cycle_starts_at_the_first_declared_object(tmp_path: Path) -> None:
    error = cycle_error(
        tmp_path,
        {"c": "depends_on: a", "a": "depends_on: b", "b": "depends_on: c", "free": ""},
    )
    assert error.fields["cycle"] == ["c", "a", "b", "c"]
    assert "dependency cycle: c → a → b → c (c depends_on a; a depends_on b; b depends_on c)" in (
        error.message
    )


def test_group_cycle_names_the_groups_and_their_objects(tmp_path: Path) -> None:
    error = cycle_error(
        tmp_path,
        {"orders": "group: raw", "items": "group: raw", "customers": "group: staging"},
        groups="""
        raw: {after: [staging]}
        staging: {after: [raw]}
        """,
    )
    assert error.fields["cycle"] == ["raw", "staging", "raw"]
    assert (
        "dependency cycle between groups: raw → staging → raw "
        "(raw runs after staging, staging runs after raw); "
        "their objects: group raw: orders, items; group staging: customers"
    ) in error.message
    assert error.message.startswith("penstock.yml:5: groups.raw.after: ")


def test_mixed_cycle_through_a_group_and_a_depends_on(tmp_path: Path) -> None:
    error = cycle_error(
        tmp_path,
        {"orders": "group: raw, depends_on: customers", "customers": "group: staging"},
        groups="staging: {after: [raw]}",
    )
    assert error.fields["cycle"] == ["orders", "customers", "orders"]
    assert (
        "dependency cycle: orders → customers → orders "
        "(orders depends_on customers; customers: group staging runs after raw)"
    ) in error.message


def test_selection_operators(tmp_path: Path) -> None:
    plan = plan_of(
        tmp_path,
        {
            "customers": "",
            "orders": "depends_on: customers",
            "items": "depends_on: orders",
            "report": "group: marts",
            "other": "",
        },
        groups="marts: {after: [default]}",
    )
    # default holds customers, orders, items, other; marts runs after them all
    assert plan.select(None) == plan.select("") == plan.order()
    assert plan.select("orders") == ["orders"]
    assert plan.select("+orders") == ["customers", "orders"]
    assert plan.select("orders+") == ["orders", "items", "report"]
    assert plan.select("+orders+") == ["customers", "orders", "items", "report"]
    assert plan.select("+report") == plan.order()
    assert plan.select("group:marts") == ["report"]
    assert plan.select("other+,customers") == ["customers", "other", "report"]
    assert plan.select(" items , +items ") == ["customers", "orders", "items"]
    assert plan.select("+group:marts") == plan.order()


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("nope", "unknown object 'nope' (available objects: customers, orders"),
        ("+nope", "unknown object 'nope'"),
        ("nope+", "unknown object 'nope'"),
        ("group:nope+", "unknown group 'nope' (available groups: default)"),
        ("+", "cannot read selector '+'"),
        ("orders++", "cannot read selector 'orders++'"),
        ("a+b", "cannot read selector 'a+b'"),
    ],
)
def test_selection_errors(tmp_path: Path, selector: str, message: str) -> None:
    plan = plan_of(tmp_path, {"customers": "", "orders": "depends_on: customers"})
    with pytest.raises(UsageError) as caught:
        plan.select(selector)
    assert message in caught.value.message
    assert caught.value.exit_code == 2


def test_project_select_points_graph_operators_to_the_plan(tmp_path: Path) -> None:
    project = load_project(
        project_with(tmp_path, {"customers": "", "orders": "depends_on: customers"})
    )
    assert [o.name for o in project.select("orders,customers")] == ["customers", "orders"]
    with pytest.raises(UsageError, match=r"graph operators .* the plan"):
        project.select("+orders")


def test_a_reference_to_another_object_puts_it_upstream(tmp_path: Path) -> None:
    """`references: customers.id` reads customers' table: customers loads first, as if
    declared in depends_on; a reference to the object itself adds no edge."""
    root = write_project(
        tmp_path,
        """
        name: refs
        sources:
          landing: {kind: files, path: ./landing, settle: 0s}
        objects:
          orders:
            source: landing
            files: "orders/*.csv"
            columns:
              id: {type: bigint}
              customer_id: {type: bigint, references: customers.id}
              parent_id: {type: bigint, references: orders.id}
          customers:
            source: landing
            files: "customers/*.csv"
            columns:
              id: {type: bigint}
        """,
    )
    plan = build_plan(load_project(root))
    assert plan.order() == ["customers", "orders"]
    extract = plan.nodes["orders.extract"]
    assert extract.depends_on == ["customers.load"]
    assert [d.why for d in extract.dependencies] == ["references"]
