"""`alerts:` rules, an object's `sla:` and a column's `show_in_alerts`, as penstock.yml says
them: parsed into values, and mistakes named at their file and line (a destination never
echoed: it may hold a token)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import WriteFiles
from penstock.catalog import load_project

HEAD = """
name: shop
sources:
  landing: {kind: files, path: ./landing}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    columns:
      id: {type: bigint}
      status: {type: text, show_in_alerts: true}
"""


def test_rules_and_slos_are_read_as_written(write_files: WriteFiles) -> None:
    root = write_files(
        {
            "penstock.yml": HEAD
            + """
    sla: {freshness: 90m, success_rate: 99.5%}
alerts:
  - name: ops
    on: [run_failed, check_failed]
    objects: orders
    to: "json://127.0.0.1:8080/hook"
    throttle: 2h
  - {name: all, on: sla_missed, severity: critical, to: ["mailto://a@example.com"],
     recovery: false, throttle: 0}
"""
        }
    )
    project = load_project(root)
    ops, everything = project.alerts
    assert (ops.on, ops.objects, ops.to, ops.throttle_seconds, ops.severity) == (
        ["run_failed", "check_failed"],
        ["orders"],
        ["json://127.0.0.1:8080/hook"],
        7200.0,
        "error",
    )
    assert ops.wants("check_failed", "orders") and not ops.wants("check_failed", "returns")
    assert not ops.wants("sla_missed", "orders") and not ops.wants("run_failed", None)
    assert (everything.severity, everything.recovery, everything.throttle_seconds) == (
        "critical",
        False,
        0.0,
    )
    assert everything.wants("sla_missed", None) and everything.destination_label(0) == (
        "all[0] (mailto)"
    )
    sla = project.objects["orders"].sla
    assert sla is not None
    assert (sla.freshness_seconds, sla.success_ratio, sla.window_seconds) == (
        5400.0,
        0.995,
        604800.0,
    )
    columns = project.objects["orders"].columns
    assert (columns["status"].show_in_alerts, columns["id"].show_in_alerts) == (True, False)


def test_mistakes_name_their_line_and_never_echo_a_destination(
    write_files: WriteFiles, load_errors: Callable[[Path], list[str]]
) -> None:
    root = write_files(
        {
            "penstock.yml": HEAD
            + """
    sla: {freshness: 2, success_rate: 120%}
alerts:
  - {name: ops, on: [run_failed, disk_full], to: ["json://h/x"]}
  - {name: ops3, on: [run_failed], to: ["hooks.example.com/tok3n"], throttle: soon}
"""
        }
    )
    assert load_errors(root) == [
        "penstock.yml:12: objects.orders.sla.freshness: give the unit: '2m', '2h' or '2d'",
        "penstock.yml:12: objects.orders.sla.success_rate: must be more than 0% and at most "
        "100%, got '120%'",
        "penstock.yml:14: alerts[0].on[1]: expected one of: run_failed, check_failed, anomaly, "
        "schema_drift, sla_missed, source_down",
        "penstock.yml:15: alerts[1].to: each destination is an apprise URL such as "
        "json://host/path, mailto://user:pass@host, slack://… or msteams://…",
        "penstock.yml:15: alerts[1].throttle: expected a duration such as 30m, 2h, 1d or 2w, "
        "got 'soon'",
    ]


def test_rules_name_objects_the_project_has_and_names_of_their_own(
    write_files: WriteFiles, load_errors: Callable[[Path], list[str]]
) -> None:
    root = write_files(
        {
            "penstock.yml": HEAD
            + """
alerts:
  - {name: ops, on: [run_failed], objects: [orders, refunds], to: ["json://h/x"]}
  - {name: ops, on: [check_failed], to: ["json://h/y"]}
"""
        }
    )
    assert load_errors(root) == [
        "penstock.yml:13: alerts[0].objects[1]: unknown object 'refunds' (objects: orders)",
        "penstock.yml:14: alerts[1].name: duplicate alert name 'ops'",
    ]
