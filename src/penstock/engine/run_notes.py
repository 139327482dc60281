"""What the runner says about an object beyond its steps' outcomes: the warnings and notes of
a run (a glob that matched nothing, columns missing or extra, a failed batch check, rows that
broke the contract, a column added to the contract, a replace snapshot that repeats an older
one). Each goes to the run's log through the event bus.
"""

from __future__ import annotations

from typing import Any

from penstock.catalog import ObjectSpec, Project
from penstock.catalog.schema_drift import MISSING_REASON
from penstock.engine.globs import no_match
from penstock.engine.results import RunResult
from penstock.engine.run_events import RunEvents
from penstock.lake import StagedBatch
from penstock.lake.stage import extraction_order
from penstock.observe import EventBus, LogLevel
from penstock.quality.compile import bind_columns
from penstock.quality.set_rules import RATE_PREFIX, reconcile_problem
from penstock.quality.validate import BatchValidation, row_count_problem
from penstock.sources import FilesSourceReader
from penstock.warehouse import Warehouse


class RunNotes(RunEvents):
    """The runner's log lines about objects and batches (a base of `Runner`; the typed
    events are its own base, engine/run_events.py)."""

    project: Project
    bus: EventBus
    warehouse: Warehouse

    def _log(
        self, result: RunResult, level: LogLevel, message: str, obj: ObjectSpec, **fields: Any
    ) -> None:
        extra = {k: v for k, v in fields.items() if k not in ("object", "batch_id")}
        batch_id = fields.get("batch_id")
        step_id = self.clock.current.get(obj.name)  # the step running or just ended
        self.bus.log(
            result.run_id,
            level,
            message,
            object=obj.name,
            batch_id=batch_id,
            step_id=step_id,
            **extra,
        )

    def _note_no_match(self, result: RunResult, obj: ObjectSpec, source: FilesSourceReader) -> None:
        """A glob that matched no file is a warning (with the near misses), and the run's
        output lists it."""
        miss = no_match(obj.name, self.project.root, source.root, obj.files or "*")
        result.no_match.append(miss)
        self._log(result, "warning", miss.message, obj, event="no_match", pattern=miss.pattern)

    def _note_added_columns(
        self, result: RunResult, obj: ObjectSpec, loaded: list[StagedBatch]
    ) -> None:
        """A column added to the contract reads NULL in the rows already loaded; if their files
        carried it, say so: a rebuild fills it in from the stage zone (and only then do runs
        and a rebuild agree)."""
        table = {c.lower() for c in self.warehouse.table_columns(obj)}
        added = [c for c in obj.stored_columns if table and c.lower() not in table]
        if not added:
            return
        carried = [
            b
            for b in loaded
            if any(x.stage_column for x in bind_columns(obj, b.manifest.schema) if x.name in added)
        ]
        if carried:
            self._log(
                result,
                "warning",
                f"{obj.name}: column(s) {', '.join(added)} added to the contract; "
                f"{len(carried)} loaded batch(es) carry them in the stage zone, but their rows "
                f"keep NULL until `penstock rebuild --select {obj.name}` replays them",
                obj,
                event="added_columns",
                added=added,
                batches=[b.batch_id for b in carried],
            )

    def _note_repeat(
        self, result: RunResult, obj: ObjectSpec, batch: StagedBatch, staged: list[StagedBatch]
    ) -> None:
        """A replace snapshot repeating an older batch's content loads again: say so."""
        content = batch.manifest.content_hash
        earlier = [b for b in staged if b.manifest.content_hash == content]
        if earlier:
            first = max(earlier, key=extraction_order)
            self._log(
                result,
                "info",
                f"{batch.manifest.source_file} repeats the content of "
                f"{first.manifest.source_file} (batch {first.batch_id}); loaded as the newest "
                f"snapshot",
                obj,
                batch_id=batch.batch_id,
                repeats=first.batch_id,
            )

    def _report_validation(
        self, result: RunResult, obj: ObjectSpec, batch: StagedBatch, v: BatchValidation
    ) -> None:
        self._emit_checks(result, obj, batch, v)  # the typed event; the log lines follow
        name = batch.manifest.source_file
        if v.missing_columns:
            shown = [
                c if (s := obj.columns[c].source_name(c)) == c else f"{c} (from: {s!r})"
                for c in v.missing_columns
            ]
            effect = "read as empty"
            if obj.schema_drift.missing_columns == "quarantine":
                effect = (
                    "its rows are quarantined as "
                    + ", ".join(f"{MISSING_REASON}{c}" for c in v.missing_columns)
                    + " (schema_drift missing_columns: quarantine)"
                )
            self._log(
                result,
                "warning",
                f"{name}: column(s) {', '.join(shown)} missing from the file; {effect}",
                obj,
                batch_id=batch.batch_id,
                missing_columns=v.missing_columns,
            )
        if v.evolved_columns:
            self._log(
                result,
                "info",
                f"{name}: column(s) {', '.join(v.evolved_columns)} not in the contract; loaded "
                f"into {obj.table_name} as text (schema_drift new_columns: evolve)",
                obj,
                batch_id=batch.batch_id,
                evolved_columns=v.evolved_columns,
            )
        if v.extra_columns:
            self._log(
                result,
                "warning",
                f"{name}: column(s) {', '.join(v.extra_columns)} not in the contract; "
                f"kept in the stage zone, not loaded",
                obj,
                batch_id=batch.batch_id,
                extra_columns=v.extra_columns,
            )
        if v.warned_checks:
            self._log(
                result,
                "warning",
                f"{name}: the batch fails {', '.join(v.warned_checks)} (severity warn: loaded)",
                obj,
                batch_id=batch.batch_id,
                checks=v.warned_checks,
            )
        if "check:reconcile" in v.failed_checks or "check:reconcile" in v.warned_checks:
            held = "check:reconcile" in v.failed_checks
            what = (
                "severity warn: loaded"
                if not held
                else "loaded anyway"
                if obj.on_invalid == "warn"
                else "every record quarantined"
            )
            self._log(
                result,
                "error" if held else "warning",
                f"{name}: the batch fails check:reconcile "
                f"({reconcile_problem(batch.manifest)}); {what}",
                obj,
                batch_id=batch.batch_id,
                source_rows=batch.manifest.source_rows,
                rows_in=batch.manifest.rows_in,
            )
        judged = [c for c in v.failed_checks if c in ("check:freshness", "check:duplicate_rate")]
        if judged:
            what = "loaded anyway" if obj.on_invalid == "warn" else "every record quarantined"
            self._log(
                result,
                "warning",
                f"{name}: the batch fails {', '.join(judged)}; {what}",
                obj,
                batch_id=batch.batch_id,
                reasons=v.reason_counts,
            )
        rates = [c for c in v.failed_checks if c.startswith(RATE_PREFIX)]
        problem = row_count_problem(obj, v.rows_in) if v.failed_checks else None
        if rates:
            what = "loaded anyway" if obj.on_invalid == "warn" else "every record quarantined"
            rules = [c.removeprefix(RATE_PREFIX) for c in rates]
            over = ", ".join(
                f"{r} failed {v.reason_counts.get(r, 0)} of {v.rows_in} records" for r in rules
            )
            self._log(
                result,
                "warning",
                f"{name}: the batch fails its max_failure_rate ({over}); {what}",
                obj,
                batch_id=batch.batch_id,
                reasons=v.reason_counts,
            )
        elif problem is not None:
            what = "loaded anyway" if obj.on_invalid == "warn" else "every record quarantined"
            self._log(
                result,
                "warning",
                f"{name}: the batch fails check:row_count ({problem}); {what}",
                obj,
                batch_id=batch.batch_id,
                reasons=v.reason_counts,
            )
        elif v.reason_counts:
            what = "quarantined"
            if obj.on_invalid == "warn":  # loaded, and a copy kept in quarantine (_loaded true)
                what = f"{v.rows_warned} loaded anyway and recorded in quarantine.{obj.name}" + (
                    f", {v.rows_quarantined} held back in quarantine" if v.rows_quarantined else ""
                )
            self._log(
                result,
                "warning",
                f"{name}: {v.rows_invalid} row(s) broke the contract ({what})",
                obj,
                batch_id=batch.batch_id,
                reasons=v.reason_counts,
            )
