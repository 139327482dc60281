"""A project's outline (what `status` and `runs` read) is what the full load says, read without
the project models; whatever the outline does not understand, the full load reports."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from penstock.catalog import load_project
from penstock.catalog.outline import ObjectOutline, outline_of, read_outline
from penstock.errors import ProjectErrors
from penstock.secrets import redact

WriteFiles = Callable[..., Path]

MAIN = """
name: shop
warehouse: "duckdb:///wh/shop.duckdb?threads=2"
metadata: "sqlite:///${env:PENSTOCK_TEST_META}/m.db"
include: [objects/b*.yml, objects/*.yml]
sources:
  landing: {kind: files, path: ./landing}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
    key: [id]
    load: merge
    target: orders_raw
    columns: {id: {type: bigint}}
"""
INCLUDED = {
    "objects/a.yml": """
        objects:
          alpha: {source: landing, files: "a/*.csv", columns: {x: {type: text}}}
          keyed: {source: landing, files: "k/*.csv", key: [x], columns: {x: {type: text}}}
        """,
    "objects/b.yml": """
        objects:
          beta: {source: landing, files: "b/*.csv", load: replace, columns: {x: {type: text}}}
        sources:
          other: {kind: files, path: ./other}
        """,
}


def test_the_outline_is_the_full_loads(
    write_files: WriteFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PENSTOCK_TEST_META", "state-dir")
    root = write_files({"penstock.yml": MAIN, **INCLUDED})
    outline = read_outline(root)
    assert outline == outline_of(load_project(root), root / "penstock.yml")
    # included files in the loader's order (b first: its glob comes first), then a
    assert outline.objects == (
        ObjectOutline("orders", "orders_raw", "merge"),
        ObjectOutline("beta", "beta", "replace"),
        ObjectOutline("alpha", "alpha", "append"),
        ObjectOutline("keyed", "keyed", "merge"),  # a key without `load:` merges
    )
    assert outline.metadata_url == f"sqlite:///{root}/state-dir/m.db"
    assert outline.warehouse_path == root / "wh/shop.duckdb"
    assert outline.warehouse_options == {"threads": "2"}
    assert redact(outline.metadata_url).endswith("/***/m.db")  # the reference is a secret
    # a project file given by name
    assert read_outline(root / "penstock.yml").objects == outline.objects


def test_the_demo_outline(demo: tuple[Path, object]) -> None:
    project, _ = demo
    assert read_outline(project) == outline_of(load_project(project), project / "penstock.yml")


def test_the_outline_reads_no_project_model(write_files: WriteFiles) -> None:
    root = write_files({"penstock.yml": MAIN.replace("${env:PENSTOCK_TEST_META}", "s"), **INCLUDED})
    code = (
        "import sys\nfrom penstock.catalog.outline import read_outline\n"
        f"print([o.name for o in read_outline({str(root)!r}).objects])\n"
        "print(sorted(m for m in ('pydantic', 'sqlglot', 'duckdb', 'penstock.catalog.models')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.splitlines() == ["['orders', 'beta', 'alpha', 'keyed']", "[]"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"penstock.yml": "name: [unclosed\n"}, "penstock.yml:"),
        (
            {"penstock.yml": MAIN.replace("load: merge", "load: upsert")},
            "objects.orders.load",
        ),
        (
            {
                "penstock.yml": MAIN,
                "objects/a.yml": "objects:\n  orders: {source: landing, files: x}\n",
            },
            "object 'orders' is already defined at penstock.yml",
        ),
        ({"penstock.yml": MAIN.replace("sqlite:///", "sqlite://")}, "metadata"),
        ({"penstock.yml": MAIN.replace("PENSTOCK_TEST_META", "PENSTOCK_TEST_UNSET")}, "env"),
    ],
)
def test_what_the_outline_does_not_understand_the_full_load_reports(
    write_files: WriteFiles,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str],
    message: str,
) -> None:
    monkeypatch.setenv("PENSTOCK_TEST_META", "state-dir")
    monkeypatch.delenv("PENSTOCK_TEST_UNSET", raising=False)
    root = write_files(files)
    with pytest.raises(ProjectErrors) as info:
        read_outline(root)
    assert message in info.value.message


def test_a_contract_error_elsewhere_does_not_stop_the_outline(write_files: WriteFiles) -> None:
    """`status` still answers; `check` and `run` report the broken column type."""
    broken = MAIN.replace("${env:PENSTOCK_TEST_META}", "s").replace("type: bigint", "type: bigg")
    root = write_files({"penstock.yml": broken})
    assert [o.name for o in read_outline(root).objects] == ["orders"]
    with pytest.raises(ProjectErrors, match="unknown type 'bigg'"):
        load_project(root)
