"""Secrets and the catalog hash: the hash covers references as written, never their values;
every secret is redacted whatever its length, and `penstock check` warns about short ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from penstock.catalog import load_project
from penstock.secrets import redact

WriteFiles = Callable[..., Path]

PROJECT = """
name: p
metadata: "postgresql://app:${env:PG_PW}@db.example.com/meta"
include: [objects/*.yml]
sources:
  landing: {kind: files, path: ./landing, description: "${env:NOTE}"}
"""
OBJECT = """
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    description: "token ${file:token.txt}"
    columns: {id: {type: bigint}}
"""


def project(write_files: WriteFiles, root: Path, token: str, yml: str = PROJECT) -> Path:
    return write_files(
        {"penstock.yml": yml, "objects/orders.yml": OBJECT, "token.txt": token}, root
    )


def test_rotating_a_secret_keeps_the_catalog_version(
    write_files: WriteFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTE", "a note")
    monkeypatch.setenv("PG_PW", "first-password")
    first = load_project(project(write_files, tmp_path / "a", "token-one"))
    assert first.metadata == "postgresql://app:first-password@db.example.com/meta"
    monkeypatch.setenv("PG_PW", "second-password")
    second = load_project(project(write_files, tmp_path / "b", "token-two"))
    assert second.metadata == "postgresql://app:second-password@db.example.com/meta"
    assert second.objects["orders"].description == "token token-two"
    assert second.project_hash == first.project_hash


def test_changing_a_reference_as_written_is_a_new_version(
    write_files: WriteFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTE", "a note")
    monkeypatch.setenv("PG_PW", "same-password")
    monkeypatch.setenv("PG_PASSWORD", "same-password")
    first = load_project(project(write_files, tmp_path / "a", "token"))
    renamed = PROJECT.replace("${env:PG_PW}", "${env:PG_PASSWORD}")
    second = load_project(project(write_files, tmp_path / "b", "token", renamed))
    assert second.metadata == first.metadata
    assert second.project_hash != first.project_hash
    plain = PROJECT.replace("${env:PG_PW}", "same-password")  # the value written in clear
    third = load_project(project(write_files, tmp_path / "c", "token", plain))
    assert third.project_hash not in (first.project_hash, second.project_hash)


@pytest.mark.parametrize("secret", ["x", "ab", "pin"])
def test_secrets_of_any_length_are_redacted(
    write_files: WriteFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str
) -> None:
    monkeypatch.setenv("NOTE", "a note")
    monkeypatch.setenv("PG_PW", secret)
    load_project(project(write_files, tmp_path, "token"))
    assert redact(f"login failed for app:{secret}@db") == "login failed for app:***@db"


def test_check_warns_about_secrets_too_short_to_redact(
    write_files: WriteFiles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    monkeypatch.setenv("NOTE", "q7")
    yml = PROJECT.replace('metadata: "postgresql://app:${env:PG_PW}@db.example.com/meta"\n', "")
    root = project(write_files, tmp_path, "z", yml)
    (root / "landing").mkdir()
    code, out, _ = cli("check", "-p", root, "--json")
    assert code == 0, out
    report = json.loads(out)
    warnings = [c for c in report["checks"] if c["warning"] and c["what"] == "secret"]
    assert [w["detail"].split(" is shorter")[0] for w in warnings] == [
        "penstock.yml:4 sources.landing.description: ${env:NOTE}",
        "objects/orders.yml:5 objects.orders.description: ${file:token.txt}",
    ]
    assert all(w["ok"] for w in warnings)
    assert "q7" not in out
    code, out, _ = cli("check", "-p", root)
    assert code == 0
    assert "warning  secret: penstock.yml:4 sources.landing.description: ${env:NOTE} is " in out


def test_the_longest_secret_is_redacted_first_and_cleared_ones_no_more() -> None:
    """`redact` goes through the secrets longest first (ordered when one is registered)."""
    from penstock.secrets import clear_secrets, register_secret

    try:
        register_secret("abc")
        assert redact("xabcdefx") == "x***defx"
        register_secret("abcdef")
        assert redact("xabcdefx abc") == "x***x ***"
    finally:
        clear_secrets()
    assert redact("xabcdefx") == "xabcdefx"
