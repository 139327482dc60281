from pathlib import Path

import pytest

from penstock.catalog.yaml_lines import KeyPath, format_key_path, line_for, load_yaml, parse_yaml
from penstock.errors import ProjectError, ProjectErrors


def messages(text: str) -> list[str]:
    with pytest.raises(ProjectErrors) as info:
        parse_yaml(text, "f.yml")
    return [e.message for e in info.value.errors]


def test_values_and_lines() -> None:
    doc = parse_yaml(
        "name: shop\n"
        "objects:\n"
        "  orders:\n"
        "    key: [a, b]\n"
        "    checks:\n"
        "      - name: x\n"
        "      - row_count: {min: 1}\n",
        "penstock.yml",
    )
    assert doc.file == "penstock.yml"
    assert doc.data == {
        "name": "shop",
        "objects": {
            "orders": {"key": ["a", "b"], "checks": [{"name": "x"}, {"row_count": {"min": 1}}]}
        },
    }
    assert doc.lines[("name",)] == 1
    assert doc.lines[("objects", "orders")] == 3
    assert doc.lines[("objects", "orders", "key", 1)] == 4
    assert doc.lines[("objects", "orders", "checks", 0)] == 6
    assert doc.lines[("objects", "orders", "checks", 1, "row_count", "min")] == 7


def test_scalars() -> None:
    doc = parse_yaml(
        "on: 1\nyes: true\nflag: yes\nday: 1900-01-01\nts: 2024-01-02 03:04:05\n"
        "n: ~\nf: 1.5\ns: '12'\n",
        "f.yml",
    )
    # Keys stay as written; unquoted dates and timestamps stay strings.
    assert doc.data == {
        "on": 1,
        "yes": True,
        "flag": True,
        "day": "1900-01-01",
        "ts": "2024-01-02 03:04:05",
        "n": None,
        "f": 1.5,
        "s": "12",
    }


def test_merge_keys() -> None:
    doc = parse_yaml(
        "base: &base\n  type: text\n  required: true\ncol:\n  <<: *base\n  required: false\n",
        "f.yml",
    )
    assert doc.data["col"] == {"type": "text", "required": False}
    assert doc.lines[("col", "required")] == 6
    assert doc.lines[("col", "type")] == 2


def test_duplicate_keys_are_all_reported() -> None:
    assert messages("a:\n  b: 1\n  b: 2\n  c: [1]\n  c: 3\n") == [
        "f.yml:3: a.b: duplicate key 'b'",
        "f.yml:5: a.c: duplicate key 'c'",
    ]


def test_invalid_yaml_names_line() -> None:
    assert messages("name: x\nobjects:\n  a: [1, 2\n  b: 3\n") == [
        "f.yml:4: invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence at line 3)"
    ]
    assert messages("a: 1\n  b: 2\n") == [
        "f.yml:2: invalid YAML: mapping values are not allowed here"
    ]


def test_unknown_tag() -> None:
    assert messages("a: 1\nx: !foo 1\n") == [
        "f.yml:2: invalid YAML: could not determine a constructor for the tag '!foo'"
    ]


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file(text: str) -> None:
    assert messages(text) == ["f.yml: the file is empty"]


def test_top_level_must_be_a_mapping() -> None:
    assert messages("- 1\n") == ["f.yml:1: the top level must be a mapping of keys, not a list"]
    assert messages("abc\n") == [
        "f.yml:1: the top level must be a mapping of keys, not a single value"
    ]


def test_recursive_alias() -> None:
    assert messages("a: &x [*x]\n") == ["f.yml:1: a[0]: an alias refers to itself"]


def test_complex_key() -> None:
    assert messages("? [a, b]\n: 1\n") == ["f.yml:1: a mapping key must be a plain value"]


def test_load_yaml_reads_files(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text("a: 1\n", encoding="utf-8")
    assert load_yaml(path, "p.yml").data == {"a": 1}


def test_load_yaml_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ProjectError) as info:
        load_yaml(tmp_path / "missing.yml", "missing.yml")
    assert info.value.message == "missing.yml: cannot read: No such file or directory"
    bad = tmp_path / "bad.yml"
    bad.write_bytes(b"a: \xff\n")
    with pytest.raises(ProjectError) as info:
        load_yaml(bad, "bad.yml")
    assert info.value.message == "bad.yml: cannot read: not valid UTF-8 text"


def test_key_path_helpers() -> None:
    assert format_key_path(("objects", "orders", "checks", 0, "name")) == (
        "objects.orders.checks[0].name"
    )
    assert format_key_path(()) == ""
    lines: dict[KeyPath, int] = {("a",): 1, ("a", "b"): 2}
    assert line_for(lines, ("a", "b", "c", 0)) == 2
    assert line_for(lines, ("z",)) is None
