"""The demo project behind `penstock init --demo`, its deterministic data generator, and the
expectations that say exactly what its landing files contain."""

from penstock.demo.expectations import (
    EXPECTED_PATH,
    DemoExpectations,
    FileExpectation,
    read_expectations,
)
from penstock.demo.generate import create_demo_project, create_empty_project
from penstock.demo.orders import write_orders_csv

__all__ = [
    "EXPECTED_PATH",
    "DemoExpectations",
    "FileExpectation",
    "create_demo_project",
    "create_empty_project",
    "read_expectations",
    "write_orders_csv",
]
