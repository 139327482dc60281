"""The single-batch load modes: the definition a micro-batch load must agree with."""

from penstock.warehouse.duckdb_modes import append, merge, replace
from penstock.warehouse.duckdb_scd2 import scd2

__all__ = ["append", "merge", "replace", "scd2"]
