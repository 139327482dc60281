"""Build one model in the warehouse, in one transaction with its checks (and, incremental, its
progress), so a failed check or a crash leaves the model as it was.

- `view`: the query as a view (replacing the model's earlier view or table);
- `table`: the query's rows written to `<model>__penstock_new`, checked, then put in place: the
  rows replace the table's when its columns are unchanged (a view reading it stays), else
  the new table takes its place (on PostgreSQL, views reading the old table are dropped with
  it, and built again when their models run);
- `incremental`: only rows of the batches of its driving input (`new_batches_of`, else the
  first object it reads) that the model has not processed are read (the read of that object
  is narrowed to `_batch_id IN (...)`); they are appended, or with `key:` replace the rows of
  the same key. Which batches the model processed is recorded in `penstock.model_batches` in
  the same transaction as its write: a crash can neither double nor skip a batch. A model
  whose table is gone starts again from every batch.

Checks (`checks:` in the header: the objects' `{name, expression}` and `row_count` checks)
are counted on what the build writes (an incremental model: its new rows). A model's rows are
never quarantined: they are derived, and can be derived again once the model or its input is
fixed. A failing check of severity `error` (over its `max_failure_rate`, when given) fails the
model and rolls its write back; `severity: warn` writes it and counts the failing rows (the
step ends `warning`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from penstock.catalog.columns import ExpressionCheck, RowCountCheck
from penstock.errors import ContractViolation, ProjectError, WarehouseError
from penstock.faults import fault_point
from penstock.sql import ident, literal
from penstock.transform.engines import EngineError, ModelEngine
from penstock.transform.model_set import Model

NEW_SUFFIX = "__penstock_new"


class ModelSqlError(WarehouseError):
    """The warehouse refused a model's SQL: names the model's file and line."""


class ModelCheckFailed(ContractViolation):
    """A model's rows broke a check of severity error; nothing of the build was kept."""


@dataclass
class Built:
    status: Literal["success", "warning", "skipped"]
    rows: int | None  # rows written (a view: its rows now), None when not counted
    message: str
    failing: dict[str, int] = field(default_factory=dict)  # check:<name> -> failing rows
    batches: tuple[str, ...] = ()  # an incremental model: the batches it processed


def build_model(model: Model, engine: ModelEngine, *, run_id: str, fresh: bool = False) -> Built:
    """Materialise `model` as its header says (a ModelSqlError names file and line); `fresh`
    (a rebuild): an incremental model starts again from every batch."""
    if model.materialized == "view":
        return _build_view(model, engine)
    if model.materialized == "incremental":
        return _build_incremental(model, engine, run_id, fresh)
    return _build_table(model, engine)


def compiled(
    model: Model, engine: ModelEngine, narrowed: dict[str, list[str]] | None = None
) -> str:
    """The model's query in the engine's SQL, its reads pointed at the warehouse's tables; the
    reads of the objects in `narrowed` only see the rows of the given batches."""
    query = model.query.copy()
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    tables = {r.unit.lower(): r for r in model.reads} | {r.table.lower(): r for r in model.reads}
    for table in list(query.find_all(exp.Table)):
        name = table.name
        if not name or (not table.db and name.lower() in ctes):
            continue
        read = tables.get(name.lower())
        if read is None:
            continue
        target = exp.table_(read.table, db=engine.schema, quoted=True)
        if narrowed is not None and read.unit in narrowed:
            ids = narrowed[read.unit]
            inner = (
                exp.select("*")
                .from_(target)
                .where(exp.column("_batch_id").isin(*(exp.Literal.string(i) for i in ids)))
            )
            alias = table.alias or read.table
            table.replace(inner.subquery(alias=exp.to_identifier(alias, quoted=True)))
            continue
        target.set("alias", table.args.get("alias"))
        for key in ("joins", "laterals", "pivots", "sample", "hints"):
            if table.args.get(key):
                target.set(key, table.args[key])
        table.replace(target)
    try:
        return query.sql(dialect=engine.dialect)
    except SqlglotError as exc:
        raise ModelSqlError(
            f"model '{model.name}': cannot write its SQL for {engine.dialect}: {exc}",
            file=model.file.file,
            model=model.name,
        ) from None


# ---- the three materialisations ---------------------------------------------------------


def _build_view(model: Model, engine: ModelEngine) -> Built:
    sql = compiled(model, engine)
    with engine.transaction():
        drop_relation(engine, model.name)
        _run(model, engine, f"CREATE VIEW {engine.table(model.name)} AS {sql}")
        rows, failing = _checked(model, engine, model.name)
    return _done(model, rows, failing, f"view {model.name}")


def _build_table(model: Model, engine: ModelEngine) -> Built:
    sql = compiled(model, engine)
    new = model.name + NEW_SUFFIX
    with engine.transaction():
        drop_relation(engine, new)
        _run(model, engine, f"CREATE TABLE {engine.table(new)} AS {sql}")
        rows, failing = _checked(model, engine, new)
        _put_in_place(engine, model.name, new)
    return _done(model, rows, failing, f"table {model.name}: {rows} row(s)")


def _build_incremental(model: Model, engine: ModelEngine, run_id: str, fresh: bool) -> Built:
    driving = model.driving_input()
    if driving is None:
        raise ProjectError(
            f"model '{model.name}' is incremental but reads no object"
            + (
                f" named '{model.file.header.new_batches_of}'"
                if model.file.header.new_batches_of
                else ""
            )
            + ": new_batches_of names the object whose new batches it reads",
            file=model.file.file,
            line=model.file.line_of("new_batches_of") or model.file.line_of("materialized"),
        )
    new = model.name + NEW_SUFFIX
    target = engine.table(model.name)
    with engine.transaction():
        exists = not fresh and engine.relation_kind(model.name) == "table"
        if not exists:  # a first build, or the table is gone: every batch again
            engine.execute(f"DELETE FROM {engine.progress} WHERE model = {literal(model.name)}")
        loaded = [
            str(r[0])
            for r in engine.rows(
                f"SELECT batch_id FROM {engine.ledger} WHERE object = {literal(driving.unit)} "
                f"AND batch_id NOT IN (SELECT batch_id FROM {engine.progress} "
                f"WHERE model = {literal(model.name)} AND object = {literal(driving.unit)}) "
                "ORDER BY batch_id"
            )
        ]
        if not loaded and exists:
            return Built("skipped", 0, f"no new batches of {driving.unit}")
        sql = compiled(model, engine, {driving.unit: loaded or ["-"]})
        drop_relation(engine, new)
        _run(model, engine, f"CREATE TABLE {engine.table(new)} AS {sql}")
        rows, failing = _checked(model, engine, new)
        if not exists:
            drop_relation(engine, model.name)
            engine.execute(f"ALTER TABLE {engine.table(new)} RENAME TO {ident(model.name)}")
        else:
            columns = ", ".join(ident(c) for c, _ in engine.columns(new))
            key = model.file.header.key
            if key:
                same = " AND ".join(f"n.{ident(k)} IS NOT DISTINCT FROM t.{ident(k)}" for k in key)
                _run(
                    model,
                    engine,
                    f"DELETE FROM {target} AS t WHERE EXISTS "
                    f"(SELECT 1 FROM {engine.table(new)} AS n WHERE {same})",
                    key="key",
                )
            _run(
                model,
                engine,
                f"INSERT INTO {target} ({columns}) SELECT {columns} FROM {engine.table(new)}",
            )
            engine.execute(f"DROP TABLE {engine.table(new)}")
        fault_point("inside_model_transaction")  # written, its progress not yet
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        if loaded:
            values = ", ".join(
                f"({literal(model.name)}, {literal(driving.unit)}, {literal(b)}, "
                f"{literal(run_id)}, {literal(now)})"
                for b in loaded
            )
            engine.execute(f"INSERT INTO {engine.progress} VALUES {values}")
    what = f"{rows} new row(s) from {len(loaded)} new batch(es) of {driving.unit}"
    built = _done(model, rows, failing, f"incremental {model.name}: {what}")
    built.batches = tuple(loaded)
    return built


def drop_relation(engine: ModelEngine, name: str) -> None:
    """Drop the table or view `name` of the default schema, if there is one."""
    kind = engine.relation_kind(name)
    if kind is not None:
        engine.execute(f"DROP {kind.upper()} {engine.table(name)}{engine.cascade}")


def _put_in_place(engine: ModelEngine, name: str, new: str) -> None:
    kind = engine.relation_kind(name)
    if kind == "table" and engine.columns(name) == engine.columns(new):
        engine.execute(f"DELETE FROM {engine.table(name)}")
        engine.execute(f"INSERT INTO {engine.table(name)} SELECT * FROM {engine.table(new)}")
        engine.execute(f"DROP TABLE {engine.table(new)}")
        return
    drop_relation(engine, name)
    engine.execute(f"ALTER TABLE {engine.table(new)} RENAME TO {ident(name)}")


def _done(model: Model, rows: int | None, failing: dict[str, int], what: str) -> Built:
    if failing:
        broken = ", ".join(f"{n} ({c} row(s))" for n, c in failing.items())
        return Built("warning", rows, f"{what}; checks warned: {broken}", failing)
    return Built("success", rows, what)


# ---- checks -----------------------------------------------------------------------------


def _checked(model: Model, engine: ModelEngine, relation: str) -> tuple[int, dict[str, int]]:
    """The rows of `relation` and the failing rows of each warning check; a check of severity
    error that fails raises ModelCheckFailed (the caller's transaction rolls back)."""
    header = model.file.header
    expressions = [c for c in header.checks if isinstance(c, ExpressionCheck)]
    parts = ["count(*)"]
    for check in expressions:
        condition = _expression(model, check, engine.dialect)
        parts.append(f"sum(CASE WHEN NOT coalesce(({condition}), true) THEN 1 ELSE 0 END)")
    row = _rows(model, engine, f"SELECT {', '.join(parts)} FROM {engine.table(relation)}")[0]
    total = int(row[0])
    failing: dict[str, int] = {}
    for check, count in zip(expressions, row[1:], strict=True):
        bad = int(count or 0)
        if not bad:
            continue
        allowed = check.max_failure_rate
        if check.severity == "error" and (allowed is None or bad / max(total, 1) > allowed):
            raise ModelCheckFailed(
                f"{_where(model, check.name)}model '{model.name}': check {check.name} "
                f"failed on {bad} of {total} row(s) ({check.expression}); nothing was written",
                file=model.file.file,
                line=model.file.line_of("checks"),
                model=model.name,
                check=check.name,
                failed_rows=bad,
            )
        failing[f"check:{check.name}"] = bad
    for count_check in (c for c in header.checks if isinstance(c, RowCountCheck)):
        bounds = count_check.row_count
        if (bounds.min is not None and total < bounds.min) or (
            bounds.max is not None and total > bounds.max
        ):
            wanted = " and ".join(
                w
                for w in (
                    f"at least {bounds.min}" if bounds.min is not None else "",
                    f"at most {bounds.max}" if bounds.max is not None else "",
                )
                if w
            )
            raise ModelCheckFailed(
                f"{_where(model)}model '{model.name}': check row_count failed: {total} "
                f"row(s), wanted {wanted}; nothing was written",
                file=model.file.file,
                line=model.file.line_of("checks"),
                model=model.name,
                check="row_count",
            )
    return total, failing


def _where(model: Model, check: str = "row_count") -> str:
    """`file:line: ` of the check `check` in the model's header (else of `checks:`)."""
    line = model.file.line_of("checks")
    header = model.file.sql.splitlines()[: model.file.body_line - 1]
    word = re.compile(rf"(?<!\w){re.escape(check)}(?!\w)")
    for number, text in enumerate(header, start=1):
        if line is not None and number > line and word.search(text):
            line = number
            break
    return f"{model.file.file}:{line}: " if line else f"{model.file.file}: "


def _expression(model: Model, check: ExpressionCheck, dialect: str) -> str:
    try:
        return sqlglot.transpile(check.expression, read=model.file.header.dialect, write=dialect)[0]
    except SqlglotError as exc:
        raise ProjectError(
            f"model '{model.name}': check {check.name}: cannot parse its expression: "
            f"{str(exc).splitlines()[0]}",
            file=model.file.file,
            line=model.file.line_of("checks"),
        ) from None


# ---- errors with file and line ----------------------------------------------------------


def _run(model: Model, engine: ModelEngine, sql: str, *, key: str | None = None) -> None:
    try:
        engine.execute(sql)
    except EngineError as exc:
        raise _located(model, str(exc), key) from exc


def _rows(model: Model, engine: ModelEngine, sql: str) -> list[tuple[Any, ...]]:
    try:
        return engine.rows(sql)
    except EngineError as exc:
        raise _located(model, str(exc), "checks") from exc


_QUOTED = re.compile(r'"([^"]+)"')


def _located(model: Model, error: str, key: str | None) -> ModelSqlError:
    """The engine's error, named by the model's file and the line at fault: the header key's
    (`key`), else the first line of the query naming what the error quotes, else the line the
    query starts on."""
    text = error.strip().splitlines()[0] if error.strip() else error
    line = model.file.line_of(key) if key else None
    if line is None:
        line = error_line(model.file.sql, error, model.file.body_line)
    return ModelSqlError(
        f"{model.file.file}:{line}: model '{model.name}': {text}",
        file=model.file.file,
        line=line,
        model=model.name,
    )


def error_line(sql: str, error: str, first: int = 1) -> int:
    """The line (from `first`, 1-based) of the first word the error quotes, else `first`'s
    first line of SQL."""
    lines = sql.splitlines()
    body = [
        i
        for i, line in enumerate(lines)
        if i + 1 >= first and line.strip() and not line.lstrip().startswith("--")
    ]
    for name in _QUOTED.findall(error):
        word = re.compile(rf"(?<![\w.]){re.escape(name.split('.')[-1])}(?!\w)", re.IGNORECASE)
        for i in body:
            if word.search(lines[i].split("--", 1)[0]):
                return i + 1
    return body[0] + 1 if body else 1
