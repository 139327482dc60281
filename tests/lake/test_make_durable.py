"""make_durable: a few files are fsynced one by one (their directories too); many take one
sync of every file system instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from penstock.lake import atomic
from penstock.lake.atomic import FSYNC_AT_MOST, make_durable


def _spy(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[int]]:
    fsynced: list[str] = []
    synced: list[int] = []
    real_open = os.open

    def opened(path: str | Path, flags: int, *args: int) -> int:
        fsynced.append(str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(atomic.os, "open", opened)
    monkeypatch.setattr(atomic.os, "sync", lambda: synced.append(1))
    return fsynced, synced


def test_a_few_files_are_fsynced_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = tmp_path / "batch"
    (batch / "sub").mkdir(parents=True)
    for name in ["data.csv", "manifest.json", "sub/rejects.parquet"]:
        (batch / name).write_text("x")
    loose = tmp_path / "loose.parquet"
    loose.write_text("y")
    fsynced, synced = _spy(monkeypatch)
    make_durable([batch, loose])
    assert synced == []
    assert sorted(fsynced) == sorted(
        str(p)
        for p in [
            batch,
            batch / "sub",
            batch / "data.csv",
            batch / "manifest.json",
            batch / "sub" / "rejects.parquet",
            loose,
        ]
    )


def test_many_files_take_one_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = []
    for i in range(FSYNC_AT_MOST):
        d = tmp_path / f"b{i}"
        d.mkdir()
        (d / "data.csv").write_text("x")
        dirs.append(d)
    fsynced, synced = _spy(monkeypatch)
    make_durable(dirs)
    assert synced == [1]
    assert fsynced == []
