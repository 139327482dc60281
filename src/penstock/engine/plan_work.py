"""What a run would do for each object, read without changing anything (`penstock plan`).

Per object: the landing files a run would read and stage (new or changed since they were
read, as the files source's `discover` tells: a glob and a stat per file, nothing opened),
the files still settling, the staged batches waiting to load (staged, not in the warehouse
ledger, not skipped), and the failed batch that holds them back (its last load attempt
failed: a run tries it again first, and the later ones wait while it fails).

Nothing is written: the lake is read (manifests, the file index, rejections), the warehouse
is opened read-only (when a run holds it, the metadata store's successful loads stand in for
its ledger, as `penstock batches` does), and the metadata store is read as `penstock status`
reads it (on SQLite through sqlite3 in read-write mode that never creates the file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from penstock.catalog import ObjectSpec, Project
from penstock.lake import Lake
from penstock.lake.stage import extraction_order, known_files
from penstock.observe import status_reads
from penstock.observe.status_reads import Rows

_LOADED = ("success", "warning", "skipped")  # a load step's statuses when its batch is loaded


@dataclass(frozen=True)
class Attempt:
    """A batch's latest load step."""

    status: str
    run_id: str
    error: str | None


@dataclass(frozen=True)
class FailedBatch:
    batch_id: str
    source_file: str
    run_id: str
    error: str | None


@dataclass(frozen=True)
class ModelWork:
    """What a run would do for one consume model: build it (its inputs' state decides what
    rows it reads)."""

    object: str
    materialized: str
    reads: tuple[str, ...]

    @property
    def state(self) -> str:
        return "work"

    @property
    def summary(self) -> str:
        how = {"incremental": "incremental table (new batches only)"}
        what = how.get(self.materialized, self.materialized)
        return f"build the {what} from {', '.join(self.reads)}"


@dataclass(frozen=True)
class ObjectWork:
    """What a run would do for one object (`error`: what could not be looked at)."""

    object: str
    files_new: int = 0  # new or changed landing files a run would read and stage
    files_unsettled: int = 0  # younger than the source's settle time: left for later
    batches_pending: int = 0  # staged, not loaded, not skipped
    blocked_by: FailedBatch | None = None  # the first pending batch, whose last load failed
    error: str | None = None
    # a database or REST object: a run reads its next window (what it holds is unknown here)
    reads_window: str | None = None  # where from: "the database", "the API"

    @property
    def state(self) -> str:
        """`error`, `blocked` (a failed batch holds the pending ones), `work` or `nothing`."""
        if self.error is not None:
            return "error"
        if self.blocked_by is not None:
            return "blocked"
        return "work" if self.files_new or self.batches_pending or self.reads_window else "nothing"

    @property
    def summary(self) -> str:
        """In words, e.g. `stage 3 new or changed file(s); load 2 staged batch(es)`."""
        if self.error is not None:
            return f"cannot tell: {self.error}"
        parts = []
        if self.reads_window:
            parts.append(f"read its next window from {self.reads_window}")
        if self.files_new:
            parts.append(f"stage {self.files_new} new or changed file(s)")
        if self.blocked_by is not None:
            failed = self.blocked_by
            behind = self.batches_pending - 1
            parts.append(
                f"blocked by failed batch {failed.batch_id} ({failed.source_file}): tried "
                "again first" + (f"; {behind} later batch(es) wait behind it" if behind else "")
            )
        elif self.batches_pending:
            parts.append(f"load {self.batches_pending} staged batch(es)")
        if self.files_unsettled:
            parts.append(f"{self.files_unsettled} file(s) still settling, left for later")
        return "; ".join(parts) or "nothing new"


def plan_work(
    project: Project, objects: Sequence[ObjectSpec], notes: list[str]
) -> list[ObjectWork]:
    """What a run would do for each of `objects`; why a figure may be partial goes to `notes`."""
    from penstock.engine.status import open_for_reading

    lake = Lake(project.lake_path)
    warehouse = open_for_reading(project, notes)
    # a warehouse file a run holds: the store's loads stand in for its ledger
    path = project.warehouse_path
    busy = warehouse is None and path is not None and path.exists()
    loaded: dict[str, set[str]] = {}
    attempts: dict[str, dict[str, Attempt]] = {}
    try:
        with status_reads.reading(project.metadata_url) as rows:
            for obj in objects:
                attempts[obj.name] = _last_load_attempts(rows, obj.name)
                if warehouse is not None:
                    loaded[obj.name] = warehouse.loaded_batches(obj.name)
                elif busy:
                    loaded[obj.name] = {
                        b for b, a in attempts[obj.name].items() if a.status in _LOADED
                    }
                else:  # no warehouse yet: nothing loaded
                    loaded[obj.name] = set()
    finally:
        if warehouse is not None:
            warehouse.close()
    if busy:
        notes.append("loaded batches are taken from the metadata store")
    return [
        _object_work(project, lake, obj, loaded[obj.name], attempts[obj.name]) for obj in objects
    ]


def _object_work(
    project: Project,
    lake: Lake,
    obj: ObjectSpec,
    loaded: set[str],
    attempts: dict[str, Attempt],
) -> ObjectWork:
    from penstock.errors import PenstockError
    from penstock.sources import FilesSourceReader, source_for

    source = source_for(project, obj)
    staged = lake.batches(obj.name)
    settings = source.read_settings(obj)
    rejected = [r for r in lake.rejections(obj.name) if r.read_settings == settings]
    known = known_files(staged, lake.read_file_index(obj.name), rejected)
    try:
        found = source.discover(obj, known)
    except PenstockError as exc:
        return ObjectWork(obj.name, error=exc.message)
    pending = sorted(
        (b for b in staged if b.batch_id not in loaded and b.skip is None), key=extraction_order
    )
    blocked = None
    if pending:
        first = pending[0]
        attempt = attempts.get(first.batch_id)
        if attempt is not None and attempt.status == "failed":
            name = first.manifest.source_file
            blocked = FailedBatch(first.batch_id, name, attempt.run_id, attempt.error)
    return ObjectWork(
        obj.name,
        files_new=len(found.new),
        files_unsettled=len(found.unsettled),
        batches_pending=len(pending),
        blocked_by=blocked,
        reads_window=None
        if isinstance(source, FilesSourceReader)
        else "the API"
        if obj.reads_api
        else "the database",
    )


_ATTEMPTS = """
SELECT batch_id, status, run_id, error FROM step_runs
WHERE object = :o AND step = 'load' AND batch_id IS NOT NULL
ORDER BY started_at, step_id
"""


def _last_load_attempts(rows: Rows | None, name: str) -> dict[str, Attempt]:
    """The latest load step of each batch of the object."""
    if rows is None:
        return {}
    return {
        r["batch_id"]: Attempt(r["status"], r["run_id"], r["error"])
        for r in rows(_ATTEMPTS, {"o": name})
    }
