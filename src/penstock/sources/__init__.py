"""Source kinds, one module each, behind the `Source` protocol."""

from __future__ import annotations

from penstock.catalog import FilesSource, ObjectSpec, Project
from penstock.sources.base import Source, SourceItem, batch_id_for
from penstock.sources.files import FilesSourceReader


def source_for(project: Project, obj: ObjectSpec) -> FilesSourceReader:
    """The reader for the source an object names."""
    spec: FilesSource = project.sources[obj.source]
    return FilesSourceReader(project, obj.source, spec)


__all__ = ["FilesSourceReader", "Source", "SourceItem", "batch_id_for", "source_for"]
