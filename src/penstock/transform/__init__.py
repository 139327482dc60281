"""The consume zone: SQL models (`models/*.sql`) that penstock orders, materialises, checks and
traces. A model is one SELECT; what it reads (objects' tables or other models) is parsed from
its SQL with sqlglot, no `ref()`: `model_file` reads one file and its YAML header,
`model_set` the project's models with their references and columns, `column_lineage` where
each output column comes from, `materialize` writes one model into the warehouse, `engines`
is what that needs of DuckDB and PostgreSQL.

Nothing is imported here: a project without models (`files.model_files`) never loads sqlglot.
"""
