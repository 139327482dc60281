"""Resolve `${env:NAME}` and `${file:PATH}` references inside string values.

A reference may sit anywhere in a string (`postgresql://u:${env:PW}@h/db`); `$${` writes a
literal `${`. Every resolved value is registered as a secret so that it is redacted from logs
and errors.
"""

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from penstock.catalog.yaml_lines import KeyPath, format_key_path, line_for
from penstock.errors import ProjectError
from penstock.secrets import SAFE_SECRET_LEN, register_secret

_TOKEN = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)(?P<close>\}?)")
KINDS = ("env", "file")


class ReferenceProblem(ValueError):
    """A reference that cannot be resolved; the message says why."""


def resolve_references(
    data: Any,
    *,
    file: str,
    lines: Mapping[KeyPath, int],
    root: Path,
    environ: Mapping[str, str] | None = None,
    weak: list[str] | None = None,
) -> tuple[Any, list[ProjectError]]:
    """Return `data` with every reference resolved, and the errors met on the way.

    A string that cannot be resolved is kept as written and an error names its file,
    line and key path. A reference whose value is too short to redact safely is noted in
    `weak` (by reference and place, never by value).
    """
    env = os.environ if environ is None else environ
    errors: list[ProjectError] = []

    def walk(value: Any, path: KeyPath) -> Any:
        if isinstance(value, dict):
            return {key: walk(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, (*path, index)) for index, item in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            short: list[str] = []
            try:
                resolved = resolve_string(value, root=root, environ=env, short=short)
            except ReferenceProblem as exc:
                errors.append(
                    ProjectError(
                        str(exc),
                        file=file,
                        line=line_for(lines, path),
                        key_path=format_key_path(path) or None,
                    )
                )
                return value
            if weak is not None:
                where = f"{file}:{line_for(lines, path)} {format_key_path(path)}"
                weak.extend(f"{where}: {reference}" for reference in short)
            return resolved
        return value

    return walk(data, ()), errors


def resolve_string(
    text: str, *, root: Path, environ: Mapping[str, str], short: list[str] | None = None
) -> str:
    """Resolve the references in one string (raises on the first one that fails).

    References whose value is shorter than SAFE_SECRET_LEN are appended to `short` as written.
    """
    out: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        out.append(text[position : match.start()])
        position = match.end()
        if match.group(0) == "$${":
            out.append("${")
            continue
        body = match.group("body")
        if not match.group("close"):
            raise ReferenceProblem(f"unterminated reference '${{{body}' (missing '}}')")
        kind, colon, name = body.partition(":")
        kind, name = kind.strip(), name.strip()
        if not colon or not name:
            raise ReferenceProblem(
                f"invalid reference '${{{body}}}' (expected ${{env:NAME}} or ${{file:PATH}})"
            )
        if kind == "env":
            value = environ.get(name)
            if value is None:
                raise ReferenceProblem(f"environment variable {name} is not set")
        elif kind == "file":
            value = _read_file(name, root)
        else:
            raise ReferenceProblem(
                f"unknown reference kind '{kind}' in '${{{body}}}' (expected one of: env, file)"
            )
        register_secret(value)
        if short is not None and len(value) < SAFE_SECRET_LEN:
            short.append(match.group(0))
        out.append(value)
    out.append(text[position:])
    return "".join(out)


def _read_file(name: str, root: Path) -> str:
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = root / path
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ReferenceProblem(f"cannot read file '{name}': not valid UTF-8 text") from None
    except OSError as exc:
        raise ReferenceProblem(f"cannot read file '{name}': {exc.strerror or exc}") from None
    if content.endswith("\r\n"):
        return content[:-2]
    if content.endswith("\n"):
        return content[:-1]
    return content
