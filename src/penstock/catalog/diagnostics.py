"""Turn pydantic validation errors into short messages with file, line and key path.

Pydantic locations carry union tags (`files`, `expression`) and `[key]` markers that users
never wrote; we walk the model's annotations along each location to drop them, to find the
allowed keys for "did you mean" hints, and to list the choices of a Literal.
"""

import difflib
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails

from penstock.catalog.columns import LocatedError
from penstock.catalog.models import SOURCE_KINDS
from penstock.catalog.yaml_lines import KeyPath, format_key_path
from penstock.errors import ProjectError

Locations = Mapping[KeyPath, tuple[str, int]]
Problem = tuple[KeyPath, str]

_TYPE_MESSAGES = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "path_type": "expected a path",
}
_BOUND_MESSAGES = {
    "greater_than_equal": ("ge", "must be at least {}"),
    "greater_than": ("gt", "must be greater than {}"),
    "less_than_equal": ("le", "must be at most {}"),
    "less_than": ("lt", "must be less than {}"),
    "too_short": ("min_length", "needs at least {} item(s)"),
    "too_long": ("max_length", "takes at most {} item(s)"),
    "string_too_short": ("min_length", "must be at least {} character(s) long"),
}


def translate(
    exc: ValidationError, model: type[BaseModel], locations: Locations, default_file: str
) -> list[ProjectError]:
    """One ProjectError per problem in `exc` (a validation of `model`), deduplicated."""
    seen: set[tuple[KeyPath, str]] = set()
    out: list[ProjectError] = []
    for error in exc.errors(include_url=False):
        for path, message in describe(error, model):
            if (path, message) not in seen:
                seen.add((path, message))
                out.append(make_error(message, path, locations, default_file))
    return out


def make_error(
    message: str, path: KeyPath, locations: Locations, default_file: str
) -> ProjectError:
    """A ProjectError at the line of `path` (or of its deepest ancestor with a known line)."""
    file, line = default_file, None
    for end in range(len(path), 0, -1):
        hit = locations.get(path[:end])
        if hit is not None:
            file, line = hit
            break
    return ProjectError(message, file=file, line=line, key_path=format_key_path(path) or None)


def describe(error: ErrorDetails, model: type[BaseModel]) -> list[Problem]:
    """The (key path, message) pairs a pydantic error stands for."""
    loc, kind = error["loc"], error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    path, end_type = walk(model, loc)
    if kind == "missing" and path:
        return [(path[:-1], f"missing required key '{path[-1]}'")]
    if kind == "extra_forbidden" and path:
        _, parent = walk(model, loc[:-1])
        return [(path, "unknown key" + did_you_mean(str(path[-1]), allowed_keys(parent)))]
    if kind in ("value_error", "assertion_error"):
        cause = ctx.get("error")
        if isinstance(cause, LocatedError):
            return [((*path, *sub), message) for sub, message in cause.problems]
        text = str(cause) if cause is not None else error["msg"]
        return [(path, text.removeprefix("Value error, ").removeprefix("Assertion failed, "))]
    if kind == "literal_error":
        choices = literal_choices(end_type) or [
            part.strip(" '")
            for part in str(ctx.get("expected", "")).replace(" or ", ", ").split(",")
        ]
        return [(path, "expected one of: " + ", ".join(choices))]
    if kind == "union_tag_invalid":
        tag = ctx.get("tag")
        if path[:1] == ("sources",):
            return [(path, f"unknown source kind '{tag}' (available: {', '.join(SOURCE_KINDS)})")]
        expected = str(ctx.get("expected_tags", "")).replace("'", "")
        return [(path, f"unknown kind '{tag}' (available: {expected})")]
    if kind == "union_tag_not_found":
        return [
            (path, f"missing required key '{str(ctx.get('discriminator', '')).strip(chr(39))}'")
        ]
    if kind in _TYPE_MESSAGES:
        return [(path, _TYPE_MESSAGES[kind])]
    if kind in _BOUND_MESSAGES:
        key, template = _BOUND_MESSAGES[kind]
        return [(path, template.format(ctx.get(key)))]
    return [(path, error["msg"])]


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def allowed_keys(tp: Any) -> list[str]:
    """The keys a user may write in a mapping validated as `tp` (a model), else []."""
    tp = _unwrap(tp)
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return []
    internal: frozenset[str] = getattr(tp, "internal_fields", frozenset())
    return [field.alias or name for name, field in tp.model_fields.items() if name not in internal]


def literal_choices(tp: Any) -> list[str]:
    tp = _unwrap(tp)
    if get_origin(tp) is Literal:
        return [str(arg) for arg in get_args(tp)]
    return []


def walk(model: type[BaseModel], loc: Sequence[str | int]) -> tuple[KeyPath, Any]:
    """Follow a pydantic location through `model`'s annotations.

    Returns the key path as the user wrote it (union tags and `[key]` markers dropped) and the
    annotation reached at its end (None when the walk lost track).
    """
    tp: Any = model
    path: list[str | int] = []
    tag_taken_for: Any = None
    for elem in loc:
        if elem == "[key]":
            tp = None
            continue
        tp = _unwrap(tp)
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            member = next((m for m in get_args(tp) if elem in _tags(m)), None)
            if member is None:
                path.append(elem)
            tp = member
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = next(
                (f for n, f in tp.model_fields.items() if elem in (n, f.alias)),
                None,
            )
            if field is not None:
                path.append(elem)
                tp = field.annotation
            elif tag_taken_for is not tp and elem in _tags(tp):
                tag_taken_for = tp
            else:
                path.append(elem)
                tp = None
            continue
        path.append(elem)
        if origin is dict:
            tp = get_args(tp)[1]
        elif origin in (list, tuple):
            tp = get_args(tp)[0]
        else:
            tp = None
    return tuple(path), tp


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional from an annotation."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
            continue
        if origin in (Union, types.UnionType):
            members = [arg for arg in get_args(tp) if arg is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp


def _tags(member: Any) -> set[str]:
    """The union tags that select `member` (a pydantic Tag, or its `kind` literal)."""
    tags: set[str] = set()
    if get_origin(member) is Annotated:
        tags.update(meta.tag for meta in get_args(member)[1:] if isinstance(meta, Tag))
    base = _unwrap(member)
    if isinstance(base, type) and issubclass(base, BaseModel) and "kind" in base.model_fields:
        tags.update(str(arg) for arg in get_args(base.model_fields["kind"].annotation))
    return tags
