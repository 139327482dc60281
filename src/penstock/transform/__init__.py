"""The consume zone: SQL models (`models/*.sql`) that penstock orders, materialises, checks and
traces. A model is one SELECT; what it reads (objects' tables or other models) is parsed from
its SQL with sqlglot, no `ref()`: `model_file` reads one file and its YAML header,
`model_set` the project's models with their references and columns, `column_lineage` where
each output column comes from, `materialize` writes one model into the warehouse.
"""

from penstock.transform.model_file import ModelFile, ModelHeader
from penstock.transform.model_set import Model, ModelSet, load_models

__all__ = ["Model", "ModelFile", "ModelHeader", "ModelSet", "load_models"]
