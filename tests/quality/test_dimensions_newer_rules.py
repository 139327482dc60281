"""The newer rules have DQ dimensions: between and length are validity, references
consistency, unique and duplicate_rate uniqueness, freshness timeliness, and a rule over its
max_failure_rate counts in that rule's dimension."""

from __future__ import annotations

from penstock.catalog import ObjectSpec
from penstock.quality.dimensions import checked_dimensions, dimension_of, reason_dimensions


def test_each_newer_rule_has_its_dimension() -> None:
    obj = ObjectSpec.model_validate(
        {
            "name": "t",
            "source": "landing",
            "files": "t/*.csv",
            "key": ["id"],
            "columns": {
                "id": {"type": "bigint"},
                "qty": {"type": "integer", "between": [1, 9]},
                "code": {"type": "text", "length": 2, "unique": True},
                "parent": {"type": "bigint", "references": "t.id"},
                "at": {
                    "type": "timestamp",
                    "dimensions": {"between": "accuracy"},
                    "between": ["2020-01-01", "2030-01-01"],
                },
            },
            "checks": [
                {"freshness": {"column": "at", "max_age": "1d"}},
                {"duplicate_rate": {"max": "1%"}},
            ],
        }
    )
    found = reason_dimensions(obj)
    assert found["between:qty"] == "validity"
    assert found["length:code"] == "validity"
    assert found["unique:code"] == "uniqueness"
    assert found["references:parent"] == "consistency"
    assert found["between:at"] == "accuracy"  # the column's override
    assert found["check:freshness"] == "timeliness"
    assert found["check:duplicate_rate"] == "uniqueness"
    assert dimension_of(found, "failure_rate:length:code") == "validity"
    assert dimension_of(found, "failure_rate:check:freshness") == "timeliness"
    assert "timeliness" in checked_dimensions(obj)
