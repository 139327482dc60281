"""The project catalog: `penstock.yml`, its included files, and the models they validate into."""

from penstock.catalog.loader import load_project
from penstock.catalog.models import (
    ColumnSpec,
    CsvOptions,
    ExpressionCheck,
    FilesSource,
    ObjectSpec,
    Project,
    RowCountBounds,
    RowCountCheck,
    Source,
)
from penstock.catalog.types import ColumnType, parse_type

__all__ = [
    "ColumnSpec",
    "ColumnType",
    "CsvOptions",
    "ExpressionCheck",
    "FilesSource",
    "ObjectSpec",
    "Project",
    "RowCountBounds",
    "RowCountCheck",
    "Source",
    "load_project",
    "parse_type",
]
