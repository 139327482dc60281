"""The lake: immutable staged batches, manifests, quarantine files, atomic writes."""

from penstock.lake.atomic import atomic_target, write_json_atomic
from penstock.lake.manifest import Manifest
from penstock.lake.stage import Lake, SeenFile, StagedBatch

__all__ = ["Lake", "Manifest", "SeenFile", "StagedBatch", "atomic_target", "write_json_atomic"]
