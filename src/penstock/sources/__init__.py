"""Source kinds, one module each, behind the `Source` protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from penstock.catalog import FilesSource, ObjectSpec, Project
from penstock.sources.base import Source, SourceItem, batch_id_for
from penstock.sources.files import FilesSourceReader

if TYPE_CHECKING:
    from penstock.sources.database import DatabaseSourceReader
    from penstock.sources.rest import RestSourceReader

    WindowSource: TypeAlias = DatabaseSourceReader | RestSourceReader


def source_for(project: Project, obj: ObjectSpec) -> FilesSourceReader | WindowSource:
    """The reader for the source an object names."""
    spec = project.sources[obj.source]
    if isinstance(spec, FilesSource):
        return FilesSourceReader(project, obj.source, spec)
    if spec.kind == "rest":
        from penstock.sources.rest import RestSourceReader

        return RestSourceReader(project, obj.source, spec)
    from penstock.sources.database import DatabaseSourceReader

    return DatabaseSourceReader(project, obj.source, spec)


def files_source_for(project: Project, obj: ObjectSpec) -> FilesSourceReader:
    """The reader of an object's files source (the caller knows it reads files)."""
    source = source_for(project, obj)
    assert isinstance(source, FilesSourceReader), f"{obj.name} does not read files"
    return source


__all__ = [
    "FilesSourceReader",
    "Source",
    "SourceItem",
    "batch_id_for",
    "files_source_for",
    "source_for",
]
