"""Plugin hooks: the project's own code, called on a run's events with keyword arguments.

```yaml
# penstock.yml
hooks:
  - audit_hook.py:AuditTrail                 # a file of the project, or an importable module:attr
  - use: audit_hook.py:AuditTrail
    options: {path: audit.jsonl}             # keyword arguments for the class
    events: [batch_loaded, run_finished]     # only these kinds (default: every kind it handles)
```

```python
# audit_hook.py
from typing import Any

class AuditTrail:
    def __init__(self, *, path: str = "audit.jsonl") -> None: ...
    def on_batch_loaded(self, *, object: str, rows_loaded: int, **more: Any) -> None: ...
    def on_run_finished(self, *, run_id: str, outcome: str, duration_s: float, **more: Any): ...
    def flush(self) -> None: ...             # optional: a run ended
    def close(self) -> None: ...             # optional: the session ends
```

A hook is a class (built once per session with `options` as keyword arguments, passed as
written: a relative path in them is relative to where penstock runs, not to the project) or
any object (a module, an instance). Its methods `on_<kind>` (`on_run_started`, `on_step_finished`,
`on_batch_loaded`, `on_checks_evaluated`, `on_schema_drift`, `on_source_checked`, `on_log`, …:
one per `penstock.observe.EVENT_KINDS`) are called with the event's fields as keyword
arguments, plus `event`, the typed event itself. Every such method must take keyword-only
arguments and `**kwargs`: fields are added to events over time, and a hook written today must
keep working. Both rules, and a method named for no event kind, are checked when the run
starts (a project error, exit 2), not when the first event arrives.

Hooks are queued sinks (observe/bus.py): each has its own thread, so a slow hook never slows
a load, and an exception in one is reported on stderr and the event dropped (no retry: a hook
that failed once on an event will fail again); the run goes on.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from penstock.errors import ProjectError, first_line
from penstock.observe.bus import DeliveryPolicy, EventBus
from penstock.observe.events import EVENT_KINDS, Event, event_fields

if TYPE_CHECKING:
    from penstock.catalog import Project
    from penstock.catalog.observability import HookSpec

HOOK_POLICY = DeliveryPolicy(retry_delays=(), cooldown_s=0.0)
_PREFIX = "on_"


class HookSink:
    """One loaded hook as a bus sink: `handle` calls its `on_<kind>` method, if it has one."""

    def __init__(self, name: str, target: Any, methods: dict[str, Callable[..., Any]]) -> None:
        self.name = name
        self.target = target
        self.methods = methods

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.methods)

    def handle(self, event: Event) -> None:
        method = self.methods.get(event.kind)
        if method is not None:
            method(**event_fields(event), event=event)

    def flush(self) -> None:
        _call_optional(self.target, "flush")

    def close(self) -> None:
        _call_optional(self.target, "close")


def _call_optional(target: Any, name: str) -> None:
    method = getattr(target, name, None)
    if callable(method) and not isinstance(target, type):
        method()


def load_hook(
    spec: HookSpec, root: Path, *, where: str = "hooks", at: tuple[str, int] | None = None
) -> HookSink:
    """Import and build the hook `spec` names (relative files from `root`); check its methods.
    Problems are project errors at `where` (a key path), written at `at` (file, line)."""
    try:
        return _load(spec, root, where)
    except ProjectError as exc:
        if at is None:
            raise
        raise ProjectError(
            exc.detail, file=at[0], line=at[1], key_path=exc.fields["key_path"]
        ) from None


def _load(spec: HookSpec, root: Path, where: str) -> HookSink:
    module_part, _, attr = spec.use.partition(":")
    module = _import(module_part, root, where)
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ProjectError(
                f"hook '{spec.use}': {module_part} has no attribute '{attr}'", key_path=where
            ) from None
    if isinstance(target, type):
        try:
            target = target(**spec.options)
        except Exception as exc:
            raise ProjectError(
                f"hook '{spec.use}': cannot build it with options {sorted(spec.options)}: "
                f"{type(exc).__name__}: {first_line(exc)}",
                key_path=where,
            ) from None
    elif spec.options:
        raise ProjectError(
            f"hook '{spec.use}' is not a class: it takes no options", key_path=f"{where}.options"
        )
    methods = _hook_methods(spec.use, target, where)
    if spec.events is not None:
        unknown = [k for k in spec.events if k not in EVENT_KINDS]
        if unknown:
            raise ProjectError(
                f"hook '{spec.use}': unknown event kind(s) {', '.join(unknown)} "
                f"(kinds: {', '.join(EVENT_KINDS)})",
                key_path=f"{where}.events",
            )
        methods = {k: m for k, m in methods.items() if k in spec.events}
    return HookSink(spec.label, target, methods)


def _import(module_part: str, root: Path, where: str) -> Any:
    try:
        if module_part.endswith(".py"):
            path = (root / module_part).resolve()
            if not path.is_file():
                raise ProjectError(f"hook file {module_part} does not exist", key_path=where)
            name = f"penstock_hook_{abs(hash(str(path))):x}"
            loaded = sys.modules.get(name)
            if loaded is not None:
                return loaded
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ProjectError(f"hook file {module_part} cannot be imported", key_path=where)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
            return module
        sys.path.insert(0, str(root))
        try:
            return importlib.import_module(module_part)
        finally:
            sys.path.remove(str(root))
    except ProjectError:
        raise
    except Exception as exc:
        raise ProjectError(
            f"hook module {module_part} cannot be imported: {type(exc).__name__}: "
            f"{first_line(exc)}",
            key_path=where,
        ) from None


def _hook_methods(use: str, target: Any, where: str) -> dict[str, Callable[..., Any]]:
    methods: dict[str, Callable[..., Any]] = {}
    for attr in dir(target):
        if not attr.startswith(_PREFIX) or attr.startswith("__"):
            continue
        method = getattr(target, attr)
        if not callable(method):
            continue
        kind = attr.removeprefix(_PREFIX)
        if kind not in EVENT_KINDS:
            raise ProjectError(
                f"hook '{use}': {attr} is not a hook method (hook methods: "
                f"{', '.join(_PREFIX + k for k in EVENT_KINDS)})",
                key_path=where,
            )
        problem = _signature_problem(method)
        if problem:
            raise ProjectError(f"hook '{use}': {attr} {problem}", key_path=where)
        methods[kind] = method
    if not methods:
        names = ", ".join(_PREFIX + k for k in EVENT_KINDS)
        raise ProjectError(f"hook '{use}' has none of the hook methods ({names})", key_path=where)
    return methods


def _signature_problem(method: Callable[..., Any]) -> str | None:
    try:
        signature = inspect.signature(method)
    except (TypeError, ValueError):
        return "has no signature penstock can read"
    kinds = [p.kind for p in signature.parameters.values()]
    positional = [
        name
        for name, p in signature.parameters.items()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        and p.default is p.empty
    ]
    if positional:
        return (
            f"must take keyword-only arguments (put `*,` before {', '.join(positional)}); "
            f"events are passed as keywords"
        )
    if inspect.Parameter.VAR_KEYWORD not in kinds:
        return "must take **kwargs as well: new event fields are added over time"
    return None


def attach_hooks(bus: EventBus, *, project: Project, **_context: Any) -> None:
    """Load the project's `hooks:` (all of them first: one that fails stops the run before
    it starts) and subscribe each as a queued sink."""
    loaded = []
    for i, spec in enumerate(project.hooks):
        where = f"hooks[{i}]"
        loaded.append(load_hook(spec, project.root, where=where, at=project.origin(where)))
    for sink in loaded:
        kinds = tuple(EVENT_KINDS[k] for k in sink.kinds)
        bus.subscribe(sink, name=f"hook {sink.name}", queued=True, events=kinds, policy=HOOK_POLICY)
