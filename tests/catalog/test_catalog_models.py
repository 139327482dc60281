from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from penstock.catalog import (
    ColumnSpec,
    CsvOptions,
    ExpressionCheck,
    FilesSource,
    ObjectSpec,
    Project,
    RowCountBounds,
    RowCountCheck,
)
from penstock.errors import UsageError


def only_error(exc: pytest.ExceptionInfo[ValidationError]) -> tuple[tuple[Any, ...], str]:
    errors = exc.value.errors()
    assert len(errors) == 1, errors
    return errors[0]["loc"], errors[0]["msg"].removeprefix("Value error, ")


def obj(**fields: Any) -> ObjectSpec:
    data: dict[str, Any] = {
        "name": "orders",
        "source": "landing",
        "files": "orders/*.csv",
        "columns": {"id": {"type": "bigint"}, "ts": {"type": "timestamp"}},
    }
    data.update(fields)
    return ObjectSpec.model_validate(data)


def project(tmp_path: Path, **fields: Any) -> Project:
    data: dict[str, Any] = {
        "name": "shop",
        "sources": {"landing": {"kind": "files", "path": "./landing"}},
        "objects": {},
        "root": tmp_path,
    }
    data.update(fields)
    return Project.model_validate(data)


class TestColumnSpec:
    def test_defaults_and_alias(self) -> None:
        column = ColumnSpec.model_validate({"type": "TEXT", "in": ["a", "b"]})
        assert column.type == "text"
        assert column.column_type.duckdb_type == "VARCHAR"
        assert column.in_ == ["a", "b"]
        assert column.required is False
        assert (column.min, column.max, column.pattern, column.description) == (None,) * 4
        assert ColumnSpec(type="text", in_=["x"]).in_ == ["x"]

    def test_number_bounds(self) -> None:
        column = ColumnSpec.model_validate({"type": "decimal(12, 2)", "min": 0, "max": 9.5})
        assert (column.type, column.min, column.max) == ("decimal(12,2)", 0, 9.5)

    @pytest.mark.parametrize("bad", ["abc", True, [1], float("nan")])
    def test_number_bound_must_be_a_number(self, bad: object) -> None:
        with pytest.raises(ValidationError) as info:
            ColumnSpec.model_validate({"type": "integer", "min": bad})
        message = "expected a finite number" if bad != bad else "expected a number"
        assert only_error(info) == (("min",), message)

    def test_max_below_min(self) -> None:
        with pytest.raises(ValidationError) as info:
            ColumnSpec.model_validate({"type": "integer", "min": 5, "max": 1})
        assert only_error(info) == (("max",), "max (1) is less than min (5)")
        with pytest.raises(ValidationError) as info:
            ColumnSpec.model_validate({"type": "date", "min": "2020-01-02", "max": "2020-01-01"})
        assert only_error(info) == (("max",), "max (2020-01-01) is less than min (2020-01-02)")

    def test_temporal_bounds(self) -> None:
        column = ColumnSpec.model_validate({"type": "date", "min": "1900-01-01", "max": "now"})
        assert (column.min, column.max) == ("1900-01-01", "now")
        stamp = ColumnSpec.model_validate({"type": "timestamp", "min": "2020-01-01 10:00:00"})
        assert stamp.min == "2020-01-01 10:00:00"
        # A date-only bound is fine for a timestamp. An offset needs a zone to convert to
        # (timestamptz, or timezone:); a naive bound is then local time in that zone, so
        # aware and naive bounds compare (they were not compared while offsets were dropped).
        mixed = {"type": "timestamptz", "min": "2020-01-01T00:00:00+00:00", "max": "2020-01-02"}
        assert ColumnSpec.model_validate(mixed).max == "2020-01-02"
        reversed_ = {"type": "timestamptz", "min": "2020-01-02T00:00:00+00:00", "max": "2020-01-01"}
        with pytest.raises(ValidationError) as info:
            ColumnSpec.model_validate(reversed_)
        assert only_error(info) == (
            ("max",),
            "max (2020-01-01) is less than min (2020-01-02T00:00:00+00:00)",
        )

    @pytest.mark.parametrize(
        ("type_name", "bad", "message"),
        [
            ("date", "yesterday", "expected an ISO date (YYYY-MM-DD) or now"),
            ("date", "2020-01-01 10:00:00", "expected an ISO date (YYYY-MM-DD) or now"),
            ("date", 5, "expected an ISO date (YYYY-MM-DD) or now"),
            ("timestamp", "2020-13-01", "expected an ISO timestamp (YYYY-MM-DD HH:MM:SS) or now"),
        ],
    )
    def test_temporal_bound_errors(self, type_name: str, bad: object, message: str) -> None:
        with pytest.raises(ValidationError) as info:
            ColumnSpec.model_validate({"type": type_name, "min": bad})
        assert only_error(info) == (("min",), message)

    @pytest.mark.parametrize("type_name", ["text", "boolean", "json"])
    def test_bounds_only_for_ordered_types(self, type_name: str) -> None:
        family = "boolean" if type_name == "boolean" else type_name
        with pytest.raises(ValidationError) as info:
            ColumnSpec.model_validate({"type": type_name, "max": 1})
        assert only_error(info) == (
            ("max",),
            f"min/max apply to numbers, dates and timestamps, not {family}",
        )

    @pytest.mark.parametrize(
        ("type_name", "values", "message"),
        [
            ("text", ["a", 1], "expected text, got 1"),
            ("integer", [1, True], "expected numbers, got True"),
            ("boolean", [True, "no"], "expected true or false, got 'no'"),
            ("date", ["now"], "expected an ISO date (YYYY-MM-DD)"),
            ("json", ["{}"], "in does not apply to json columns"),
            ("text", [], "list at least one allowed value"),
            ("text", "a", "expected a list of allowed values"),
        ],
    )
    def test_in_values(self, type_name: str, values: object, message: str) -> None:
        with pytest.raises(ValidationError) as info:
            ColumnSpec.model_validate({"type": type_name, "in": values})
        assert only_error(info) == (("in",), message)

    def test_in_values_accepted(self) -> None:
        assert ColumnSpec.model_validate({"type": "double", "in": [1, 2.5]}).in_ == [1, 2.5]
        assert ColumnSpec.model_validate({"type": "date", "in": ["2020-01-01"]}).in_ == [
            "2020-01-01"
        ]

    def test_pattern(self) -> None:
        assert ColumnSpec.model_validate({"type": "text", "pattern": "^[A-Z]{2}$"}).pattern
        with pytest.raises(ValidationError) as info:
            ColumnSpec.model_validate({"type": "text", "pattern": "(?=x)"})
        assert only_error(info) == (
            ("pattern",),
            "invalid regular expression: invalid perl operator: (?=",
        )
        with pytest.raises(ValidationError) as info:
            ColumnSpec.model_validate({"type": "integer", "pattern": "a"})
        assert only_error(info) == (("pattern",), "pattern applies to text columns, not number")

    def test_required_is_strict(self) -> None:
        with pytest.raises(ValidationError) as info:
            ColumnSpec.model_validate({"type": "text", "required": "yes"})
        assert info.value.errors()[0]["type"] == "bool_type"

    def test_frozen_and_forbids_extra(self) -> None:
        column = ColumnSpec(type="text")
        with pytest.raises(ValidationError):
            column.required = True  # type: ignore[misc]
        with pytest.raises(ValidationError) as info:
            ColumnSpec.model_validate({"type": "text", "colour": "red"})
        assert info.value.errors()[0]["type"] == "extra_forbidden"


class TestCsvAndChecks:
    def test_csv_defaults(self) -> None:
        assert CsvOptions().model_dump() == {
            "delimiter": ",",
            "quote": '"',
            "escape": '"',
            "header": True,
            "encoding": "utf-8",
            "skip_rows": 0,
            "comment": None,
            "max_line_span": 8,
        }
        assert CsvOptions.model_validate({"encoding": "Latin1"}).encoding == "latin-1"

    @pytest.mark.parametrize(
        ("data", "loc", "message"),
        [
            ({"delimiter": ";;"}, ("delimiter",), "must be a single character, got ';;'"),
            ({"quote": ""}, ("quote",), "must be a single character, got ''"),
            ({"delimiter": '"'}, (), "delimiter and quote must differ"),
        ],
    )
    def test_csv_errors(self, data: dict[str, Any], loc: tuple[str, ...], message: str) -> None:
        with pytest.raises(ValidationError) as info:
            CsvOptions.model_validate(data)
        assert only_error(info) == (loc, message)

    def test_row_count_bounds(self) -> None:
        assert RowCountBounds(min=1).max is None
        with pytest.raises(ValidationError) as info:
            RowCountBounds()
        assert only_error(info) == ((), "set min and/or max")
        with pytest.raises(ValidationError) as info:
            RowCountBounds(min=3, max=2)
        assert only_error(info) == ((), "min (3) is greater than max (2)")
        with pytest.raises(ValidationError) as info:
            RowCountBounds(min=-1)
        assert info.value.errors()[0]["type"] == "greater_than_equal"

    def test_check_union(self) -> None:
        spec = obj(
            checks=[{"name": "pos", "expression": "id > 0"}, {"row_count": {"max": 10}}],
        )
        assert spec.checks == [
            ExpressionCheck(name="pos", expression="id > 0"),
            RowCountCheck(row_count=RowCountBounds(max=10)),
        ]
        assert [c.name for c in spec.checks] == ["pos", "row_count"]

    def test_reconcile_is_a_database_check(self) -> None:
        """`reconcile` compares a database window's count on the source with the batch: a
        files object has no count to compare with; on a table it loads, dimension and all."""
        with pytest.raises(ValidationError) as info:
            obj(checks=[{"reconcile": {}}])
        assert "reconcile: compares a database window's count" in str(info.value)
        spec = obj(
            files=None,
            table="orders",
            key=["id"],
            load="merge",
            checks=[{"reconcile": {"severity": "warn"}, "dimension": "consistency"}],
        )
        (check,) = spec.checks
        assert (check.name, check.severity, check.dimension) == ("reconcile", "warn", "consistency")
        from penstock.quality.dimensions import reason_dimensions

        assert reason_dimensions(spec)["check:reconcile"] == "consistency"
        default = spec.model_copy(
            update={"checks": [type(check).model_validate({"reconcile": {}})]}
        )
        assert reason_dimensions(default)["check:reconcile"] == "completeness"

    def test_check_errors(self) -> None:
        with pytest.raises(ValidationError) as info:
            obj(checks=[{"nom": "x"}])
        assert only_error(info) == (
            ("checks", 0),
            "a check is one of {name: ..., expression: ...}, {row_count: {min: ..., max: ...}}, "
            "{freshness: {column: ..., max_age: ...}}, {duplicate_rate: {max: ...}} or "
            "{reconcile: {severity: ...}}",
        )
        with pytest.raises(ValidationError) as info:
            obj(checks=[{"name": "1st", "expression": " "}])
        assert [e["msg"] for e in info.value.errors()] == [
            "Value error, check name '1st' must start with a letter or _ "
            "and hold only letters, digits and _",
            "Value error, must not be empty",
        ]
        with pytest.raises(ValidationError) as info:
            obj(
                checks=[
                    {"name": "a", "expression": "id > 1"},
                    {"name": "a", "expression": "id > 2"},
                ]
            )
        assert only_error(info) == (("checks",), "1.name: duplicate check name 'a'")


class TestObjectSpec:
    def test_defaults(self) -> None:
        spec = obj()
        assert spec.format == "csv"
        assert spec.csv == CsvOptions()
        assert spec.load == "append"
        assert spec.key == ()
        assert (spec.group, spec.on_invalid, spec.table_name) == ("default", "quarantine", "orders")

    def test_key_string_becomes_list_and_merge_default(self) -> None:
        spec = obj(key="id", target="orders_raw")
        assert spec.key == ("id",)
        assert spec.load == "merge"
        assert spec.table_name == "orders_raw"
        assert spec.is_required("id") is True
        assert spec.is_required("ts") is False

    @pytest.mark.parametrize(
        ("files", "expected"),
        [
            ("a/*.csv", "csv"),
            ("a/*.CSV.gz", "csv"),
            ("a/*.jsonl", "jsonl"),
            ("a/*.ndjson", "jsonl"),
            ("a/*.parquet", "parquet"),
        ],
    )
    def test_format_inferred(self, files: str, expected: str) -> None:
        spec = obj(files=files)
        assert spec.format == expected
        assert (spec.csv is not None) == (expected == "csv")

    @pytest.mark.parametrize(
        ("fields", "loc", "message"),
        [
            (
                {"files": "a/*.txt"},
                ("format",),
                "cannot infer the format from 'a/*.txt' (set format: csv, jsonl, json or parquet)",
            ),
            (
                {"format": "parquet", "csv": {"header": False}},
                ("csv",),
                "csv options only apply when format is csv, not parquet",
            ),
            ({"key": ["nope"]}, ("key",), "key column 'nope' is not a declared column"),
            ({"key": ["id", "id"]}, ("key",), "a key column is listed twice"),
            ({"order_by": "x"}, ("order_by",), "order_by column 'x' is not a declared column"),
            ({"load": "merge"}, ("load",), "merge needs a key"),
            ({"load": "scd2", "key": []}, ("load",), "scd2 needs a key"),
            ({"columns": {}}, ("columns",), "declare at least one column"),
            (
                {"columns": {"Id": {"type": "text"}, "id": {"type": "text"}}},
                ("columns",),
                "id: column 'id' differs from 'Id' only in case",
            ),
            (
                {"columns": {"_id": {"type": "text"}}},
                ("columns", "_id", "[key]"),
                "column name '_id' starts with _, which is reserved for system columns",
            ),
            (
                {"columns": {"a-b": {"type": "text"}}},
                ("columns", "a-b", "[key]"),
                "column name 'a-b' must start with a letter or _ and hold only letters, "
                "digits and _",
            ),
            (
                {"group": "a,b"},
                ("group",),
                "group name 'a,b' must start with a letter or _ and hold only letters, "
                "digits, _ and -",
            ),
        ],
    )
    def test_errors(self, fields: dict[str, Any], loc: tuple[Any, ...], message: str) -> None:
        with pytest.raises(ValidationError) as info:
            obj(**fields)
        assert only_error(info) == (loc, message)


class TestProject:
    def test_defaults_and_paths(self, tmp_path: Path) -> None:
        proj = project(tmp_path)
        assert proj.root == tmp_path
        assert proj.warehouse == "duckdb:///warehouse.duckdb"
        assert proj.retention_days == 90
        assert proj.include == []
        assert proj.sources == {"landing": FilesSource(kind="files", path="./landing")}
        assert proj.lake_path == tmp_path / "lake"
        assert proj.warehouse_path == tmp_path / "warehouse.duckdb"
        assert proj.metadata_url == f"sqlite:///{tmp_path}/.penstock/metadata.db"
        assert proj.path("data/x.csv") == tmp_path / "data" / "x.csv"
        assert proj.path("/abs/x") == Path("/abs/x")

    @pytest.mark.parametrize(
        ("warehouse", "expected"),
        [
            ("duckdb:///wh/main.duckdb", "{root}/wh/main.duckdb"),
            ("duckdb:////data/wh.duckdb", "/data/wh.duckdb"),
            ("duckdb:///:memory:", None),
            ("postgresql://h/db", None),
        ],
    )
    def test_warehouse_path(self, tmp_path: Path, warehouse: str, expected: str | None) -> None:
        path = project(tmp_path, warehouse=warehouse).warehouse_path
        assert path == (Path(expected.format(root=tmp_path)) if expected else None)

    @pytest.mark.parametrize(
        ("metadata", "expected"),
        [
            ("sqlite:///meta.db", "sqlite:///{root}/meta.db"),
            ("sqlite:////var/meta.db", "sqlite:////var/meta.db"),
            ("sqlite:///:memory:", "sqlite:///:memory:"),
            ("postgresql://u@h/meta", "postgresql://u@h/meta"),
        ],
    )
    def test_metadata_url(self, tmp_path: Path, metadata: str, expected: str) -> None:
        assert project(tmp_path, metadata=metadata).metadata_url == expected.format(root=tmp_path)

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("warehouse", "warehouse.duckdb", "expected a URL such as duckdb:///warehouse.duckdb"),
            (
                "warehouse",
                "duckdb://warehouse.duckdb",
                "expected duckdb:///<path> (three slashes, then a path relative to the project "
                "or /an/absolute/path)",
            ),
            (
                "name",
                "my shop",
                "project name 'my shop' must start with a letter or _ "
                "and hold only letters, digits, _ and -",
            ),
        ],
    )
    def test_setting_errors(self, tmp_path: Path, field: str, value: str, message: str) -> None:
        with pytest.raises(ValidationError) as info:
            project(tmp_path, **{field: value})
        assert only_error(info) == ((field,), message)

    def test_object_names_come_from_keys(self, tmp_path: Path) -> None:
        spec = {"source": "landing", "files": "a/*.csv", "columns": {"a": {"type": "text"}}}
        proj = project(tmp_path, objects={"first": spec, "second": obj()})
        assert [o.name for o in proj.objects_in_order()] == ["first", "second"]

    def test_cross_checks(self, tmp_path: Path) -> None:
        columns = {"a": {"type": "text"}}
        with pytest.raises(ValidationError) as info:
            project(
                tmp_path,
                objects={
                    "a": {"source": "lnd", "files": "x.csv", "columns": columns},
                    "b": {"source": "landing", "columns": columns},
                    "c": {"source": "landing", "files": "x.csv", "target": "A", "columns": columns},
                },
            )
        assert only_error(info) == (
            ("objects",),
            "a.source: unknown source 'lnd' (declared: landing); "
            "b: missing required key 'files' (source 'landing' is files); "
            "c: table 'A' is also the table of object 'a'",
        )

    def test_hash_ignores_root(self, tmp_path: Path) -> None:
        first = project(tmp_path / "one")
        second = project(tmp_path / "two")
        assert first.project_hash == second.project_hash
        assert len(first.project_hash) == 64
        assert project(tmp_path, retention_days=30).project_hash != first.project_hash

    def test_select(self, tmp_path: Path) -> None:
        columns = {"a": {"type": "text"}}

        def spec(group: str) -> dict[str, Any]:
            return {"source": "landing", "files": "x.csv", "group": group, "columns": columns}

        proj = project(tmp_path, objects={"a": spec("raw"), "b": spec("core"), "c": spec("raw")})

        def names(selector: str | None) -> list[str]:
            return [o.name for o in proj.select(selector)]

        assert names(None) == ["a", "b", "c"]
        assert names("") == ["a", "b", "c"]
        assert names("c") == ["c"]
        assert names("c, a") == ["a", "c"]
        assert names("group:raw") == ["a", "c"]
        assert names("group:core,a") == ["a", "b"]
        assert proj.group_names() == ["raw", "core"]
        with pytest.raises(UsageError) as info:
            proj.select("a,z")
        assert info.value.message == (
            "unknown object 'z' (available objects: a, b, c; groups: raw, core)"
        )
        with pytest.raises(UsageError) as info:
            proj.select("group:gold")
        assert info.value.message == "unknown group 'gold' (available groups: raw, core)"


@pytest.mark.parametrize("lake", ["s3://bucket/prefix", "gs://b/p", "file:///tmp/lake"])
def test_a_lake_url_is_refused_until_object_storage_exists(tmp_path: Path, lake: str) -> None:
    with pytest.raises(ValidationError) as exc:
        project(tmp_path, lake=lake)
    loc, message = only_error(exc)
    assert loc == ("lake",)
    assert message.startswith("the lake is a local directory for now")
    assert project(tmp_path, lake="/data/lake").lake == "/data/lake"
