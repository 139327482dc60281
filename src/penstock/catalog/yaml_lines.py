"""Load YAML into plain Python values while remembering the line of every key and item.

PyYAML's composer gives nodes with positions; we build the values ourselves so that each
mapping key and sequence item keeps its (1-based) line, keyed by its key path. Mapping keys are
always kept as the text the user wrote (`on:` stays the string "on"), and unquoted dates and
timestamps stay strings: the project model decides what they mean.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from penstock.errors import ProjectError, ProjectErrors

KeyPath = tuple[str | int, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


@dataclass(frozen=True)
class YamlDocument:
    """One parsed YAML file: its top-level mapping and the line of every key path."""

    file: str
    data: dict[str, Any]
    lines: dict[KeyPath, int] = field(default_factory=dict)


def format_key_path(path: KeyPath) -> str:
    """Render a key path for people: `objects.orders.checks[0].name`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def line_for(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, or of its deepest ancestor whose line is known."""
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


def load_yaml(path: Path, file: str, *, empty_ok: bool = False) -> YamlDocument:
    """Read and parse `path`; `file` is the name used in error messages. `empty_ok`: a file
    with no document (empty, or only comments) is an empty mapping, not an error."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ProjectError("cannot read: not valid UTF-8 text", file=file) from None
    except OSError as exc:
        raise ProjectError(f"cannot read: {exc.strerror or exc}", file=file) from None
    return parse_yaml(text, file, empty_ok=empty_ok)


def parse_yaml(text: str, file: str, *, empty_ok: bool = False) -> YamlDocument:
    """Parse YAML text whose top level must be a mapping.

    Raises ProjectErrors naming the file and line for invalid YAML, duplicate keys,
    an empty document (unless `empty_ok`: then an empty mapping) or a top level that is not a
    mapping.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            if empty_ok:
                return YamlDocument(file=file, data={}, lines={})
            raise ProjectErrors([ProjectError("the file is empty", file=file)])
        if not isinstance(node, MappingNode):
            what = "a list" if isinstance(node, SequenceNode) else "a single value"
            raise ProjectErrors(
                [
                    ProjectError(
                        f"the top level must be a mapping of keys, not {what}",
                        file=file,
                        line=node.start_mark.line + 1,
                    )
                ]
            )
        builder = _Builder(loader, file)
        data = builder.build(node, ())
        if builder.errors:
            raise ProjectErrors(builder.errors)
    except yaml.MarkedYAMLError as exc:
        raise ProjectErrors([_syntax_error(exc, file)]) from None
    except yaml.YAMLError as exc:
        raise ProjectErrors([ProjectError(f"invalid YAML: {exc}", file=file)]) from None
    finally:
        loader.dispose()
    return YamlDocument(file=file, data=data, lines=builder.lines)


def _syntax_error(exc: yaml.MarkedYAMLError, file: str) -> ProjectError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "cannot parse"
    message = f"invalid YAML: {problem}"
    if exc.context and exc.problem and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    return ProjectError(message, file=file, line=mark.line + 1 if mark is not None else None)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.lines: dict[KeyPath, int] = {}
        self.errors: list[ProjectError] = []
        self._active: set[int] = set()

    def build(self, node: Node, path: KeyPath) -> Any:
        if isinstance(node, ScalarNode):
            if node.tag == _TIMESTAMP_TAG:
                return node.value
            return self.loader.construct_object(node, deep=True)
        if id(node) in self._active:
            self._error("an alias refers to itself", node, path)
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                items = []
                for index, item in enumerate(node.value):
                    self.lines[(*path, index)] = item.start_mark.line + 1
                    items.append(self.build(item, (*path, index)))
                return items
        finally:
            self._active.discard(id(node))
        self._error("unsupported YAML node", node, path)
        return None

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        own: dict[str, Any] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                self._error("a mapping key must be a plain value", key_node, path)
                continue
            key = str(key_node.value)
            if key in own:
                self._error(f"duplicate key '{key}'", key_node, (*path, key))
                continue
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            own[key] = self.build(value_node, (*path, key))
        if not merges:
            return own
        inherited: dict[str, Any] = {}
        for merge_node in merges:
            sources = merge_node.value if isinstance(merge_node, SequenceNode) else [merge_node]
            # Earlier mappings in a merge list win, so apply them last.
            for source in reversed(sources):
                if not isinstance(source, MappingNode):
                    self._error("a merge key (<<) needs a mapping", source, path)
                    continue
                sub = _Builder(self.loader, self.file)
                sub._active = self._active
                values = sub.build(source, path)
                self.errors.extend(sub.errors)
                for key, value in values.items():
                    if key in own:
                        continue
                    inherited[key] = value
                    prefix = (*path, key)
                    for sub_path, line in sub.lines.items():
                        if sub_path[: len(prefix)] == prefix:
                            self.lines[sub_path] = line
        return {**inherited, **own}

    def _error(self, message: str, node: Node, path: KeyPath) -> None:
        self.errors.append(
            ProjectError(
                message,
                file=self.file,
                line=node.start_mark.line + 1,
                key_path=format_key_path(path) or None,
            )
        )
