"""An `anomaly` alert rule fires for a batch whose quarantine rate left its control limits:
one message per metric of that batch, with the value, the limits and what to run next; a
rebuild judges the batch again but sends nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alert_receivers import Webhook
from helpers import write_project

Cli = Callable[..., tuple[int, str, str]]


def day_file(day: int, bad: int) -> str:
    rows = [f"{day * 100 + i},{'-1.00' if i < bad else '5.00'}" for i in range(20)]
    return "id,amount\n" + "\n".join(rows) + "\n"


def test_an_anomaly_alerts_once_per_metric(tmp_path: Path, cli: Cli, webhook: Webhook) -> None:
    yml = f"""
        name: shop
        sources: {{landing: {{kind: files, path: ./landing, settle: 0s}}}}
        objects:
          orders:
            source: landing
            files: "orders/*.csv"
            key: [id]
            anomalies: {{metrics: ["quarantine_rate*"]}}
            columns:
              id:     {{type: bigint}}
              amount: {{type: "decimal(10,2)", min: 0}}
        alerts:
          - {{name: quality, on: [anomaly], to: ["{webhook.url}"]}}
        """
    files = {f"landing/orders/d{d:02d}.csv": day_file(d, 6 if d == 12 else 0) for d in range(1, 13)}
    root = write_project(tmp_path, yml, files)
    code, _, err = cli("run", "-p", root)
    assert code == 0, err
    posts = webhook.wait_for(2)
    assert len(posts) == 2
    titles = sorted(p.body["title"] for p in posts)
    # σ limits [0, 0], widened by the sampling floor: 1 of 20 is ordinary after 11 clean files
    assert "quarantine_rate = 0.3 is outside [0, 0.05]" in titles[0]
    assert "quarantine_rate:min:amount = 0.3 is outside [0, 0.05]" in titles[1]
    body = posts[0].body["message"]
    assert "anomaly" in body and "d12.csv" in body
    assert "penstock quarantine orders --batch orders-" in body

    assert cli("rebuild", "-p", root)[0] == 0  # judged again, the same occurrence: not sent
    assert len(webhook.wait_for(3, timeout=1.0)) == 2
