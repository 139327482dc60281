from pathlib import Path

import pytest

from penstock.catalog.references import ReferenceProblem, resolve_references, resolve_string
from penstock.catalog.yaml_lines import parse_yaml
from penstock.secrets import redact


def resolve(text: str, root: Path, environ: dict[str, str]) -> tuple[object, list[str]]:
    doc = parse_yaml(text, "penstock.yml")
    data, errors = resolve_references(
        doc.data, file=doc.file, lines=doc.lines, root=root, environ=environ
    )
    return data, [e.message for e in errors]


def test_env_reference_embedded(tmp_path: Path) -> None:
    data, errors = resolve(
        "sources:\n  db:\n    url: postgresql://u:${env:PW}@h/db\n",
        tmp_path,
        {"PW": "s3cr3t-pw"},
    )
    assert errors == []
    assert data == {"sources": {"db": {"url": "postgresql://u:s3cr3t-pw@h/db"}}}
    assert (
        redact("connect to postgresql://u:s3cr3t-pw@h/db") == "connect to postgresql://u:***@h/db"
    )


def test_file_reference_strips_one_newline(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token.txt").write_text("tok-123\n\n", encoding="utf-8")
    (tmp_path / "secrets" / "crlf.txt").write_bytes(b"crlf-value\r\n")
    data, errors = resolve(
        "a: ${file:secrets/token.txt}\nb: x-${file:secrets/crlf.txt}\n"
        f"c: ${{file:{tmp_path / 'secrets' / 'token.txt'}}}\n",
        tmp_path,
        {},
    )
    assert errors == []
    assert data == {"a": "tok-123\n", "b": "x-crlf-value", "c": "tok-123\n"}
    assert redact("crlf-value") == "***"


def test_references_in_lists_and_escape(tmp_path: Path) -> None:
    data, errors = resolve(
        "a: [one, '${env:X}', 'literal $${env:X}', 'cost $5']\n", tmp_path, {"X": "xval"}
    )
    assert errors == []
    assert data == {"a": ["one", "xval", "literal ${env:X}", "cost $5"]}


def test_missing_env_var(tmp_path: Path) -> None:
    data, errors = resolve(
        "name: shop\nsources:\n  db:\n    url: ${env:SHOP_DB_URL}\n", tmp_path, {}
    )
    assert errors == ["penstock.yml:4: sources.db.url: environment variable SHOP_DB_URL is not set"]
    assert data == {"name": "shop", "sources": {"db": {"url": "${env:SHOP_DB_URL}"}}}


def test_missing_file(tmp_path: Path) -> None:
    _, errors = resolve("a:\n  - ${file:nope.txt}\n", tmp_path, {})
    assert errors == [
        "penstock.yml:2: a[0]: cannot read file 'nope.txt': No such file or directory"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${foo:x}", "unknown reference kind 'foo' in '${foo:x}' (expected one of: env, file)"),
        ("${env:X", "unterminated reference '${env:X' (missing '}')"),
        ("${X}", "invalid reference '${X}' (expected ${env:NAME} or ${file:PATH})"),
        ("${env:}", "invalid reference '${env:}' (expected ${env:NAME} or ${file:PATH})"),
    ],
)
def test_bad_references(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ReferenceProblem) as info:
        resolve_string(text, root=tmp_path, environ={"X": "1"})
    assert str(info.value) == message


def test_every_resolved_value_is_registered(tmp_path: Path) -> None:
    assert resolve_string("${env:A}/${env:B}", root=tmp_path, environ={"A": "alpha", "B": "bravo"})
    assert redact("alpha bravo") == "*** ***"
