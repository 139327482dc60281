"""Data contracts as documents: compare two versions (`diff`), and write or read them in the
Open Data Contract Standard (`odcs_export`, `odcs_import`).

Modules: `read` loads the objects of a project or of one object file, `diff` lists what
changed between two versions and whether it breaks, `odcs_types` maps penstock types to ODCS
and back, `odcs_export` writes an ODCS v3.1.0 contract, `odcs_import` reads one (reporting
what it cannot map), `yaml_out` writes penstock object YAML.
"""
