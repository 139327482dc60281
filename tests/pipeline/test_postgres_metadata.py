"""The same project with its metadata store on PostgreSQL: runs, steps, logs, catalog, status."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from penstock.demo.expectations import DemoExpectations

pytestmark = pytest.mark.services


def test_demo_records_its_runs_in_postgresql(
    demo: tuple[Path, DemoExpectations],
    pg_url: str,
    cli: Callable[..., tuple[int, str, str]],
) -> None:
    project, expected = demo
    yml = project / "penstock.yml"
    yml.write_text(
        yml.read_text().replace("metadata: sqlite:///.penstock/metadata.db", f"metadata: {pg_url}")
    )
    code, _, err = cli("run", "-p", project)
    assert code == 0, err
    assert not (project / ".penstock" / "metadata.db").exists()

    code, out, _ = cli("runs", "-p", project, "--json")
    (run,) = json.loads(out)
    total_in = sum(f.rows_in for f in expected.files.values())
    total_q = sum(len(f.quarantined) for f in expected.files.values())
    assert (run["status"], run["rows_in"], run["rows_quarantined"]) == (
        "warning",  # rows were quarantined, as status says of the objects
        total_in,
        total_q,
    )

    code, out, _ = cli("status", "-p", project, "--json")
    status = {row["object"]: row for row in json.loads(out)["objects"]}
    assert status["orders"]["rows"] == expected.orders_rows

    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            steps = conn.execute(
                sa.text("SELECT step, count(*) FROM step_runs GROUP BY step ORDER BY step")
            ).all()
            attributes = conn.execute(
                sa.text("SELECT count(*) FROM catalog_attributes WHERE object = 'orders'")
            ).scalar_one()
            warnings = conn.execute(
                sa.text("SELECT count(*) FROM logs WHERE level = 'warning'")
            ).scalar_one()
    finally:
        engine.dispose()
    # one object step per selected object records its outcome in the run; the demo's model
    # is built once
    assert [(s, n) for s, n in steps] == [("build", 1), ("load", 5), ("object", 2), ("stage", 5)]
    assert attributes == 9
    assert warnings >= 5  # each batch quarantined rows
