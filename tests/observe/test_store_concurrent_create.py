"""Several processes opening a new metadata store at once (a run and a `status`, two runs
waiting for the warehouse) all get a working store: the race to create its tables is lost
gracefully, not with "already exists" or "database is locked"."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from penstock.observe import MetadataStore


def _open_at_once(url: str, openers: int = 6) -> list[str]:
    errors: list[str] = []
    barrier = threading.Barrier(openers)

    def open_store() -> None:
        barrier.wait()
        try:
            with MetadataStore(url) as store:
                store.runs()
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=open_store) for _ in range(openers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_a_new_sqlite_store_opened_at_once_by_many(tmp_path: Path) -> None:
    for trial in range(5):
        url = f"sqlite:///{tmp_path / f'store-{trial}.db'}"
        assert _open_at_once(url) == []


@pytest.mark.services
def test_a_new_postgres_store_opened_at_once_by_many(pg_url: str) -> None:
    assert _open_at_once(pg_url) == []
