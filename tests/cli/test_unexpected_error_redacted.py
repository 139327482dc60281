"""An unexpected exception that reaches the CLI is one line, and carries no secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import penstock.catalog as catalog
from penstock.secrets import register_secret


def test_an_unexpected_error_on_screen_is_redacted(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., tuple[int, str, str]],
    no_secrets: None,
) -> None:
    register_secret("hunter2-db-password")

    def broken(path: Path) -> None:
        raise RuntimeError("cannot reach postgresql://app:hunter2-db-password@db/shop")

    monkeypatch.setattr(catalog, "load_project", broken)
    code, _, err = cli("status", "-p", tmp_path)
    assert code == 1
    assert "hunter2-db-password" not in err
    assert "unexpected error: RuntimeError: cannot reach postgresql://app:***@db/shop" in err
