"""One model file: `models/<name>.sql`, a SELECT with an optional YAML header in its leading
comment, either `--` lines or one `/* ... */` block:

    -- materialized: incremental
    -- key: [country]
    -- checks:
    --   - {name: positive_revenue, expression: "revenue >= 0"}
    SELECT country, sum(amount) AS revenue FROM orders GROUP BY country

A leading comment that is not a YAML mapping is an ordinary comment. The header's keys:
`materialized` (table, the default; view; incremental), `key` (the columns an incremental
model upserts on), `checks` (the objects' expression and row_count checks), `dialect` (what
the SQL is written in, duckdb by default; sqlglot transpiles it for the warehouse),
`new_batches_of` (the object whose new batches an incremental model reads; by default the
first object its FROM reads) and `description`.

The comment stays in the SQL, so a line of the file is a line of the query: sqlglot's and the
warehouse's errors name the file's own lines.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from penstock.catalog.columns import IDENTIFIER, IDENTIFIER_RULE, ExpressionCheck, RowCountCheck
from penstock.catalog.diagnostics import did_you_mean
from penstock.errors import ProjectError

Materialized = Literal["table", "view", "incremental"]
DIALECTS = ("duckdb", "postgres", "bigquery", "snowflake", "mysql", "spark", "trino", "tsql")
ModelCheck = Annotated[ExpressionCheck | RowCountCheck, Field(union_mode="left_to_right")]


class ModelHeader(BaseModel):
    """A model's settings, from its leading comment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    materialized: Materialized = "table"
    key: list[str] = Field(default_factory=list)
    checks: list[ModelCheck] = Field(default_factory=list)
    dialect: str = "duckdb"
    new_batches_of: str | None = None
    description: str | None = None


HEADER_KEYS = tuple(ModelHeader.model_fields)


@dataclass(frozen=True)
class ModelFile:
    """A model file as read: its name (the file's stem), path relative to the project, SQL
    text (the whole file) and header (with the line each key is on)."""

    name: str
    file: str
    sql: str
    header: ModelHeader
    header_lines: dict[str, int]  # header key -> its line in the file
    body_line: int = 1  # the first line after the leading comment

    def line_of(self, key: str) -> int | None:
        return self.header_lines.get(key)


def read_model_file(path: Path, root: Path) -> ModelFile:
    """Read `path`; a ProjectError names the file and line of what is wrong in it."""
    file = _relative(path, root)
    name = path.stem
    if not IDENTIFIER.match(name):
        raise ProjectError(f"model name '{name}' (the file's name) {IDENTIFIER_RULE}", file=file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"cannot read: {exc}", file=file) from None
    comment, first_line, body_line = _leading_comment(text)
    header, lines = _header(comment, first_line, file)
    if header.dialect not in DIALECTS:
        raise ProjectError(
            f"dialect '{header.dialect}' is not known (dialects: {', '.join(DIALECTS)})",
            file=file,
            line=lines.get("dialect"),
            key_path="dialect",
        )
    if header.materialized != "incremental":
        for key in ("new_batches_of",):
            if getattr(header, key) is not None:
                raise ProjectError(
                    f"{key} is for incremental models (materialized: incremental)",
                    file=file,
                    line=lines.get(key),
                    key_path=key,
                )
    return ModelFile(
        name=name, file=file, sql=text, header=header, header_lines=lines, body_line=body_line
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


_DASHES = re.compile(r"^\s*--")


def _leading_comment(text: str) -> tuple[list[str], int, int]:
    """The text of the file's leading comment, line by line, the line it starts on and the
    first line after it."""
    lines = text.splitlines()
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start == len(lines):
        return [], 1, 1
    if lines[start].lstrip().startswith("/*"):
        body: list[str] = []
        for i in range(start, len(lines)):
            line = lines[i]
            if i == start:
                line = line.lstrip()[2:]
            end = line.find("*/")
            if end >= 0:
                body.append(line[:end])
                return textwrap.dedent("\n".join(body)).splitlines(), start + 1, i + 2
            body.append(line)
        return [], 1, 1  # an unclosed comment: the SQL parser will say so
    body = []
    end = start
    for end in range(start, len(lines) + 1):
        if end == len(lines) or not _DASHES.match(lines[end]):
            break
        rest = lines[end].lstrip()[2:]
        body.append(rest[1:] if rest.startswith(" ") else rest)
    return body, start + 1, end + 1


def _header(comment: list[str], first_line: int, file: str) -> tuple[ModelHeader, dict[str, int]]:
    text = "\n".join(comment)
    keyed = [
        (i, m.group(1))
        for i, line in enumerate(comment)
        if (m := re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:", line))
    ]
    lines = {key: first_line + i for i, key in keyed}
    # a mapping with a header key, or a near miss of one (`materialised`), is a header
    looks_like_header = any(
        key in HEADER_KEYS or did_you_mean(key, HEADER_KEYS) for _, key in keyed
    )
    try:
        data = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as exc:
        if not looks_like_header:
            return ModelHeader(), {}
        mark = getattr(exc, "problem_mark", None)
        line = first_line + mark.line if mark is not None else first_line
        raise ProjectError(f"the header is not valid YAML: {exc}", file=file, line=line) from None
    if not isinstance(data, dict) or not looks_like_header:
        return ModelHeader(), {}
    for key in data:
        if key not in HEADER_KEYS:
            raise ProjectError(
                f"unknown key '{key}'{did_you_mean(str(key), HEADER_KEYS)} "
                f"(a model's header takes: {', '.join(HEADER_KEYS)})",
                file=file,
                line=lines.get(str(key), first_line),
                key_path=str(key),
            )
    try:
        header = ModelHeader.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        key = str(problem["loc"][0]) if problem["loc"] else None
        where = ".".join(str(p) for p in problem["loc"])
        raise ProjectError(
            problem["msg"],
            file=file,
            line=lines.get(key or "", first_line),
            key_path=where or None,
        ) from None
    return header, lines
