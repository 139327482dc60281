"""The sinks a session attaches to its bus, besides the metadata store: one registry.

`SINK_FACTORIES` names each factory as `module:function`; the session imports and calls them
in order, after subscribing the metadata store, with keyword arguments only:

    def attach(bus: EventBus, *, project: Project, store: MetadataStore, **context: Any) -> None:
        if project.alerts:                       # configured? subscribe, queued
            bus.subscribe(AlertSink(project.alerts), name="alerts", queued=True)

A factory decides from the project whether it has anything to do, subscribes its sink
(queued, so it never slows or fails a load: observe/bus.py) and keeps its own state;
`**context` keeps room for what sessions pass later. A new sink (metrics, lineage, alerts)
is a module and one line here: neither the runner nor the session changes. A factory that
raises a `ProjectError` (a bad setting) stops the command before the run starts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from penstock.catalog import Project
    from penstock.observe.bus import EventBus
    from penstock.observe.store import MetadataStore

SINK_FACTORIES: tuple[str, ...] = (
    "penstock.observe.metrics:attach",
    "penstock.observe.lineage:attach",
    "penstock.observe.hooks:attach_hooks",
    "penstock.observe.alerts:attach_alerts",
    "penstock.observe.dq:attach",
)


def import_sinks() -> None:
    """Import every sink module: each registers its tables' retention when imported
    (`penstock gc` collects them without attaching any sink)."""
    for ref in SINK_FACTORIES:
        importlib.import_module(ref.partition(":")[0])


# A factory that attaches nothing unless the project's setting of that name is non-empty:
# its module is not imported without it (the alerts module's import took ~7 ms of every run).
ONLY_WITH: dict[str, str] = {"penstock.observe.alerts:attach_alerts": "alerts"}


def attach_sinks(bus: EventBus, *, project: Project, store: MetadataStore, **context: Any) -> None:
    """Call every factory of `SINK_FACTORIES` on `bus` (those of `ONLY_WITH` only when the
    project has their setting)."""
    for ref in SINK_FACTORIES:
        setting = ONLY_WITH.get(ref)
        if setting is not None and not getattr(project, setting):
            continue
        module, _, name = ref.partition(":")
        factory = getattr(importlib.import_module(module), name)
        factory(bus, project=project, store=store, **context)
