"""The `quality:` section, an object's `anomalies:` and a check's `dimension:`: defaults,
merging, and mistakes reported at their file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from penstock.catalog import load_project
from penstock.catalog.loader import ProjectError

from helpers import write_project

BASE = """
name: shop
{quality}
sources: {{landing: {{kind: files, path: ./landing}}}}
objects:
  orders:
    source: landing
    files: "orders/*.csv"
{anomalies}
    columns:
      id: {{type: bigint}}
    checks:
      - {{name: positive, expression: "id > 0"{dimension}}}
      - {{row_count: {{min: 1}}{dimension}}}
"""


def project(tmp_path: Path, quality: str = "", anomalies: str = "", dimension: str = "") -> Path:
    yml = BASE.format(quality=quality, anomalies=anomalies, dimension=dimension)
    return write_project(tmp_path, yml)


def problem(root: Path) -> str:
    with pytest.raises(ProjectError) as caught:
        load_project(root)
    return str(caught.value)


def test_defaults(tmp_path: Path) -> None:
    proj = load_project(project(tmp_path))
    settings = proj.anomaly_settings("orders")
    assert (settings.min_points, settings.window, settings.method, settings.k) == (
        10,
        30,
        "stddev",
        None,
    )
    assert (settings.seasonality, settings.direction, settings.metrics) == ("none", "both", ("*",))
    assert proj.quality.weight("validity") == 1.0


def test_object_settings_merge_over_the_project_and_weights(tmp_path: Path) -> None:
    proj = load_project(
        project(
            tmp_path,
            quality="quality: {weights: {accuracy: 3}, anomalies: {k: 4, method: mad}}",
            anomalies="    anomalies: {seasonality: hour_of_day, k: 2.5}",
            dimension=", dimension: accuracy",
        )
    )
    settings = proj.anomaly_settings("orders")
    assert (settings.k, settings.method, settings.seasonality) == (2.5, "mad", "hour_of_day")
    assert proj.quality.weight("accuracy") == 3.0 and proj.quality.weight("validity") == 1.0
    checks = proj.objects["orders"].checks
    assert [c.dimension for c in checks] == ["accuracy", "accuracy"]


@pytest.mark.parametrize(
    ("quality", "anomalies", "dimension", "where"),
    [
        ("quality: {weights: {beauty: 1}}", "", "", "quality.weights"),
        (
            "quality: {weights: {completeness: 0, validity: 0, uniqueness: 0, consistency: 0,"
            " accuracy: 0, timeliness: 0}}",
            "",
            "",
            "quality.weights",
        ),
        ("quality: {anomalies: {k: 0}}", "", "", "quality.anomalies.k"),
        ("quality: {anomalies: {min_points: 2}}", "", "", "quality.anomalies.min_points"),
        ("", "    anomalies: {direction: sideways}", "", "objects.orders.anomalies.direction"),
        ("", "    anomalies: {seasonality: monthly}", "", "objects.orders.anomalies.seasonality"),
        ("", "    anomalies: {metrics: []}", "", "objects.orders.anomalies.metrics"),
        ("", "    anomalies: {windw: 3}", "", "objects.orders.anomalies.windw"),
        ("", "", ", dimension: beauty", "objects.orders.checks[0].dimension"),
    ],
)
def test_mistakes_name_their_file_line_and_key(
    tmp_path: Path, quality: str, anomalies: str, dimension: str, where: str
) -> None:
    message = problem(project(tmp_path, quality, anomalies, dimension))
    assert "penstock.yml:" in message and where in message, message
