"""The project catalog: `penstock.yml`, its included files, and the models they validate into.

The names below load on first use (PEP 562): the models need pydantic (and their checks
sqlglot), which `penstock status` and `penstock runs` do without; they read the project's
outline (catalog/outline.py), which imports only the YAML reader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from penstock.lazy import lazy_attributes

if TYPE_CHECKING:
    from penstock.catalog.loader import load_project
    from penstock.catalog.micro_batch import MicroBatch
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

_LAZY = {
    "ColumnSpec": "penstock.catalog.models",
    "ColumnType": "penstock.catalog.types",
    "CsvOptions": "penstock.catalog.models",
    "ExpressionCheck": "penstock.catalog.models",
    "FilesSource": "penstock.catalog.models",
    "MicroBatch": "penstock.catalog.micro_batch",
    "ObjectSpec": "penstock.catalog.models",
    "Project": "penstock.catalog.models",
    "RowCountBounds": "penstock.catalog.models",
    "RowCountCheck": "penstock.catalog.models",
    "Source": "penstock.catalog.models",
    "load_project": "penstock.catalog.loader",
    "parse_type": "penstock.catalog.types",
}

if not TYPE_CHECKING:  # hidden from mypy, so that a misspelt name stays an error
    __getattr__, __dir__ = lazy_attributes("penstock.catalog", globals(), _LAZY)

__all__ = [
    "ColumnSpec",
    "ColumnType",
    "CsvOptions",
    "ExpressionCheck",
    "FilesSource",
    "MicroBatch",
    "ObjectSpec",
    "Project",
    "RowCountBounds",
    "RowCountCheck",
    "Source",
    "load_project",
    "parse_type",
]
