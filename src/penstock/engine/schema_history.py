"""An object's schema versions as its stage zone holds them, and the events of a new one.

A version is one observed schema (quality/drift.py's `fingerprint`: column names and types,
in any order) of a staged batch with rows; versions are numbered 1, 2, … in extraction
order of the batches that first held them. The stage zone alone decides, so a run, a later
run and a rebuild number them alike. When a newly staged batch brings a new version, the
runner sends `schema_version` (recorded in the metadata store's `schema_versions`) and, when it
differs from the object's latest batch before it or (the first version) from the contract,
`schema_drift` (alerts, hooks). A rebuild sends every version's `schema_version` again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from penstock.catalog import ObjectSpec
from penstock.lake import StagedBatch
from penstock.lake.stage import extraction_order
from penstock.observe import SchemaDrift, SchemaVersionSeen
from penstock.quality.drift import SchemaDiff, ensure_bindable, fingerprint


@dataclass
class SchemaHistory:
    """The versions of the batches seen so far, in extraction order (`observe` adds one)."""

    obj: ObjectSpec
    project: str
    versions: dict[str, tuple[int, StagedBatch]] = field(default_factory=dict)
    latest: StagedBatch | None = None

    @classmethod
    def of(cls, obj: ObjectSpec, project: str, staged: Iterable[StagedBatch]) -> SchemaHistory:
        history = cls(obj, project)
        for batch in sorted(staged, key=extraction_order):
            history._add(batch)
        return history

    def _add(self, batch: StagedBatch) -> bool:
        """Note the batch; True when it brings a new version."""
        if not batch.manifest.rows:
            return False  # nothing was observed: an empty file has no header
        self.latest = batch
        key = fingerprint(batch.manifest.schema)
        if key in self.versions:
            return False
        self.versions[key] = (len(self.versions) + 1, batch)
        return True

    def observe(self, run_id: str, batch: StagedBatch) -> list[SchemaVersionSeen | SchemaDrift]:
        """Note a newly staged batch (the latest so far); the events of its new version, if
        it brings one."""
        previous = self.latest
        if not self._add(batch):
            return []
        version, _ = self.versions[fingerprint(batch.manifest.schema)]
        diff = ensure_bindable(self.obj, batch) or SchemaDiff()
        events: list[SchemaVersionSeen | SchemaDrift] = [self.seen(run_id, version, batch, diff)]
        m = batch.manifest
        if previous is None and not diff:
            return events  # the first version, as the contract has it
        old = previous.manifest.schema if previous is not None else m.schema
        new = m.schema
        events.append(
            SchemaDrift(
                run_id=run_id,
                object=self.obj.name,
                batch_id=batch.batch_id,
                source_file=m.source_file,
                previous_batch_id=previous.batch_id if previous is not None else None,
                added=tuple(c for c in new if c not in old),
                removed=tuple(c for c in old if c not in new),
                retyped={c: (old[c], new[c]) for c in new if c in old and old[c] != new[c]},
                missing=diff.missing_columns,
                extra=diff.new_columns,
                type_changes=diff.type_changes,
                version=version,
                policy=self.obj.schema_drift.model_dump(),
            )
        )
        return events

    def replayed(self, run_id: str) -> list[SchemaVersionSeen]:
        """Every version's `schema_version` event (a rebuild sends them again)."""
        return [
            self.seen(run_id, version, batch, ensure_bindable(self.obj, batch) or SchemaDiff())
            for version, batch in self.versions.values()
        ]

    def seen(
        self, run_id: str, version: int, batch: StagedBatch, diff: SchemaDiff
    ) -> SchemaVersionSeen:
        m = batch.manifest
        return SchemaVersionSeen(
            run_id=run_id,
            project=self.project,
            object=self.obj.name,
            version=version,
            fingerprint=fingerprint(m.schema),
            batch_id=batch.batch_id,
            source_file=m.source_file,
            extracted_at=m.extracted_at,
            columns=dict(m.schema),
            new_columns=diff.new_columns,
            missing_columns=diff.missing_columns,
            type_changes=diff.type_changes,
            policy=self.obj.schema_drift.model_dump(),
        )
