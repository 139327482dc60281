"""`penstock run --executor dask` (or `--executor tcp://HOST:8786`): landing files are staged
on Dask workers (issue 8, part 7).

What runs where:
- **on the workers**: staging, the heavy part of reading files: each worker copies and hashes
  its share of a chunk's new files into the lake and parses them with its own in-process
  DuckDB (CSV bytes kept, malformed records found and numbered, JSON and Parquet staged),
  then commits its batches (manifests written last, directories renamed into place), exactly
  as a local run stages them;
- **on the coordinator** (the `penstock run` process): discovery, the plan, the project's
  lease, every event and step record, and validation and loading from the stage zone into the
  warehouse, one chunk at a time in extraction order: DuckDB has one writer, and loads reach
  the warehouse only through it.

So the warehouse ends as a local run leaves it: the batches are the same (ids are content
hashes), a chunk's files share one extraction time given by the run (load order is extraction
order, then file name), and the run validates and loads them in that order. The workers only
copy, hash and parse; the run commits their parts in the chunk's order, so of two files with
the same content the earlier one's batch is kept and the later one is its duplicate, as in a
local run.

The lake must be a path every worker sees: on `LocalCluster` (`--executor dask`, worker
processes on this machine) it is; a remote cluster needs the project's lake on shared storage
at the same path.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from penstock.catalog import ObjectSpec, Project
from penstock.errors import MissingExtra, UsageError
from penstock.sources.base import SourceItem, StageResult
from penstock.sources.files import FilesSourceReader, ParsedItems

if TYPE_CHECKING:
    from penstock.lake import Lake

EXTRA_LINE = "pip install 'penstock[dask]'"
# a LocalCluster's worker processes: one per core, at least two, one DuckDB thread each
MIN_WORKERS = 2


def executor_for(project: Project, executor: str) -> DaskStager | None:
    """The stager for `--executor`: None for `local`."""
    if executor == "local":
        return None
    if executor == "dask" or executor.startswith("tcp://"):
        return DaskStager(project, None if executor == "dask" else executor)
    raise UsageError(
        f"--executor {executor!r}: give local, dask (a cluster on this machine) or the "
        "scheduler address of a running Dask cluster (tcp://HOST:8786)",
        executor=executor,
    )


class DaskStager:
    """Stages chunks of landing files on a Dask cluster: one it starts (`LocalCluster`,
    closed with it) or one already running at `address`."""

    def __init__(self, project: Project, address: str | None) -> None:
        try:
            import distributed
        except ImportError:
            raise MissingExtra(
                f"--executor dask needs Dask's distributed scheduler: {EXTRA_LINE}", extra="dask"
            ) from None
        self.project = project
        self.cluster: Any = None
        self.client: Any
        dask: Any = distributed  # untyped: every call goes through Any
        if address is None:
            workers = max(MIN_WORKERS, os.cpu_count() or 1)
            self.cluster = dask.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # a free port: 8787 may be taken by another cluster
                silence_logs=40,  # errors only: workers' info lines would flood the console
            )
            self.client = dask.Client(self.cluster)
        else:
            try:
                _reachable(address)  # a refused port fails at once; Dask retries for 10 s
                self.client = dask.Client(address, timeout="10s")
            except OSError as exc:
                raise UsageError(
                    f"--executor {address}: no Dask scheduler answers there: {exc}",
                    executor=address,
                ) from None
        self.address: str = str(self.client.scheduler.address)

    @property
    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def stage(
        self,
        obj: ObjectSpec,
        source: FilesSourceReader,
        items: Sequence[SourceItem],
        lake: Lake,
    ) -> list[StageResult]:
        """Stage `items` (one chunk, in order): the workers copy, hash and parse contiguous
        parts of it (one extraction time for all), then the parts are committed here in
        order, so that of two files with the same content the earlier one's batch is kept,
        as in a local run. One result per item, in the items' order."""
        at = datetime.now(UTC)
        parts = _split(list(items), self.workers)
        futures = [
            self.client.submit(parse_part, self.project, obj.name, part, lake.root, at, pure=False)
            for part in parts
        ]
        results: list[StageResult] = []
        for part, future in zip(parts, futures, strict=True):
            try:
                parsed: ParsedItems = future.result()
            except Exception as exc:  # the worker's machine, not one file: its part failed
                results += [StageResult("failed", item, error=exc) for item in part]
                continue
            results += source.commit_parsed(parsed)
        return results

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def parse_part(
    project: Project,
    object_name: str,
    items: Sequence[SourceItem],
    lake_root: Path,
    extracted_at: datetime,
) -> ParsedItems:
    """On a worker: copy, hash and parse `items` into staging directories of the lake, as a
    local run would (with its own DuckDB); the run commits them."""
    import duckdb

    from penstock.lake import Lake
    from penstock.sources import source_for

    obj = project.objects[object_name]
    source = source_for(project, obj)
    if not isinstance(source, FilesSourceReader):  # the run sends only files' objects
        raise UsageError(
            f"object '{object_name}' reads source '{obj.source}', which is not a file source: "
            f"only files are staged on Dask workers",
            object=object_name,
            source=obj.source,
        )
    with duckdb.connect(config={"threads": 1}) as conn:
        prepared = source.prepare_many(conn, obj, items, Lake(lake_root), extracted_at)
        return source.parse_many(conn, prepared)


def _split(items: list[SourceItem], parts: int) -> list[list[SourceItem]]:
    """`items` in at most `parts` contiguous parts of near-equal size (order kept)."""
    size, extra = divmod(len(items), max(1, parts))
    out: list[list[SourceItem]] = []
    start = 0
    for index in range(max(1, parts)):
        end = start + size + (1 if index < extra else 0)
        if end > start:
            out.append(items[start:end])
        start = end
    return out


def _reachable(address: str) -> None:
    """Raise OSError when nothing listens at a `tcp://HOST:PORT` scheduler address."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme == "tcp" and parts.hostname and parts.port:
        with socket.create_connection((parts.hostname, parts.port), timeout=5):
            pass
