"""`penstock alerts`: the project's alert rules, the state of their keys and what was sent;
`penstock alerts test NAME` sends a sample message to every destination of a rule."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from penstock.cli.render import console, err_console, print_json, table
from penstock.cli.shared import JsonOpt, ProjectOpt, app, example, load, when
from penstock.errors import UsageError

ALERTS_USAGE = "penstock alerts | penstock alerts test NAME"


@app.command(
    epilog=example("penstock alerts", "penstock alerts test ops", "penstock alerts --json")
)
def alerts(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[test NAME]",
            help="test NAME: send a sample message to every destination of rule NAME.",
        ),
    ] = None,
    project: ProjectOpt = Path(),
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", help="History lines shown.", min=0)
    ] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The alert rules, which keys are firing, and the latest alerts sent or held back.

    A key is an event kind and what it is about (`check_failed:orders`,
    `sla_missed:orders:freshness`, `source_down:landing`). Destinations are named by rule
    and position (`ops[0] (json)`), never by their URL."""
    from penstock.observe.alert_state import AlertLedger
    from penstock.observe.store import MetadataStore

    words = words or []
    proj = load(project)
    if words and (words[0] != "test" or len(words) != 2):
        raise UsageError(f"usage: {ALERTS_USAGE}")
    if words:
        _test(proj, words[1], as_json)
        return
    rules = [
        {
            "name": r.name,
            "on": list(r.on),
            "objects": r.objects,
            "severity": r.severity,
            "throttle": r.throttle,
            "recovery": r.recovery,
            "destinations": [r.destination_label(i) for i in range(len(r.to))],
        }
        for r in proj.alerts
    ]
    with MetadataStore(proj.metadata_url) as store:
        ledger = AlertLedger(store, proj.name)
        states = [vars(s) for s in ledger.states()]
        history = ledger.history(limit)
    if as_json:
        print_json({"project": proj.name, "rules": rules, "state": states, "history": history})
        return
    if not proj.alerts:
        console.print("no alert rules: add `alerts:` to penstock.yml (README: Push alerts)")
    else:
        console.print(
            table(
                "Alert rules",
                ["rule", "on", "objects", "severity", "throttle", "destinations"],
                [
                    (
                        r.name,
                        ", ".join(r.on),
                        ", ".join(r.objects or ["(every object)"]),
                        r.severity,
                        r.throttle,
                        ", ".join(r.destination_label(i) for i in range(len(r.to))),
                    )
                    for r in proj.alerts
                ],
                text_columns=["on", "objects", "severity", "throttle", "destinations"],
            )
        )
    if states:
        console.print(
            table(
                "Keys",
                ["rule", "key", "state", "since", "last alert", "held back", "latest"],
                [
                    (
                        s["rule"],
                        s["key"],
                        "FIRING" if s["firing"] else "ok",
                        when(s["since"]),
                        when(s["last_alert_at"]),
                        s["held_back"],
                        escape(s["summary"] or ""),
                    )
                    for s in states
                ],
                text_columns=["key", "state", "latest"],
            )
        )
    if history:
        console.print(
            table(
                "Latest alerts",
                ["at", "rule", "key", "action", "delivered", "failed", "title"],
                [
                    (
                        when(h["at"]),
                        h["rule"],
                        h["key"],
                        h["action"],
                        h["delivered"],
                        h["failed"],
                        escape(h["title"] or ""),
                    )
                    for h in history
                ],
                text_columns=["rule", "key", "action", "title"],
            )
        )


def _test(proj: Any, name: str, as_json: bool) -> None:
    from penstock.observe.alerts import send_test
    from penstock.observe.store import MetadataStore

    with MetadataStore(proj.metadata_url) as store:
        notice = send_test(proj, name, store=store)
    if as_json:
        print_json(
            {
                "rule": notice.rule,
                "title": notice.title,
                "delivered": list(notice.delivered),
                "failed": [{"destination": d, "error": e} for d, e in notice.failed],
            }
        )
    else:
        for label in notice.delivered:
            console.print(f"[green]delivered[/] {escape(label)}", highlight=False)
        for label, reason in notice.failed:
            err_console.print(
                f"[red]failed[/]    {escape(label)}: {escape(reason)}", highlight=False
            )
    if notice.failed:
        raise typer.Exit(1)
