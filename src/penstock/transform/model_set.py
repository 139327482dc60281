"""The project's models: every `models/*.sql` with what it reads, in dependency order.

What a model reads is every table its query names that is not one of its CTEs, parsed with
sqlglot in the model's dialect: an object (by its name or its `target:` table) or another
model (by its name). Anything else is a ProjectError naming the model's file and the line of
the reference; so is SQL sqlglot cannot parse, a model that reads itself, and models that read
each other in a circle (`dependency cycle: a → b → a (a reads b; b reads a)`).

Models come in dependency order (among models free to go, the file first in name order), so
each model's output columns are known before a model reading it is analysed
(`column_lineage`). The set is read once per project and set of files (`load_models` caches
it by the files' sizes and modification times).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from penstock.catalog import ObjectSpec, Project
from penstock.errors import ProjectError
from penstock.transform.column_lineage import Analysis, analyse
from penstock.transform.files import model_files
from penstock.transform.model_file import ModelFile, read_model_file

DEFAULT_SCHEMAS = ("main", "public")  # a read qualified with the default schema is the same
SYSTEM_TYPES = {"_batch_id": "text", "_loaded_at": "timestamp"}
SCD2_TYPES = {
    "_valid_from": "timestamp",
    "_valid_to": "timestamp",
    "_is_current": "boolean",
    "_row_hash": "text",
}


@dataclass(frozen=True)
class Read:
    """A table a model reads: an object or a model, as named in the SQL, on a line."""

    unit: str  # the object's or model's name
    kind: Literal["object", "model"]
    table: str  # the table it is in the warehouse
    line: int | None


@dataclass
class Model:
    file: ModelFile
    query: exp.Query  # parsed in the model's dialect
    reads: tuple[Read, ...]  # each unit once, in the order the SQL first names them
    analysis: Analysis

    @property
    def name(self) -> str:
        return self.file.name

    @property
    def materialized(self) -> str:
        return self.file.header.materialized

    @property
    def upstream(self) -> tuple[str, ...]:
        return tuple(r.unit for r in self.reads)

    def driving_input(self) -> Read | None:
        """An incremental model's input whose new batches it reads."""
        wanted = self.file.header.new_batches_of
        for read in self.reads:
            if read.kind == "object" and (wanted is None or wanted in (read.unit, read.table)):
                return read
        return None


@dataclass
class ModelSet:
    models: dict[str, Model]  # in dependency order

    def __contains__(self, name: object) -> bool:
        return name in self.models

    def __getitem__(self, name: str) -> Model:
        return self.models[name]

    def names(self) -> list[str]:
        return list(self.models)

    def downstream(self, names: Iterable[str]) -> list[str]:
        """The models that read any of `names` (objects or models), directly or not."""
        found = set(names)
        out = []
        for name, model in self.models.items():
            if any(u in found for u in model.upstream):
                found.add(name)
                out.append(name)
        return out


_cache: dict[tuple[object, ...], ModelSet] = {}


def load_models(project: Project) -> ModelSet:
    """The project's models, in dependency order (a ProjectError for the first problem)."""
    paths = model_files(project.root)
    key = (
        str(project.root),
        project.project_hash,
        id(project),
        tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in paths),
    )
    cached = _cache.get(key)
    if cached is None:
        cached = _read(project, paths)
        _cache.clear()  # one project at a time is what a process works on
        _cache[key] = cached
    return cached


def _read(project: Project, paths: list[Path]) -> ModelSet:
    files = [read_model_file(p, project.root) for p in paths]
    tables: dict[str, ObjectSpec] = {}
    for obj in project.objects_in_order():
        tables.setdefault(obj.name.lower(), obj)
        tables.setdefault(obj.table_name.lower(), obj)
    names = {f.name.lower(): f for f in files}
    for f in files:
        clash = tables.get(f.name.lower())
        if clash is not None:
            raise ProjectError(
                f"model '{f.name}' has the name of object '{clash.name}'s table: rename the file",
                file=f.file,
            )
    parsed = {f.name: (_parse(f), f) for f in files}
    reads = {name: _reads(query, f, tables, names) for name, (query, f) in parsed.items()}
    order = _order([f.name for f in files], reads, {f.name: f for f in files})
    schema: dict[str, dict[str, str]] = {}
    for obj in project.objects_in_order():
        schema[obj.table_name] = _object_schema(obj)
    models: dict[str, Model] = {}
    for name in order:
        query, f = parsed[name]
        analysis = analyse(query, f.header.dialect, schema)
        if analysis.columns:
            schema[name] = dict.fromkeys(analysis.columns, "text")
        models[name] = Model(f, query, reads[name], analysis)
    return ModelSet(models)


def _object_schema(obj: ObjectSpec) -> dict[str, str]:
    columns = {
        name: "text" if spec.pii in ("hash", "mask") else spec.type
        for name, spec in obj.columns.items()
        if spec.pii != "drop"
    }
    columns |= SYSTEM_TYPES
    if obj.load == "scd2":
        columns |= SCD2_TYPES
    return columns


def _parse(f: ModelFile) -> exp.Query:
    try:
        statements = [s for s in sqlglot.parse(f.sql, read=f.header.dialect) if s is not None]
    except ParseError as exc:
        problem = exc.errors[0] if exc.errors else {}
        text = str(problem.get("description") or exc).splitlines()[0]
        raise ProjectError(
            f"model '{f.name}': cannot parse its SQL: {text}",
            file=f.file,
            line=problem.get("line"),
        ) from None
    except SqlglotError as exc:
        raise ProjectError(f"model '{f.name}': cannot parse its SQL: {exc}", file=f.file) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ProjectError(
            f"model '{f.name}': a model is one SELECT (found {len(statements)} statement(s)"
            + (f", a {statements[0].key.upper()}" if len(statements) == 1 else "")
            + ")",
            file=f.file,
        )
    return statements[0]


def _reads(
    query: exp.Query,
    f: ModelFile,
    tables: dict[str, ObjectSpec],
    models: dict[str, ModelFile],
) -> tuple[Read, ...]:
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    found: dict[str, Read] = {}
    for table in sorted(query.find_all(exp.Table), key=_position):
        name = table.name
        if not name or (not table.db and name.lower() in ctes):
            continue  # a table function (read_csv(...)), or a CTE
        line = table.this.meta.get("line") if isinstance(table.this, exp.Expression) else None
        qualified = f"{table.db}.{name}" if table.db else name
        if table.catalog or (table.db and table.db.lower() not in DEFAULT_SCHEMAS):
            raise ProjectError(
                f"model '{f.name}' reads '{table.sql()}': a model reads objects and models "
                f"of this project by name (in the warehouse's default schema)",
                file=f.file,
                line=line,
            )
        key = name.lower()
        if key == f.name.lower():
            raise ProjectError(f"model '{f.name}' reads itself", file=f.file, line=line)
        obj = tables.get(key)
        if obj is not None:
            found.setdefault(obj.name, Read(obj.name, "object", obj.table_name, line))
        elif key in models:
            other = models[key].name
            found.setdefault(other, Read(other, "model", other, line))
        else:
            known = sorted({o.name for o in tables.values()} | {m.name for m in models.values()})
            raise ProjectError(
                f"model '{f.name}' reads '{qualified}', which is neither an object nor a model "
                f"of this project (known: {', '.join(known) or 'none'})",
                file=f.file,
                line=line,
            )
    return tuple(found.values())


def _position(table: exp.Table) -> int:
    """Where the table's name starts in the SQL (the order the reads are written in)."""
    meta = table.this.meta if isinstance(table.this, exp.Expression) else {}
    start = meta.get("start")
    return start if isinstance(start, int) else 0


def _order(
    names: list[str], reads: dict[str, tuple[Read, ...]], files: dict[str, ModelFile]
) -> list[str]:
    """The models in dependency order, stable by file name; a cycle is a ProjectError."""
    needs = {n: {r.unit for r in reads[n] if r.kind == "model"} for n in names}
    rank = {n: i for i, n in enumerate(names)}
    waiting = {n: set(v) for n, v in needs.items()}
    ready = [(rank[n], n) for n in names if not waiting[n]]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for other, wanted in waiting.items():
            if name in wanted:
                wanted.discard(name)
                if not wanted:
                    heapq.heappush(ready, (rank[other], other))
    if len(order) == len(names):
        return order
    cycle = _cycle(needs, [n for n in names if n not in order])
    first = files[cycle[0]]
    line = next((r.line for r in reads[cycle[0]] if r.unit == cycle[1]), None)
    why = "; ".join(f"{a} reads {b}" for a, b in pairwise(cycle))
    raise ProjectError(
        f"dependency cycle: {' → '.join(cycle)} ({why})",
        file=first.file,
        line=line,
        cycle=cycle,
    )


def _cycle(needs: dict[str, set[str]], left: list[str]) -> list[str]:
    """A cycle among `left` (each reads the next), starting at the first of `left`."""
    start = left[0]
    path = [start]
    seen = {start}
    node = start
    while True:
        node = min((n for n in needs[node] if n in left), key=left.index)
        if node in seen:
            ring = path[path.index(node) :]
            first = min(range(len(ring)), key=lambda i: left.index(ring[i]))
            ring = ring[first:] + ring[:first]
            return [*ring, ring[0]]
        seen.add(node)
        path.append(node)
